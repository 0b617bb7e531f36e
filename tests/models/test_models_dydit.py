"""DyDiT (P5; playbook 2.6, 3.5, 4.4, A.2): equivalence with the static DiT, the FLOPs accounting, the FLOPs term."""

import pytest
import torch

from difftui.engine.diffusion.budget import flops_loss
from difftui.engine.models.dydit import LAMBDA_GRID_SB, LAMBDA_GRID_XL, DyDiTBlock, gumbel_sigmoid_ste
from difftui.engine.models.flops import count_macs, flop_counter
from difftui.engine.run.builders import build_model, measure_macs

KW = dict(in_channels=4, out_channels=8, resolution=8, num_classes=10)          # DiT-S/2 on 8x8x4: 16 tokens


@pytest.fixture(scope="module")
def pair():
    """A DiT-S/2 with non-trivial weights and a DyDiT-S/2 loaded from its state dict."""
    from difftui.engine.config.catalog import Catalog
    cat = Catalog()
    torch.manual_seed(0)
    dit = build_model(cat.get("backbones", "dit-s-2"), **KW)
    with torch.no_grad():
        for p in dit.parameters():
            p.add_(torch.randn_like(p) * 0.02)                                  # leave adaLN-Zero's zero start
    dy = build_model(cat.get("backbones", "dydit-s-2"), **KW)
    dy.load_static_state_dict(dit.state_dict())
    return dit.eval(), dy.eval()


def _scramble_routers(dy, seed=1):
    """Switch a random subset of heads, channel groups and tokens off (deterministically)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for blk in dy.blocks:
            blk.attn_router.router.bias.copy_(torch.randn(6, generator=g) * 20)
            blk.mlp_router.router.bias.copy_(torch.randn(6, generator=g) * 20)
            blk.token_router.mlp_head[2].bias.fill_(0.0)


def _restore_routers(dy):
    with torch.no_grad():
        for blk in dy.blocks:
            blk.init_routers()


X = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(5))
Y = torch.tensor([1, 2, 3])


def test_fresh_dydit_computes_the_static_dit(pair):
    dit, dy = pair
    t = torch.tensor([10.0, 500.0, 999.0])
    ref = dit(X, t, Y)
    out = dy(X, t, Y)                                                           # masked path (mixed t)
    assert torch.equal(out, ref)
    assert dy.flops_ratio().item() == pytest.approx(1.0, abs=0.01)              # routers' own work only
    with torch.no_grad():
        ts = torch.full((3,), 500.0)
        assert torch.allclose(dy(X, ts, Y), dit(X, ts, Y), atol=1e-5)          # sliced path (shared t)


def test_lambda_one_with_routers_forced_on_equals_the_static_dit(pair):
    dit, dy = pair
    _scramble_routers(dy)
    try:
        t = torch.tensor([10.0, 500.0, 999.0])
        ref = dit(X, t, Y)
        with dy.routers_forced_on():
            assert torch.equal(dy(X, t, Y), ref)
            ratio = dy.flops_ratio()
        assert flops_loss(ratio, 1.0).item() < 1e-4                              # lambda = 1 is met
        with dy.complete():
            assert torch.equal(dy(X, t, Y), ref)
        assert not torch.allclose(dy(X, t, Y), ref)                             # and the routers do act
    finally:
        _restore_routers(dy)


def test_sliced_inference_equals_masked_computation(pair):
    _, dy = pair
    _scramble_routers(dy)
    try:
        t = torch.full((3,), 400.0)
        masked = dy(X, t, Y)                                                    # grad enabled: masked path
        r_masked = dy.flops_ratio().item()
        with torch.no_grad():
            sliced = dy(X, t, Y)
        assert torch.allclose(sliced, masked, atol=1e-5)
        assert dy.flops_ratio().item() == pytest.approx(r_masked, rel=1e-6)
        assert r_masked < 0.95
    finally:
        _restore_routers(dy)


def test_analytic_dynamic_macs_match_flop_counter_on_the_sliced_network(pair):
    _, dy = pair
    _scramble_routers(dy, seed=3)
    try:
        with torch.no_grad():
            macs = count_macs(dy, X[:1], torch.tensor([250.0]), Y[:1])         # really-skipped work, counted
        analytic = dy.flops_ratio().item() * dy.flops.static
        assert macs == pytest.approx(analytic, rel=1e-6)
        assert macs < 0.9 * dy.flops.static
    finally:
        _restore_routers(dy)


def test_per_block_count_matches_flop_counter_on_a_static_slice(pair):
    # One block with h heads and g channel groups active and all tokens kept == a static block of that width.
    _, dy = pair
    blk: DyDiTBlock = dy.blocks[0]
    x, c = torch.randn(1, 16, 384), torch.randn(1, 384)
    heads, groups = torch.tensor([0, 2, 5]), torch.tensor([1, 4])
    counter = flop_counter()
    with torch.no_grad(), counter:
        blk.forward_sliced(x, c, heads, groups, force_on=True)
    h, g, n = torch.tensor([3.0]), torch.tensor([2.0]), torch.tensor([16.0])
    expected = dy.flops.block(h, g, n).item() - dy.flops.router_const
    assert counter.get_total_flops() // 2 == expected


def test_f_static_equals_measured_dit_macs(tier):
    t = tier("dit-s-2")
    with torch.device("meta"):
        dy = build_model(tier("dydit-s-2"), in_channels=4, out_channels=8, resolution=32, num_classes=1000)
    assert dy.flops.static == measure_macs(t, in_channels=4, out_channels=8, resolution=32)


def test_flops_loss_is_the_squared_gap():
    r = torch.tensor(0.8, requires_grad=True)
    loss = flops_loss(r, 0.5)
    loss.backward()
    assert loss.item() == pytest.approx(0.09) and r.grad.item() == pytest.approx(0.6)


def test_gumbel_sigmoid_is_hard_forward_soft_backward():
    logits = torch.tensor([-3.0, 0.5, 4.0], requires_grad=True)
    m = gumbel_sigmoid_ste(logits, tau=1.0, threshold=0.5, training=False)
    assert torch.equal(m.detach(), torch.tensor([0.0, 1.0, 1.0]))
    m.sum().backward()
    s = torch.sigmoid(logits.detach())
    assert torch.allclose(logits.grad, s * (1 - s))


def test_masks_depend_only_on_t_and_are_precomputed(pair):
    _, dy = pair
    _scramble_routers(dy, seed=4)
    try:
        with torch.no_grad():
            fresh = dy(X, torch.full((3,), 700.0), Y)
            dy.precompute_masks([700.0, 10.0])
            assert set(dy._mask_cache) == {700.0, 10.0}
            cached = dy(X, torch.full((3,), 700.0), Y)
            other_x = dy(torch.randn(3, 4, 8, 8), torch.full((3,), 700.0), Y)
        assert torch.equal(cached, fresh) and other_x.shape == fresh.shape
        hm1, _ = dy.blocks[0].width_masks(dy.t_embedder(torch.tensor([700.0, 700.0])), False)
        assert torch.equal(hm1[0], hm1[1])
    finally:
        dy.clear_mask_cache()
        _restore_routers(dy)


def test_warmup_and_lambda_grids(tier):
    # playbook A.2: warm-up 30,000 steps for DiT-XL, 0 for S/B; lambda grids per tier.
    with torch.device("meta"):
        xl = build_model(tier("dydit-xl-2"), in_channels=4, out_channels=8, resolution=32)
        s = build_model(tier("dydit-s-2"), in_channels=4, out_channels=8, resolution=32)
    assert xl.in_warmup(29_999) and not xl.in_warmup(30_000) and not s.in_warmup(0)
    assert LAMBDA_GRID_SB == (0.9, 0.8, 0.7, 0.5, 0.4, 0.3) and LAMBDA_GRID_XL == (0.7, 0.6, 0.5, 0.3)


def test_flops_term_pulls_the_measured_ratio_toward_lambda(tier):
    # A short CPU run of DyDiT-S/2 on 8x8x4 inputs: diffusion loss + (ratio - lambda)^2 with lambda = 0.5,
    # the warm-up's complete-model loss on the first step. The recorded ratio starts at ~1 and moves to lambda.
    torch.manual_seed(0)
    lam = 0.5
    net = build_model(tier("dydit-s-2", warmup_steps=1), in_channels=4, out_channels=4, resolution=8)
    routers = [p for n, p in net.named_parameters() if "router" in n]
    rest = [p for n, p in net.named_parameters() if "router" not in n]
    opt = torch.optim.AdamW([{"params": rest, "lr": 1e-4}, {"params": routers, "lr": 5e-2}], weight_decay=0.0)
    data = torch.randn(32, 4, 8, 8)
    ratios = []
    for step in range(6):
        x0 = data[torch.randint(0, 32, (4,))]
        t = torch.randint(0, 1000, (4,)).float()
        eps = torch.randn_like(x0)
        abar = (1 - t / 1000)[:, None, None, None]
        x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * eps
        loss = (net(x_t, t) - eps).square().mean() + flops_loss(net.flops_ratio(), lam)
        ratios.append(net.flops_ratio().item())
        if net.in_warmup(step):
            with net.complete():
                loss = loss + (net(x_t, t) - eps).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        net(data[:4], torch.full((4,), 500.0))
    measured = net.flops_ratio().item()
    assert ratios[0] == pytest.approx(1.0, abs=0.01)
    assert abs(ratios[-1] - lam) < 0.25 * (1 - lam)
    assert abs(measured - lam) < 0.25 * (1 - lam)                               # inference really skips it
