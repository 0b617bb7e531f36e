"""The P3 networks DDPM++ / NCSN++ (playbook 2.4, A.5): embeddings, resampling filters, structure, a real forward."""

import math

import pytest
import torch
import torch.nn.functional as F

from difftui.engine.models.edm_nets import Resample, SongBlock
from difftui.engine.models.layers import FourierEmbedding, PositionalEmbedding, SpatialSelfAttention
from difftui.engine.run.builders import build_model


def _small(tier, family, **kw):
    arch = dict(model_channels=32, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[8])
    return tier(f"{family}-cifar10", **{**arch, **kw})


def test_positional_embedding_is_ddpmpp_endpoint_form():
    # EDM PositionalEmbedding(endpoint=True): frequencies (1/10000)^(i/(half-1)).
    e = PositionalEmbedding(8)(torch.tensor([0.3]))
    freqs = (1 / 10000) ** (torch.arange(4) / 3)
    assert torch.allclose(e[0], torch.cat([torch.cos(0.3 * freqs), torch.sin(0.3 * freqs)]), atol=1e-6)


def test_fourier_embedding_uses_fixed_random_frequencies():
    emb = FourierEmbedding(16)
    assert "freqs" in dict(emb.named_buffers()) and not list(emb.parameters())
    x = torch.tensor([0.25])
    args = 2 * math.pi * emb.freqs * 0.25
    assert torch.allclose(emb(x)[0], torch.cat([args.cos(), args.sin()]), atol=1e-5)


@pytest.mark.parametrize("mode", ["up", "down"])
def test_box_filter_resample_equals_general_fir_path(mode):
    x = torch.randn(2, 4, 8, 8)
    box = Resample(4, (1, 1), mode)
    fir = Resample(4, (1, 1), mode)
    fir.box = False                                                           # force the conv / conv_transpose path
    assert torch.allclose(box(x), fir(x), atol=1e-6)


def test_blur_filter_downsample_keeps_a_constant_and_halves_size():
    x = torch.ones(1, 3, 8, 8)
    y = Resample(3, (1, 3, 3, 1), "down")(x)
    assert y.shape == (1, 3, 4, 4) and torch.allclose(y[..., 1:-1, 1:-1], torch.ones(1, 3, 2, 2))
    up = Resample(3, (1, 3, 3, 1), "up")(torch.ones(1, 3, 4, 4))
    assert up.shape == (1, 3, 8, 8) and torch.allclose(up[..., 2:-2, 2:-2], torch.ones(1, 3, 4, 4))


@pytest.mark.parametrize("family, emb_type", [("ddpmpp", PositionalEmbedding), ("ncsnpp", FourierEmbedding)])
def test_p3_structure_four_blocks_attention_at_16_one_head(tier, family, emb_type):
    with torch.device("meta"):
        net = build_model(tier(f"{family}-cifar10"), in_channels=3, out_channels=3, resolution=32)
    assert isinstance(net.map_noise, emb_type)
    enc_blocks = [n for n in net.enc if "_block" in n]
    assert enc_blocks == [f"{r}x{r}_block{i}" for r in (32, 16, 8) for i in range(4)]  # playbook A.5: 4 blocks
    attn = [m for m in net.modules() if isinstance(m, SpatialSelfAttention)]
    assert all(m.num_heads == 1 for m in attn)
    # encoder 16x16 blocks (4) + decoder last 16x16 block (1) + decoder 8x8 in0 (1)
    assert len(attn) == 6
    assert any("aux_residual" in n for n in net.enc) == (family == "ncsnpp")


@pytest.mark.parametrize("family", ["ddpmpp", "ncsnpp"])
def test_small_song_unet_forward_backward_with_labels(tier, family):
    net = build_model(_small(tier, family), in_channels=3, out_channels=3, resolution=16, num_classes=10)
    x = torch.randn(2, 3, 16, 16)
    c_noise = torch.log(torch.tensor([0.5, 20.0])) / 4                         # playbook 2.4: c_noise = ln(sigma)/4
    out = net(x, c_noise, torch.tensor([1, 7]))
    assert out.shape == (2, 3, 16, 16) and torch.isfinite(out).all()
    out.square().mean().backward()
    assert net.map_layer0.weight.grad is not None and net.map_label.weight.grad.abs().sum() > 0
    # P3 init: the last conv of each branch starts at 1e-5 of Xavier, so a fresh net is close to zero.
    assert out.abs().max() < 1e-2


def test_song_block_additive_condition_form():
    blk = SongBlock(8, 8, 16, dropout=0.0, filt=(1, 1), adaptive_scale=False)
    x, emb = torch.randn(2, 8, 4, 4), torch.randn(2, 16)
    h = blk.conv0(F.silu(blk.norm0(x)))
    h = F.silu(blk.norm1(h + blk.affine(emb)[:, :, None, None]))              # P3: GroupNorm(h + v)
    expected = (blk.conv1(h) + x) * math.sqrt(0.5)
    assert torch.allclose(blk(x, emb), expected, atol=1e-5)


def test_augment_labels_enter_the_embedding(tier):
    net = build_model(_small(tier, "ddpmpp", augment_dim=9), in_channels=3, out_channels=3, resolution=16).eval()
    with torch.no_grad():
        net.out_conv.weight.normal_(std=0.1)
    x, t = torch.randn(1, 3, 16, 16), torch.zeros(1)
    assert not torch.allclose(net(x, t), net(x, t, augment_labels=torch.ones(1, 9)))
