"""DiT (P5 Table 7; playbook 2.6*, A.1): adaLN-Zero init, patch sizes, tokens, labels, dtypes."""

import pytest
import torch

from difftui.engine.models.dit import DiTBlock, sincos_pos_embed_2d
from difftui.engine.run.builders import build_model


def _tiny(tier, **kw):
    # An off-tier miniature DiT (same code path) for the dtype/layout checks, which are slow on a CPU at DiT-S.
    return tier("dit-s-2", **{"depth": 2, "num_heads": 3, "hidden_size": 96, **kw})


def _perturb(net, std=0.02):
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * std)
    return net


@pytest.mark.parametrize("name, depth, heads, width", [("dit-s-2", 12, 6, 384), ("dit-b-2", 12, 12, 768),
                                                        ("dit-xl-2", 28, 16, 1152)])
def test_tier_table(tier, name, depth, heads, width):
    with torch.device("meta"):
        net = build_model(tier(name), in_channels=4, out_channels=8, resolution=32, num_classes=1000)
    blocks = [m for m in net.modules() if isinstance(m, DiTBlock)]
    assert len(blocks) == depth
    assert {b.attn.num_heads for b in blocks} == {heads} and net.hidden_size == width


def test_adaln_zero_makes_every_block_the_identity_and_output_zero(tier):
    net = build_model(tier("dit-s-2"), in_channels=4, out_channels=8, resolution=8, num_classes=10)
    x = torch.randn(2, 4, 8, 8)
    tokens, c, _ = net.embed(x, torch.tensor([1.0, 999.0]), torch.tensor([0, 3]))
    for block in net.blocks:
        assert torch.equal(block(tokens, c), tokens)                            # gates start at zero
    assert torch.count_nonzero(net(x, torch.tensor([1.0, 999.0]), torch.tensor([0, 3]))) == 0


@pytest.mark.parametrize("patch", [2, 4, 8])
def test_patch_sizes_and_token_count(tier, patch):
    net = _perturb(build_model(_tiny(tier, patch_size=patch), in_channels=3, out_channels=6, resolution=32))
    assert net.pos_embed.shape == (1, (32 // patch) ** 2, 96)
    out = net(torch.randn(1, 3, 32, 32), torch.tensor([10.0]))
    assert out.shape == (1, 6, 32, 32) and torch.isfinite(out).all()


def test_unpatchify_inverts_patchify_layout(tier):
    net = build_model(tier("dit-s-2"), in_channels=3, out_channels=3, resolution=8)
    img = torch.arange(3 * 8 * 8, dtype=torch.float32).reshape(1, 3, 8, 8)
    p = 2
    # row-major tokens, each token (p, p, c) flattened, as DiT's final layer lays them out
    tokens = img.reshape(1, 3, 4, p, 4, p).permute(0, 2, 4, 3, 5, 1).reshape(1, 16, p * p * 3)
    assert torch.equal(net.unpatchify(tokens), img)


def test_sincos_position_table():
    pe = sincos_pos_embed_2d(8, 2)                                              # [4 tokens, 8]
    # token 1 is (row 0, col 1): first half encodes the column, second half the row (DiT / MAE)
    assert torch.allclose(pe[1, :4], torch.tensor([0.8414710, 0.0099998, 0.5403023, 0.9999500]), atol=1e-6)
    assert torch.allclose(pe[1, 4:], torch.tensor([0.0, 0.0, 1.0, 1.0]))


def test_null_label_and_label_dropout(tier):
    net = _perturb(build_model(tier("dit-s-2"), in_channels=4, out_channels=8, resolution=8, num_classes=10)).eval()
    assert net.y_embedder.embedding_table.num_embeddings == 11                  # + the null row for CFG
    x, t = torch.randn(1, 4, 8, 8), torch.tensor([50.0])
    assert torch.equal(net(x, t, None), net(x, t, torch.tensor([10])))
    assert not torch.allclose(net(x, t, torch.tensor([2])), net(x, t, None))


def test_bf16_autocast_and_channels_last(tier):
    net = _perturb(build_model(_tiny(tier), in_channels=4, out_channels=8, resolution=16, num_classes=10))
    x, t, y = torch.randn(2, 4, 16, 16), torch.tensor([5.0, 500.0]), torch.tensor([1, 2])
    net.eval()
    ref = net(x, t, y)
    assert torch.allclose(net(x.to(memory_format=torch.channels_last), t, y), ref, atol=1e-5)
    net.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x, t, y)
    out.float().square().mean().backward()
    assert torch.isfinite(out.float()).all()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
