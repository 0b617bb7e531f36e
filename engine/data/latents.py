"""Latents for the DiT tiers (playbook A.1: DiT-S/B/XL are anchored on 4x32x32 SD-VAE latents of ImageNet-256).

A profile with `latents: true` is the same images, encoded once by the Stable Diffusion VAE that DiT uses
(diffusers' AutoencoderKL, stabilityai/sd-vae-ft-ema or sd-vae-ft-mse, loaded from a local folder) and cached:

    z = vae.encode(x).latent_dist.sample() * latent_scale          x in [-1, 1]; latent_scale 0.18215 (as DiT)

one posterior sample per image, drawn with a generator seeded 0 (the images' order), stored float32 [N, 4, H/8, W/8]
in the same kind of cache as the pixels (cache.py, keyed by the pixels' contents and protocol, the VAE's files and the
scale). Training sees these latents as its images; the grids and evaluation decode samples back to pixels:

    decoder = latent_decoder(profile, device)        # None for a pixel profile
    images = decoder.decode(z)                       # x = vae.decode(z / latent_scale).sample, clipped to [-1, 1]

The VAE folder is `dataset.vae`, else $DIFFTUI_VAE. Without it, one line says which files go where.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from difftui.engine.config.model import DatasetProfile
from difftui.engine.text import one_line

from .cache import CacheWriter, Progress, cache_dir_for
from .images import DataError, ImageSet
from .mapped import MappedImageSet, open_cached
from .pixels import build_pixels

__all__ = ["vae_dir", "check_vae", "load_vae", "encode_images", "load_latent_set", "latent_cache_dir",
           "LatentDecoder", "latent_decoder", "check_latents_available", "VAE_FILES", "ENCODE_BATCH"]

VAE_FILES = ("config.json", "diffusion_pytorch_model.safetensors")
ENCODE_BATCH = 32
SD_FACTOR, SD_CHANNELS = 8, 4                       # the SD VAE: 8x downsampling, 4 latent channels
LATENT_SEED = 0


def vae_dir(profile: DatasetProfile) -> Path:
    path = profile.vae or os.environ.get("DIFFTUI_VAE")
    if not path:
        raise DataError(f"dataset '{profile.name}' trains on latents but names no VAE: put {' and '.join(VAE_FILES)} "
                        f"of stabilityai/sd-vae-ft-ema (or sd-vae-ft-mse) in a folder and pass "
                        f"--set dataset.vae=DIR (or set DIFFTUI_VAE=DIR)")
    return Path(path).expanduser()


def check_vae(path: Path) -> Path:
    missing = [n for n in VAE_FILES if not (path / n).is_file()]
    if missing:
        raise DataError(f"VAE weights not found: {path}/ lacks {' and '.join(missing)}; put config.json and "
                        f"diffusion_pytorch_model.safetensors of stabilityai/sd-vae-ft-ema (or sd-vae-ft-mse) there, "
                        f"or pass --set dataset.vae=DIR (or DIFFTUI_VAE=DIR)")
    return path


def _vae_identity(path: Path) -> str:
    h = hashlib.sha256((path / "config.json").read_bytes())
    st = (path / VAE_FILES[1]).stat()
    h.update(f"{st.st_size}\t{st.st_mtime:.3f}".encode())
    return h.hexdigest()


def load_vae(path: Path, device: torch.device | str = "cpu"):
    """The AutoencoderKL in `path` (local files only), in eval mode, frozen."""
    check_vae(path)
    try:
        from diffusers import AutoencoderKL
    except ImportError:
        raise DataError("latent data sets need diffusers' AutoencoderKL: pip install 'difftui[latents]'") from None
    try:
        vae = AutoencoderKL.from_pretrained(str(path), local_files_only=True, low_cpu_mem_usage=False)
    except Exception as e:                                  # a config or weights file diffusers cannot read
        raise DataError(f"VAE in {path} does not load ({one_line(e, named=True, limit=200)})") from None
    cfg = vae.config
    factor = 2 ** (len(cfg.block_out_channels) - 1)
    if cfg.latent_channels != SD_CHANNELS or factor != SD_FACTOR or cfg.in_channels != 3:
        raise DataError(f"VAE in {path}: expected the SD VAE's form (3 channels in, 4 latent channels, 8x "
                        f"downsampling), got {cfg.in_channels} in, {cfg.latent_channels} latent, {factor}x")
    return vae.to(device).eval().requires_grad_(False)


def _pixel_key(profile: DatasetProfile) -> str:
    """The pixels' contents and protocol, without decoding them (the key of the pixel cache)."""
    pixels = dataclasses.replace(profile, latents=False)
    if profile.source in ("image_folder", "celeba"):
        from .folder import find_images
        key = find_images(pixels).content_key()
    elif profile.source == "imagenet64":
        from .imagenet64 import _content_key, check_imagenet64
        key = _content_key(check_imagenet64(pixels))
    elif profile.source == "cifar10":
        from .cifar import FOLDER, check_cifar10, cifar_root
        check_cifar10(pixels)
        files = sorted((cifar_root(pixels) / FOLDER).iterdir())
        key = hashlib.sha256("".join(f"{f.name}{f.stat().st_size}{f.stat().st_mtime}" for f in files).encode()
                             ).hexdigest()
    else:
        raise DataError(f"dataset '{profile.name}': source {profile.source!r} has no latent form")
    return cache_dir_for(pixels, key).name


def latent_cache_dir(profile: DatasetProfile) -> Path:
    path = check_vae(vae_dir(profile))
    return cache_dir_for(profile, _pixel_key(profile), kind="latents",
                         extra={"vae": _vae_identity(path), "scale": profile.latent_scale, "seed": LATENT_SEED})


def check_latents_available(profile: DatasetProfile) -> None:
    """The latents are cached, or the images and the VAE are there to make them (DataError otherwise)."""
    latent_cache_dir(profile)


@torch.no_grad()
def encode_images(vae, pixels: ImageSet, writer: CacheWriter, scale: float, *, device: torch.device,
                  batch: int = ENCODE_BATCH, progress: Progress | None = None, what: str = "encoding") -> None:
    """z = vae.encode(x).latent_dist.sample() * scale for every image, in order, into `writer`."""
    g = torch.Generator(device).manual_seed(LATENT_SEED)
    n = len(pixels)
    if progress:
        progress(0, n, what)
    for start in range(0, n, batch):
        idx = torch.arange(start, min(start + batch, n))
        x, y = pixels.batch(idx)
        dist = vae.encode(x.to(device)).latent_dist
        z = dist.sample(generator=g) * scale
        writer.append(z.float().cpu().numpy(), y.numpy() if y is not None else None)
        if progress:
            progress(int(idx[-1]) + 1, n, what)


def load_latent_set(profile: DatasetProfile, progress: Progress | None = None,
                    device: torch.device | str | None = None) -> MappedImageSet:
    """The profile's latents, encoded once (on `device`, default CUDA when there is one) and memory-mapped."""
    target = latent_cache_dir(profile)
    num_classes = profile.num_classes
    if not (target / "meta.json").exists():
        pixels = build_pixels(dataclasses.replace(profile, latents=False), progress)
        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        vae = load_vae(vae_dir(profile), dev)
        c, h, w = profile.model_shape
        with CacheWriter(target, len(pixels), (c, h, w), dtype=np.float32) as writer:
            encode_images(vae, pixels, writer, profile.latent_scale, device=dev, progress=progress,
                          what=f"encoding {profile.name} to SD-VAE latents ({c}x{h}x{w})")
            writer.commit({"dataset": profile.name, "kind": "latents", "vae": str(vae_dir(profile)),
                           "scale": profile.latent_scale, "pixels": _pixel_key(profile),
                           "num_classes": pixels.num_classes})
        del vae
    meta = json.loads((target / "meta.json").read_text())
    labelled = num_classes if meta.get("num_classes", num_classes) else 0
    return open_cached(target, name=profile.name, num_classes=labelled)


class LatentDecoder:
    """Latents -> images in [-1, 1] for the grids and evaluation: x = vae.decode(z / latent_scale).sample."""

    def __init__(self, vae, scale: float, batch: int = ENCODE_BATCH):
        self.vae = vae
        self.scale = scale
        self.batch = batch

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        dev = next(self.vae.parameters()).device
        dtype = next(self.vae.parameters()).dtype
        parts = [self.vae.decode(z[i:i + self.batch].to(dev, dtype) / self.scale).sample
                 for i in range(0, len(z), self.batch)]
        return torch.cat(parts).float().clamp(-1, 1).to(z.device)


def latent_decoder(profile: DatasetProfile, device: torch.device | str = "cpu") -> LatentDecoder | None:
    """The decoder a latent profile's samples need before they are shown or scored; None for pixels."""
    if not profile.latents:
        return None
    return LatentDecoder(load_vae(vae_dir(profile), device), profile.latent_scale)
