"""torch.compile: the static models' forward passes trace as one graph (fullgraph=True), tiny models only.

`aot_eager` runs Dynamo and AOTAutograd (forward and backward graphs) without code generation, which is what
"no graph breaks" needs and is cheap on a CPU; one Inductor compile of the tiny U-Net is marked slow.
"""

import pytest
import torch

from difftui.engine.diffusion.budget import flops_loss
from difftui.engine.run.builders import build_model

TINY = {
    "unet-c64": dict(model_channels=32, channel_mult=[1, 2], num_res_blocks=1, attention_resolutions=[8]),
    "adm-imagenet64": dict(model_channels=32, channel_mult=[1, 2], num_res_blocks=1, attention_resolutions=[8],
                           num_head_channels=16),
    "ddpmpp-cifar10": dict(model_channels=32, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[8]),
    "ncsnpp-cifar10": dict(model_channels=32, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[8]),
    "dit-s-2": dict(depth=2, num_heads=3, hidden_size=96),
}


def _perturb(net):
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return net


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.parametrize("name", sorted(TINY))
def test_static_model_compiles_without_graph_breaks(tier, name):
    t = tier(name, **TINY[name])
    n_cls = 10 if t.family in ("dit", "adm") else 0
    net = _perturb(build_model(t, in_channels=3, out_channels=6, resolution=16, num_classes=n_cls, dropout=0.0))
    x, time = torch.randn(2, 3, 16, 16), torch.tensor([3.0, 600.0])
    y = torch.tensor([1, 4]) if n_cls else None
    net.eval()                                                                  # DiT's label dropout is random
    ref = net(x, time, y)
    compiled = torch.compile(net, backend="aot_eager", fullgraph=True)
    out = compiled(x, time, y)
    out.square().mean().backward()
    assert torch.allclose(out, ref, atol=1e-5)
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad and p.numel())


@pytest.mark.slow
def test_inductor_compiles_tiny_unet(tier):
    net = _perturb(build_model(tier("unet-c64", **TINY["unet-c64"]), in_channels=3, out_channels=6, resolution=16))
    net.eval()
    x, time = torch.randn(2, 3, 16, 16), torch.tensor([3.0, 600.0])
    ref = net(x, time)
    out = torch.compile(net, fullgraph=True)(x, time)
    assert torch.allclose(out, ref, atol=1e-4)


def test_dydit_training_forward_compiles_without_graph_breaks(tier):
    # The masked training path (routers, straight-through masks, the recorded FLOPs ratio) is one graph too;
    # the sliced inference path gathers kept tokens (data-dependent shapes) and is meant to run eagerly.
    t = tier("dydit-s-2", **TINY["dit-s-2"])
    net = build_model(t, in_channels=4, out_channels=8, resolution=8, num_classes=10).train()
    compiled = torch.compile(net, backend="aot_eager", fullgraph=True)
    out = compiled(torch.randn(2, 4, 8, 8), torch.tensor([1.0, 500.0]), torch.tensor([1, 2]))
    (out.square().mean() + flops_loss(net.flops_ratio(), 0.5)).backward()
    assert net.flops_ratio().item() == pytest.approx(1.0, abs=0.01)
    assert net.blocks[0].attn_router.router.weight.grad.abs().sum() > 0
