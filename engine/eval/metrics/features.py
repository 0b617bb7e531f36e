"""Images to features: [-1, 1] floats -> uint8 RGB (the form FID's network reads) -> feature rows, in batches.

Both sides of FID go through `to_uint8_rgb`: real images are quantised exactly as generated ones, so the two sets
differ only in what the model did. Grey images are repeated to three channels; a data set that is not images
(e.g. 4-channel latents) has no FID and is refused with one line.

A feature network is anything with torch-fidelity's FeatureExtractorBase interface: `get_name()` (part of the
reference cache key) and `forward(uint8 [B, 3, H, W]) -> (features [B, D],)`.
"""

from __future__ import annotations

import torch

__all__ = ["FeatureError", "to_uint8_rgb", "features_of", "feature_net_name"]


class FeatureError(ValueError):
    """The images cannot be fed to the feature network (one line)."""


def to_uint8_rgb(images: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] in [-1, 1] -> uint8 [B, 3, H, W]: x -> round((x + 1) * 127.5), C = 1 repeated to 3."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise FeatureError(f"FID needs grey or RGB images; got shape {tuple(images.shape)} "
                           f"({images.shape[1] if images.ndim == 4 else '?'} channels: not decoded images)")
    # Playbook 1.0: x = (u / 255 - 0.5) / 0.5, inverted and rounded to the nearest 8-bit level.
    x = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x


def feature_net_name(net) -> str:
    get = getattr(net, "get_name", None)
    return str(get()) if callable(get) else type(net).__name__


@torch.no_grad()
def features_of(net, images: torch.Tensor) -> torch.Tensor:
    """Feature rows [B, D] (float32, on the CPU) of images in [-1, 1], computed on the feature network's device."""
    device = next(net.parameters()).device if any(True for _ in net.parameters()) else images.device
    out = net(to_uint8_rgb(images).to(device))
    feats = out[0] if isinstance(out, (tuple, list)) else out
    return feats.reshape(feats.shape[0], -1).float().cpu()
