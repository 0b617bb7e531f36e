"""The latent path of the DiT tiers (playbook A.1) end to end with a tiny RANDOMLY INITIALISED AutoencoderKL built
from a config (no download, no pretrained weights: it checks the plumbing, not image quality): encode an image folder
once, cache the latents with their scale factor, train a few steps of a tiny DiT on them through the objective,
decode a fixed-x_T grid."""

import dataclasses
import io

import numpy as np
import pytest
import torch
from datakit import png_bytes, smooth_image
from PIL import Image

from difftui.engine.config.catalog import Catalog
from difftui.engine.config.model import PresetError
from difftui.engine.data import DataError, build_dataset, check_available
from difftui.engine.data.latents import latent_decoder
from difftui.engine.data.mapped import MappedImageSet
from difftui.engine.diffusion import SamplerArgs
from difftui.engine.run.builders import build_model, build_objective
from difftui.engine.run.sample_grid import grid_png


@pytest.fixture
def tiny_vae_dir(tmp_path):
    """A tiny AutoencoderKL with the SD VAE's form (3 -> 4 latent channels, 8x down), random weights, saved in the
    folder layout of stabilityai/sd-vae-ft-ema (config.json + diffusion_pytorch_model.safetensors)."""
    from diffusers import AutoencoderKL
    torch.manual_seed(0)
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(8, 8, 8, 8),
                        layers_per_block=1, latent_channels=4, norm_num_groups=4, sample_size=64)
    vae.save_pretrained(tmp_path / "vae")
    return tmp_path / "vae"


@pytest.fixture
def pictures(tmp_path):
    root = tmp_path / "pics"
    for i in range(12):
        (root / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        (root / f"c{i % 2}" / f"{i:02d}.png").write_bytes(png_bytes(smooth_image(i, (80, 70))))
    return root


def latent_profile(root, vae, **changes):
    return dataclasses.replace(Catalog().get("datasets", "image-folder"), root=str(root), resolution=64,
                               heldout=0.0, latents=True, vae=str(vae), labels="subfolders", num_classes=2, **changes)


def test_latents_are_encoded_once_cached_and_scaled(pictures, tiny_vae_dir, monkeypatch):
    p = latent_profile(pictures, tiny_vae_dir)
    assert p.model_shape == (4, 8, 8)
    check_available(p)
    data = build_dataset(p)
    assert isinstance(data, MappedImageSet) and len(data) == 12 and data.shape == (4, 8, 8)
    assert data.images.dtype == torch.float32 and data.labels.tolist() == [0] * 6 + [1] * 6      # c0/..., then c1/...
    # The cached values are the VAE's posterior sample (seed 0) times 0.18215: recompute the first one.
    from diffusers import AutoencoderKL
    vae = AutoencoderKL.from_pretrained(str(tiny_vae_dir)).eval()
    pixels = build_dataset(dataclasses.replace(p, latents=False))
    with torch.no_grad():
        dist = vae.encode(pixels.batch(torch.arange(12))[0]).latent_dist
        z = dist.sample(generator=torch.Generator().manual_seed(0)) * 0.18215
    torch.testing.assert_close(data.images, z, atol=1e-5, rtol=1e-5)
    # A second start opens the cache: no encoding.
    from difftui.engine.data import latents
    monkeypatch.setattr(latents, "encode_images", lambda *a, **k: (_ for _ in ()).throw(AssertionError("again")))
    assert torch.equal(build_dataset(p).images, data.images)


def test_tiny_dit_trains_on_the_latents_and_its_grid_is_decoded(pictures, tiny_vae_dir):
    torch.manual_seed(0)
    p = latent_profile(pictures, tiny_vae_dir)
    data = build_dataset(p)
    recipe = Catalog().get("recipes", "p1-default")
    objective = build_objective(recipe, clip=False)                 # latents are not bounded to [-1, 1]
    tier = dataclasses.replace(Catalog().get("backbones", "dit-s-2"), off_tier=True,
                               arch={**Catalog().get("backbones", "dit-s-2").arch, "depth": 2, "hidden_size": 48,
                                     "num_heads": 2})
    c, h, w = data.shape
    net = build_model(tier, in_channels=c, out_channels=objective.out_channels(c), resolution=h, num_classes=2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    losses = []
    for step in range(4):
        x, y = data.batch(torch.arange(step * 3, step * 3 + 6) % 12)
        terms = objective(net, x, y)
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
        losses.append(terms["loss"].item())
    assert all(np.isfinite(losses))
    x_T = torch.randn(8, c, h, w, generator=torch.Generator().manual_seed(5))
    z, nfe = objective.sample(net, x_T, SamplerArgs(kind="ddim", steps=5), y=torch.arange(8) % 2)
    assert nfe == 5 and z.shape == (8, 4, 8, 8)
    decoder = latent_decoder(p)
    images = decoder.decode(z)
    assert images.shape == (8, 3, 64, 64) and images.min() >= -1 and images.max() <= 1
    grid = Image.open(io.BytesIO(grid_png(images)))
    assert grid.size == (8 * 64 + 9 * 2, 64 + 2 * 2)               # one row of 8 tiles of 64 px, 2 px padding


def test_pixel_profiles_need_no_decoder():
    assert latent_decoder(Catalog().get("datasets", "cifar10")) is None


def test_a_missing_vae_is_one_line_saying_which_files_go_where(pictures, tmp_path, monkeypatch):
    monkeypatch.delenv("DIFFTUI_VAE", raising=False)
    for vae, expect in ((str(tmp_path / "nothing"), "lacks config.json and diffusion_pytorch_model.safetensors"),
                        (None, "names no VAE")):
        with pytest.raises(DataError) as e:
            build_dataset(dataclasses.replace(latent_profile(pictures, tmp_path), vae=vae))
        message = str(e.value)
        assert "\n" not in message and expect in message and "sd-vae-ft-ema" in message
        assert "dataset.vae" in message and "DIFFTUI_VAE" in message
    monkeypatch.setenv("DIFFTUI_VAE", str(tmp_path / "env-vae"))
    with pytest.raises(DataError, match="env-vae"):
        check_available(dataclasses.replace(latent_profile(pictures, tmp_path), vae=None))


def test_the_tier_check_refuses_a_latent_tier_on_pixels_of_the_wrong_shape():
    c = Catalog()
    with pytest.raises(PresetError) as e:
        c.resolve(dataset="ffhq64", backbone="dit-s-2")
    message = str(e.value)
    assert "\n" not in message and "'dit-s-2' is a latent tier" in message and "3x64x64 pixels" in message
    assert c.resolve(dataset="imagenet256-latents", backbone="dit-b-2").dataset.model_shape == (4, 32, 32)
    assert c.resolve(dataset="cifar10", backbone="dit-s-2").backbone.name == "dit-s-2"     # 32x32 pixels fit
    with pytest.raises(PresetError, match="dydit-s-2' is a latent tier"):
        c.resolve(dataset="lsun-bedroom", backbone="dydit-s-2", overrides=["recipe.flops_lambda=0.5"])
    assert c.resolve(dataset="ffhq64", backbone="dit-s-2", off_tier=True).backbone.off_tier
