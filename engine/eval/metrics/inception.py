"""torch-fidelity's InceptionV3 feature extractor (the TensorFlow FID network) with its weights loaded safely.

torch-fidelity loads a local weights file with `torch.load(..., weights_only=False)`, which runs whatever a replaced
file's pickle says. Here the file is read with `weights_only=True` (tensors only; anything else is refused), checked
to be a state dict of tensors, and handed to torch-fidelity's constructor in place of its download: the network, its
bilinear resize to 299 x 299 (TF1-compatible) and its features are torch-fidelity's own.
"""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import torch

from difftui.engine.text import one_line

from .weights import InceptionWeightsMissing, download_inception, locate_inception

__all__ = ["FEATURE_LAYER", "load_inception", "load_weights_safely"]

FEATURE_LAYER = "2048"                              # the pool3 features of FID and precision/recall


def load_weights_safely(path: Path) -> dict[str, torch.Tensor]:
    """A state dict of tensors from `path`, read with weights_only=True; one line naming the file otherwise."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise InceptionWeightsMissing(f"{path}: not a usable Inception weights file "
                                      f"({one_line(e, named=True, limit=200)})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InceptionWeightsMissing(f"{path}: not a state dict of tensors")
    return state


def load_inception(path: str | os.PathLike[str] | None = None, device: torch.device | str = "cpu",
                   *, allow_download: bool = True) -> torch.nn.Module:
    """torch-fidelity's FeatureExtractorInceptionV3 returning the 2048-d pool3 features, in eval mode on `device`.

    `forward(uint8 [B, 3, H, W]) -> (features [B, 2048] float32,)`; `get_name()` names it for the cache key."""
    from torch_fidelity import feature_extractor_inceptionv3 as fe
    found = locate_inception(path)
    if found is None:
        if not allow_download:
            from .weights import missing_message
            raise InceptionWeightsMissing(missing_message())
        found = download_inception()
    state = load_weights_safely(found)
    # torch-fidelity's constructor takes the state dict from its download function; give it the one read above.
    with mock.patch.object(fe, "load_state_dict_from_url", lambda *a, **k: state):
        try:
            net = fe.FeatureExtractorInceptionV3("inception-v3-compat", [FEATURE_LAYER])
        except RuntimeError as e:                   # load_state_dict: missing or unexpected keys, wrong shapes
            raise InceptionWeightsMissing(f"{found}: not torch-fidelity's InceptionV3 weights "
                                          f"({one_line(e, named=False, limit=200)})") from None
    return net.to(device)
