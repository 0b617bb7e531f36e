"""Non-leaky augmentation (P3, Karras et al. 2022, App. F.2; playbook 1.3, A.4), written for difftui after the
augmentation pipe of P3's code (itself after StyleGAN2-ADA).

    x_aug, labels = augment(x, p, generator)        # x [B, C, H, W] in [-1, 1]; labels [B, AUGMENT_DIM]
    terms = objective(net, x_aug, y, augment_labels=labels)

Each transform is applied to each image with probability p (its multiplier times p); the parameters it drew are
returned as the conditioning vector `labels`, which the EDM networks embed (SongUNet's `map_augment`), so the network
learns what was done to its input and the generated distribution carries no augmentation at `labels = 0`, the value
used for sampling and evaluation (playbook 1.3 (3)). With `p = 0` the images are returned unchanged and the labels are
all zero.

P3's configuration (its --augment option; AUGMENT_DIM = 9 labels):
    x-flip          always drawn (multiplier 1e8: a 50% flip at any p > 0; the flip is a label, so P3 turns the
                    data set's own x-flips off)                                              label: flipped (0/1)
    y-flip          p                                                                          label: flipped (0/1)
    scale           p, isotropic 2^(0.2 n), n ~ N(0, 1)                                         label: n
    rotation        p, uniform angle in (-pi, pi)                                               labels: cos - 1, sin
    anisotropy      p, 2^(0.2 n) along an axis rotated by a uniform angle r (with prob. 1/2)    labels: n cos r, n sin r
    translation     p, N(0, 0.125^2) of the image size in x and y                               labels: the two normals
Colour transforms (brightness, contrast, saturation; P3 leaves them off, so the default keeps AUGMENT_DIM = 9) add
one label each when enabled (`AugmentSpec(brightness=1, ...)`), and the result is clamped to [-1, 1].

Where we differ from P3's code: the geometric warp samples the input with bilinear interpolation and reflection
padding on a 2x supersampled grid, then averages 2x2 (P3 upsamples and downsamples with a sym6 wavelet filter).
Every output pixel is then a convex combination of input pixels, so the images stay in [-1, 1]; the images that drew
no geometric transform are returned bit for bit (the warp is computed for the whole batch and kept only where one was
drawn, so that no count is read on the host).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["AugmentSpec", "P3_AUGMENT", "AUGMENT_DIM", "augment", "Augmenter", "augment_dim"]


@dataclass(frozen=True)
class AugmentSpec:
    """Probability multipliers (times p) and strengths, P3's values by default."""
    xflip: float = 1e8
    yflip: float = 1.0
    scale: float = 1.0
    rotate: float = 1.0
    aniso: float = 1.0
    translate: float = 1.0
    scale_std: float = 0.2                          # log2 standard deviation of the isotropic scale
    rotate_max: float = 1.0                         # fraction of a half turn: angles uniform in (-pi, pi)
    aniso_std: float = 0.2
    aniso_rotate_prob: float = 0.5
    translate_std: float = 0.125                    # of the image size
    brightness: float = 0.0                         # colour transforms: off in P3's configuration
    contrast: float = 0.0
    saturation: float = 0.0
    brightness_std: float = 0.2
    contrast_std: float = 0.5                       # log2
    saturation_std: float = 1.0                     # log2

    @property
    def label_dim(self) -> int:
        dims = {"xflip": 1, "yflip": 1, "scale": 1, "rotate": 2, "aniso": 2, "translate": 2, "brightness": 1,
                "contrast": 1, "saturation": 1}
        return sum(n for key, n in dims.items() if getattr(self, key) > 0)


P3_AUGMENT = AugmentSpec()
AUGMENT_DIM = P3_AUGMENT.label_dim                  # 9: the SongUNet's augment_dim (P3's networks)


def augment_dim(spec: AugmentSpec = P3_AUGMENT) -> int:
    return spec.label_dim


def _chosen(mult: float, p: float, n: int, g, device) -> Tensor:
    """[n] bool: each image takes this transform with probability min(1, mult * p)."""
    return torch.rand(n, generator=g, device=device) < mult * p


def _warp(x: Tensor, G_inv: Tensor) -> Tensor:
    """Resample x [n, C, H, W] at G_inv @ (output pixel), centred pixel coordinates, 2x supersampled."""
    n, C, H, W = x.shape
    dtype = G_inv.dtype
    ys = (torch.arange(2 * H, device=x.device, dtype=dtype) + 0.5) / 2 - 0.5 - (H - 1) / 2
    xs = (torch.arange(2 * W, device=x.device, dtype=dtype) + 0.5) / 2 - 0.5 - (W - 1) / 2
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    pts = torch.stack([gx, gy, torch.ones_like(gx)], dim=-1).reshape(1, -1, 3)          # [1, 4HW, 3]
    src = pts @ G_inv.transpose(1, 2)                                                  # [n, 4HW, 3]
    # grid_sample with align_corners=True: -1 and 1 are the centres of the corner pixels.
    grid = torch.stack([src[..., 0] / ((W - 1) / 2), src[..., 1] / ((H - 1) / 2)], dim=-1)
    grid = grid.reshape(n, 2 * H, 2 * W, 2).to(x.dtype)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=True)
    return F.avg_pool2d(out, 2)


def augment(x: Tensor, p: float, generator: torch.Generator | None = None,
            spec: AugmentSpec = P3_AUGMENT) -> tuple[Tensor, Tensor]:
    """P3's non-leaky augmentation of a batch: (augmented images, augment labels [B, spec.label_dim]).

    All randomness comes from `generator` (on x's device), drawn in a fixed order and amount per batch size, so a
    resumed run that restores the generator's state continues with the same draws."""
    N, C, H, W = x.shape
    dev, g = x.device, generator
    f32 = torch.float32
    labels: list[Tensor] = []
    zeros = torch.zeros(N, device=dev, dtype=f32)

    # Pixel blits: flips (exact).
    if spec.xflip > 0:
        w = torch.randint(2, (N,), generator=g, device=dev).to(f32)
        w = torch.where(_chosen(spec.xflip, p, N, g, dev), w, zeros)
        x = torch.where(w[:, None, None, None] > 0, x.flip(3), x)
        labels.append(w)
    if spec.yflip > 0:
        w = torch.randint(2, (N,), generator=g, device=dev).to(f32)
        w = torch.where(_chosen(spec.yflip, p, N, g, dev), w, zeros)
        x = torch.where(w[:, None, None, None] > 0, x.flip(2), x)
        labels.append(w)

    # Geometric transforms: compose the inverse map G_inv (output pixel -> input pixel), float64.
    G_inv = torch.eye(3, device=dev, dtype=torch.float64).repeat(N, 1, 1)
    moved = torch.zeros(N, dtype=torch.bool, device=dev)

    def mat(rows) -> Tensor:
        return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)             # [N, 3, 3]

    one, nil = torch.ones(N, device=dev, dtype=torch.float64), torch.zeros(N, device=dev, dtype=torch.float64)

    def scale_inv(sx, sy):
        return mat([[1 / sx, nil, nil], [nil, 1 / sy, nil], [nil, nil, one]])

    def rotate_inv(t):
        # Inverse of a rotation by t: rotation by -t.
        return mat([[t.cos(), t.sin(), nil], [-t.sin(), t.cos(), nil], [nil, nil, one]])

    if spec.scale > 0:
        w = torch.randn(N, generator=g, device=dev, dtype=torch.float64)
        w = torch.where(_chosen(spec.scale, p, N, g, dev), w, nil)
        s = torch.exp2(w * spec.scale_std)
        G_inv = G_inv @ scale_inv(s, s)
        moved |= w != 0
        labels.append(w.to(f32))
    if spec.rotate > 0:
        w = (torch.rand(N, generator=g, device=dev, dtype=torch.float64) * 2 - 1) * (math.pi * spec.rotate_max)
        w = torch.where(_chosen(spec.rotate, p, N, g, dev), w, nil)
        G_inv = G_inv @ rotate_inv(w)
        moved |= w != 0
        labels += [(w.cos() - 1).to(f32), w.sin().to(f32)]
    if spec.aniso > 0:
        w = torch.randn(N, generator=g, device=dev, dtype=torch.float64)
        r = (torch.rand(N, generator=g, device=dev, dtype=torch.float64) * 2 - 1) * math.pi
        w = torch.where(_chosen(spec.aniso, p, N, g, dev), w, nil)
        r = torch.where(torch.rand(N, generator=g, device=dev) < spec.aniso_rotate_prob, r, nil)
        s = torch.exp2(w * spec.aniso_std)
        # Stretch by s and 1/s along the axis at angle r: R(r) S(s, 1/s) R(-r), inverted.
        G_inv = G_inv @ rotate_inv(-r) @ scale_inv(s, 1 / s) @ rotate_inv(r)
        moved |= w != 0
        labels += [(w * r.cos()).to(f32), (w * r.sin()).to(f32)]
    if spec.translate > 0:
        w = torch.randn(2, N, generator=g, device=dev, dtype=torch.float64)
        w = torch.where(_chosen(spec.translate, p, N, g, dev)[None], w, nil[None])
        # Inverse of a shift by (tx, ty) pixels.
        G_inv = G_inv @ mat([[one, nil, -w[0] * W * spec.translate_std], [nil, one, -w[1] * H * spec.translate_std],
                             [nil, nil, one]])
        moved |= (w != 0).any(0)
        labels += [w[0].to(f32), w[1].to(f32)]
    # Every image is warped and the unmoved ones keep their own pixels: choosing the moved ones first (nonzero) would
    # read their count on the host, a sync per step on CUDA.
    x = torch.where(moved[:, None, None, None], _warp(x, G_inv), x)

    # Colour transforms (off in P3's configuration): on [-1, 1] values, then clamped back into range.
    coloured = False
    if spec.brightness > 0:
        w = torch.randn(N, generator=g, device=dev)
        w = torch.where(_chosen(spec.brightness, p, N, g, dev), w, zeros)
        x = x + (w * spec.brightness_std)[:, None, None, None].to(x.dtype)
        coloured, labels = True, labels + [w]
    if spec.contrast > 0:
        w = torch.randn(N, generator=g, device=dev)
        w = torch.where(_chosen(spec.contrast, p, N, g, dev), w, zeros)
        x = x * torch.exp2(w * spec.contrast_std)[:, None, None, None].to(x.dtype)
        coloured, labels = True, labels + [w]
    if spec.saturation > 0:
        w = torch.randn(N, generator=g, device=dev)
        w = torch.where(_chosen(spec.saturation, p, N, g, dev), w, zeros)
        if C == 3:
            luma = x.mean(dim=1, keepdim=True)
            x = luma + (x - luma) * torch.exp2(w * spec.saturation_std)[:, None, None, None].to(x.dtype)
        coloured, labels = True, labels + [w]
    if coloured:
        x = x.clamp(-1, 1)

    out = torch.stack(labels, dim=1) if labels else torch.zeros(N, 0, device=dev)
    return x, out


class Augmenter:
    """`augment` with its own generator, checkpointable: the trainer calls it between the batch and the objective."""

    def __init__(self, p: float, *, seed: int = 0, device: torch.device | str = "cpu",
                 spec: AugmentSpec = P3_AUGMENT):
        self.p = p
        self.spec = spec
        self.generator = torch.Generator(device).manual_seed(seed)

    def __call__(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return augment(x, self.p, self.generator, self.spec)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])

