"""The P1 U-Net and ADM: structure of playbook 2.0-2.3 / A.5, the scale-shift condition, attention, init, dtypes."""

import math

import pytest
import torch
import torch.nn.functional as F

from difftui.engine.models.layers import SpatialSelfAttention, scale_shift, timestep_embedding
from difftui.engine.models.unet import ResBlock, UNet
from difftui.engine.run.builders import build_model, network_kwargs


def _small(tier, **kw):
    # An off-tier miniature of the P1 network (same code path) so that real CPU forwards stay cheap.
    arch = dict(model_channels=32, channel_mult=[1, 2], num_res_blocks=1, attention_resolutions=[8])
    return tier("unet-c64", **{**arch, **kw})


def _perturb(net, std=0.02):
    # Fresh U-Nets output exactly zero (zero-initialised output conv); give every weight a little noise.
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * std)
    return net


def test_fresh_unet_outputs_zero_because_output_conv_is_zero_initialised(tier):
    net = build_model(_small(tier), in_channels=3, out_channels=6, resolution=16)
    out = net(torch.randn(2, 3, 16, 16), torch.tensor([3.0, 700.0]))
    assert out.shape == (2, 6, 16, 16) and torch.count_nonzero(out) == 0


def test_channel_table_and_attention_placement_of_c128(tier):
    # playbook 2.0: 64:128, 32:256, 16:384, 8:512; attention at 16x16 and 8x8 only, 4 heads of d_model/4.
    with torch.device("meta"):
        net = build_model(tier("unet-c128"), in_channels=3, out_channels=6, resolution=64)
    widths, attn = {}, []

    def hook(mod, args, out):
        res = out.shape[-1]
        if isinstance(mod, ResBlock):
            widths.setdefault(res, set()).add(out.shape[1])
        else:
            attn.append((res, out.shape[1], mod.num_heads))
    for m in net.modules():
        if isinstance(m, (ResBlock, SpatialSelfAttention)):
            m.register_forward_hook(hook)
    with torch.device("meta"):
        net(torch.empty(1, 3, 64, 64), torch.zeros(1))
    assert widths == {64: {128}, 32: {256}, 16: {384}, 8: {512}}
    assert {r for r, _, _ in attn} == {16, 8}
    assert all(h == 4 and c % 4 == 0 for _, c, h in attn)
    # 3 blocks per down stage + middle + 4 per up stage at each of the two attention resolutions.
    assert len(attn) == 2 * 3 + 1 + 2 * 4


def test_adm_heads_are_64_channels_each_at_32_16_8(tier):
    with torch.device("meta"):
        net = build_model(tier("adm-imagenet64"), in_channels=3, out_channels=3, resolution=64, num_classes=1000)
    heads = {m.qkv.in_channels: m.num_heads for m in net.modules() if isinstance(m, SpatialSelfAttention)}
    assert heads == {384: 6, 576: 9, 768: 12}                                   # playbook A.5: 6-9-12 heads
    assert any(isinstance(m, ResBlock) and m.resample is not None for m in net.modules())


def test_scale_shift_is_groupnorm_times_w_plus_one_plus_b():
    h = torch.randn(2, 8, 4, 4)
    w, b = torch.randn(2, 8), torch.randn(2, 8)
    out = scale_shift(h, torch.cat([w, b], dim=1))
    assert torch.allclose(out, h * (w[:, :, None, None] + 1) + b[:, :, None, None], atol=1e-6)


def test_resblock_applies_the_condition_after_the_norm():
    blk = ResBlock(16, 32, emb_ch=24, dropout=0.0)
    with torch.no_grad():
        blk.conv1.weight.normal_(std=0.05)
    x, emb = torch.randn(2, 16, 8, 8), torch.randn(2, 24)
    h = blk.conv0(F.silu(blk.norm0(x)))
    w, b = blk.emb(emb).chunk(2, dim=1)
    h = F.group_norm(h, blk.norm1.num_groups, blk.norm1.weight, blk.norm1.bias, blk.norm1.eps)
    h = h * (w[:, :, None, None] + 1) + b[:, :, None, None]                     # playbook 2.3
    expected = blk.skip(x) + blk.conv1(F.silu(h))
    assert torch.allclose(blk(x, emb), expected, atol=1e-5)


def test_attention_matches_explicit_softmax_with_d_head_d_model_over_4():
    attn = SpatialSelfAttention(32, num_heads=4)
    with torch.no_grad():
        attn.proj.weight.normal_(std=0.1)
    x = torch.randn(2, 32, 4, 4)
    q, k, v = attn.qkv(attn.norm(x)).reshape(2, 3, 4, 8, 16).unbind(1)        # [B, heads, d_head=8, HW]
    w = torch.softmax(torch.einsum("bhdq,bhdk->bhqk", q, k) / math.sqrt(8), dim=-1)
    a = torch.einsum("bhqk,bhdk->bhdq", w, v).reshape(2, 32, 4, 4)
    assert torch.allclose(attn(x), x + attn.proj(a), atol=1e-5)


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_attention_gives_sdpa_q_k_v_with_a_unit_last_stride_in_both_memory_layouts(layout, monkeypatch):
    """Issue 19 item 5: SDPA's fused kernels (flash, memory-efficient; flash-for-CPU here) need q/k/v contiguous in
    the head dimension; an NCHW input used to give them a last stride of H*W, and the math kernel ran. The snapshot
    evaluator and channels_last=false runs use NCHW. Same numbers in both layouts."""
    from torch.utils._python_dispatch import TorchDispatchMode

    torch.manual_seed(0)
    attn = _perturb(SpatialSelfAttention(32, num_heads=4))
    x = torch.randn(2, 32, 6, 5)
    if layout == "channels_last":
        attn, x = attn.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    strides, kernels = [], []
    sdpa = F.scaled_dot_product_attention

    def recording(q, k, v, *args, **kwargs):
        strides.append([t.stride(-1) for t in (q, k, v)])
        return sdpa(q, k, v, *args, **kwargs)

    class Kernels(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if "attention" in str(func) or func is torch.ops.aten.bmm.default:
                kernels.append(str(func))
            return func(*args, **(kwargs or {}))

    monkeypatch.setattr(F, "scaled_dot_product_attention", recording)
    with Kernels():
        out = attn(x)
    assert strides == [[1, 1, 1]]
    assert kernels == ["aten._scaled_dot_product_flash_attention_for_cpu.default"]     # not the math kernel's bmm
    monkeypatch.undo()
    other = x.contiguous() if layout == "channels_last" else x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, attn(other))


def test_timestep_embedding_is_cos_then_sin_of_geometric_frequencies():
    e = timestep_embedding(torch.tensor([0.0, 10.0]), 8)
    freqs = torch.exp(-math.log(10000) * torch.arange(4) / 4)
    assert torch.allclose(e[1], torch.cat([torch.cos(10 * freqs), torch.sin(10 * freqs)]), atol=1e-6)
    assert torch.equal(e[0], torch.tensor([1.0] * 4 + [0.0] * 4))


def test_dropout_follows_arch_unless_overridden(tier):
    t = _small(tier, dropout=0.1)
    net = build_model(t, in_channels=3, out_channels=3, resolution=16)
    assert {m.p for m in net.modules() if isinstance(m, torch.nn.Dropout)} == {0.1}
    net = build_model(t, in_channels=3, out_channels=3, resolution=16, dropout=0.3)
    assert {m.p for m in net.modules() if isinstance(m, torch.nn.Dropout)} == {0.3}


def test_timestep_and_label_change_the_output(tier):
    net = _perturb(build_model(_small(tier), in_channels=3, out_channels=3, resolution=16, num_classes=5)).eval()
    x = torch.randn(1, 3, 16, 16)
    a = net(x, torch.tensor([10.0]), torch.tensor([1]))
    assert not torch.allclose(a, net(x, torch.tensor([900.0]), torch.tensor([1])))
    assert not torch.allclose(a, net(x, torch.tensor([10.0]), torch.tensor([3])))


def test_channels_last_input_gives_the_same_output(tier):
    net = _perturb(build_model(_small(tier), in_channels=3, out_channels=6, resolution=16)).eval()
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([5.0, 500.0])
    ref = net(x, t)
    net_cl = net.to(memory_format=torch.channels_last)
    out = net_cl(x.to(memory_format=torch.channels_last), t)
    assert torch.allclose(out, ref, atol=1e-5)


def test_bf16_autocast_forward_and_backward(tier):
    net = _perturb(build_model(_small(tier), in_channels=3, out_channels=6, resolution=16))
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([5.0, 500.0])
    ref = net(x, t)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x, t)
    out.float().square().mean().backward()
    assert torch.isfinite(out.float()).all()
    assert (out.float() - ref).norm() / ref.norm() < 0.05
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters() if p.requires_grad)


def test_unet_rejects_a_resolution_that_does_not_halve_enough(tier):
    with pytest.raises(ValueError, match="does not halve"):
        UNet(in_channels=3, out_channels=3, resolution=36, **network_kwargs(tier("unet-c64")))


def test_blocks_receive_silu_of_the_time_and_label_embedding(tier):
    # improved-diffusion: emb = MLP(sinusoid(t)) + label; each block's emb layer is SiLU -> Linear.
    net = build_model(_small(tier), in_channels=3, out_channels=3, resolution=16, num_classes=5)
    seen = []
    net.down[0].block.register_forward_hook(lambda mod, args, out: seen.append(args[1]))
    t, y = torch.tensor([7.0, 300.0]), torch.tensor([0, 4])
    net(torch.randn(2, 3, 16, 16), t, y)
    expected = F.silu(net.time_embed(timestep_embedding(t, 32)) + net.label_embed(y))
    assert torch.allclose(seen[0], expected, atol=1e-6)
