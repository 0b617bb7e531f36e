"""The fixed-x_T sample grid (playbook 5.0): one saved noise tensor per run, an 8x8 tiling, PNG bytes.

x_T is drawn once per run from a seeded generator and saved as runs/<id>/x_T.pt; every grid of the run (and of its
resumes) starts from it, so what changes between grids is only the weights (playbook 5.0, P2's consistency
diagnostic). Tiles are enlarged with nearest neighbour to at least `MIN_TILE_PX` pixels, so an 8x8 digit is legible.

Grids and the live panel call the network under the run's precision (`under_precision`: bf16 or fp16 autocast, as
training does; 2-3x faster per evaluation than fp32 on a GPU) and the sampler's own arithmetic stays fp32; the grid's
caption says so (`precision_note`).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from difftui.engine.atomic import atomic_write, atomic_write_bytes
from difftui.engine.run.grid_layout import GRID_SIDE, MIN_TILE_PX, PAD_PX, tile_scale

__all__ = ["GRID_SIDE", "MIN_TILE_PX", "fixed_noise", "grid_image", "grid_png", "grid_path",
           "save_grid_file", "under_precision", "precision_note"]


def fixed_noise(path: str | Path, shape: tuple[int, int, int], *, seed: int, count: int = GRID_SIDE ** 2) -> Tensor:
    """Load x_T from `path`, or draw it (N(0, I), CPU generator seeded with `seed`) and save it atomically."""
    path = Path(path)
    if path.exists():
        x_T = torch.load(path, map_location="cpu", weights_only=True)
        if tuple(x_T.shape) == (count, *shape):
            return x_T
        raise ValueError(f"{path}: x_T has shape {tuple(x_T.shape)}, expected {(count, *shape)}")
    g = torch.Generator().manual_seed(seed)
    x_T = torch.randn((count, *shape), generator=g)
    atomic_write(path, lambda f: torch.save(x_T, f))
    return x_T


class _Autocast(nn.Module):
    """`net` called under autocast to `dtype`; its output returned in fp32, the dtype the samplers compute in."""

    def __init__(self, net: nn.Module, device_type: str, dtype: torch.dtype):
        super().__init__()
        self.net, self.device_type, self.dtype = net, device_type, dtype

    def forward(self, *args, **kwargs) -> Tensor:
        with torch.autocast(self.device_type, dtype=self.dtype):
            out = self.net(*args, **kwargs)
        return out.float()


_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def under_precision(net: nn.Module, device: torch.device, precision: str) -> nn.Module:
    """The network as grids and panels call it: under the run's autocast ("bf16", "fp16"), itself for "fp32"."""
    dtype = _AUTOCAST.get(precision)
    return net if dtype is None else _Autocast(net, torch.device(device).type, dtype)


def precision_note(precision: str) -> str:
    """The caption's words for it: 'bf16 network, fp32 sampler' / 'fp32'."""
    return f"{precision} network, fp32 sampler" if precision in _AUTOCAST else precision


def grid_image(images: Tensor, *, side: int = GRID_SIDE, min_tile: int = MIN_TILE_PX, pad: int = PAD_PX):
    """[N,C,H,W] in [-1,1] -> a PIL image of a side x side tiling (N <= side^2), tiles scaled by nearest neighbour."""
    from PIL import Image
    x = images.detach().float().cpu().clamp(-1, 1)
    n, c, h, w = x.shape
    scale = tile_scale(h, w, min_tile)
    x = ((x + 1) * 127.5).round().to(torch.uint8)
    if scale > 1:
        x = x.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    th, tw = h * scale, w * scale
    rows = math.ceil(n / side)
    canvas = torch.zeros((c, rows * (th + pad) + pad, side * (tw + pad) + pad), dtype=torch.uint8)
    for i in range(n):
        r, col = divmod(i, side)
        top, left = pad + r * (th + pad), pad + col * (tw + pad)
        canvas[:, top:top + th, left:left + tw] = x[i]
    arr = canvas.permute(1, 2, 0).numpy()
    # uint8 [H,W] -> "L", [H,W,3] -> "RGB", [H,W,4] -> "RGBA"
    return Image.fromarray(np.ascontiguousarray(arr[:, :, 0] if c == 1 else arr))


def grid_png(images: Tensor, **kw) -> bytes:
    buf = io.BytesIO()
    grid_image(images, **kw).save(buf, format="PNG")
    return buf.getvalue()


def grid_path(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / "grids" / f"step-{step:07d}.png"


def save_grid_file(run_dir: str | Path, step: int, png: bytes) -> Path:
    return atomic_write_bytes(grid_path(run_dir, step), png)
