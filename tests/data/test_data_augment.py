"""P3's non-leaky augmentation (playbook 1.3, A.4): identity at p = 0, images kept in range, labels that reach the
EDM network during training and are zero while sampling, and the recipe rules."""

import math

import pytest
import torch

from difftui.engine.config.catalog import Catalog
from difftui.engine.config.model import PresetError
from difftui.engine.data.augment import AUGMENT_DIM, Augmenter, AugmentSpec, _warp, augment
from difftui.engine.diffusion import SamplerArgs
from difftui.engine.models.edm_nets import SongUNet
from difftui.engine.run.builders import build_objective


def images(n=32, seed=0):
    return torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_p_zero_is_the_identity_with_zero_labels():
    x = images()
    y, labels = augment(x, 0.0, torch.Generator().manual_seed(0))
    assert torch.equal(y, x) and labels.shape == (32, AUGMENT_DIM) == (32, 9) and not labels.any()


def test_augmented_images_stay_in_range_with_every_transform_on():
    spec = AugmentSpec(brightness=1, contrast=1, saturation=1)
    for seed in range(3):
        y, labels = augment(images(seed=seed), 1.0, torch.Generator().manual_seed(seed), spec)
        assert y.min() >= -1 and y.max() <= 1 and labels.shape == (32, 12) and torch.isfinite(y).all()
    y, _ = augment(images(), 1.0, torch.Generator().manual_seed(0))          # geometric only: convex resampling
    assert y.min() >= -1 and y.max() <= 1


def test_each_transform_fires_with_probability_p_and_its_labels_say_so():
    p, n = 0.3, 4000
    x = torch.zeros(n, 1, 8, 8)
    _, labels = augment(x, p, torch.Generator().manual_seed(1))
    # Columns: xflip, yflip, scale, rot (cos-1, sin), aniso (2), translate (2).
    xflip, yflip, scale, rot, trans = labels[:, 0], labels[:, 1], labels[:, 2], labels[:, 4], labels[:, 7]
    assert abs(xflip.mean().item() - 0.5) < 0.03               # multiplier 1e8: always drawn, a fair coin
    assert abs(yflip.mean().item() - p / 2) < 0.03             # chosen with p, then a fair coin
    for col in (scale, rot, trans):
        assert abs((col != 0).float().mean().item() - p) < 0.03


def test_flips_are_exact_and_unflipped_images_are_untouched():
    x = images()
    spec = AugmentSpec(yflip=0, scale=0, rotate=0, aniso=0, translate=0)           # x-flips only
    y, labels = augment(x, 1.0, torch.Generator().manual_seed(3), spec)
    flipped = labels[:, 0] == 1
    assert flipped.any() and (~flipped).any()
    assert torch.equal(y[flipped], x[flipped].flip(3)) and torch.equal(y[~flipped], x[~flipped])


def test_warp_of_a_linear_image_is_exact_inside_the_border():
    # f(x, y) = a x + b y is reproduced exactly by bilinear sampling and 2x2 averaging; a rotation by 90 degrees
    # and a shift by (tx, ty) move it to f(G_inv p) at the centred pixel p.
    H = W = 16
    yy, xx = torch.meshgrid(torch.arange(H, dtype=torch.float64) - 7.5, torch.arange(W, dtype=torch.float64) - 7.5,
                            indexing="ij")
    f = lambda u, v: 0.04 * u - 0.02 * v
    img = f(xx, yy)[None, None].float()
    t, tx, ty = math.pi / 2, 1.5, -2.0
    # Inverse of "rotate by t, then shift by (tx, ty)": p_in = R(-t) (p_out - (tx, ty)).
    c, s = math.cos(t), math.sin(t)
    G_inv = torch.tensor([[c, s, -(c * tx + s * ty)], [-s, c, -(-s * tx + c * ty)], [0, 0, 1]],
                         dtype=torch.float64)[None]
    out = _warp(img, G_inv)[0, 0].double()
    ux = G_inv[0, 0, 0] * xx + G_inv[0, 0, 1] * yy + G_inv[0, 0, 2]
    uy = G_inv[0, 1, 0] * xx + G_inv[0, 1, 1] * yy + G_inv[0, 1, 2]
    inside = (ux.abs() < 7) & (uy.abs() < 7)
    assert inside.sum() > 100
    torch.testing.assert_close(out[inside], f(ux, uy)[inside], atol=1e-5, rtol=0)


def test_augmenter_state_resumes_the_same_draws():
    a = Augmenter(0.5, seed=4)
    a(images())
    state = a.state_dict()
    expect = a(images(seed=1))
    b = Augmenter(0.5, seed=99)
    b.load_state_dict(state)
    got = b(images(seed=1))
    assert torch.equal(got[0], expect[0]) and torch.equal(got[1], expect[1])


class SpyLabels:
    """Records what enters SongUNet's augment map layer."""

    def __init__(self, net):
        self.seen = []
        net.map_augment.register_forward_hook(lambda m, inp, out: self.seen.append(inp[0].detach().clone()))


def tiny_net():
    return SongUNet(in_channels=3, out_channels=3, resolution=16, model_channels=16, channel_mult=(1, 2), num_blocks=1,
                    attn_resolutions=(8,), augment_dim=AUGMENT_DIM)


def test_augment_labels_reach_the_network_in_training_and_are_zero_while_sampling():
    recipe = Catalog().get("recipes", "p3-cifar10")
    objective = build_objective(recipe)
    net = tiny_net()
    spy = SpyLabels(net)
    gen = torch.Generator().manual_seed(0)
    x, labels = augment(images(16), recipe.augment_p, gen)              # p = 0.12, P3's CIFAR-10 value
    terms = objective(net, x, None, augment_labels=labels)
    terms["loss"].backward()
    assert net.map_augment.weight.grad is not None and net.map_augment.weight.grad.abs().sum() > 0
    fed = spy.seen[-1]
    assert torch.equal(fed, labels) and fed[:, 1:].abs().sum(1).gt(0).any()     # some images drew a transform
    spy.seen.clear()
    grid, nfe = objective.sample(net, torch.randn(4, 3, 16, 16), SamplerArgs(kind="edm_euler", steps=3))
    assert nfe == 3 and len(spy.seen) == 3 and all(not s.any() for s in spy.seen)


def test_ddpm_objective_refuses_augment_labels():
    objective = build_objective(Catalog().get("recipes", "p1-default"))
    with pytest.raises(ValueError, match="EDM objective"):
        objective(lambda x, t, y: x, images(2), None, augment_labels=torch.zeros(2, 9))


def test_recipes_carry_p3s_probabilities_and_the_rules_hold():
    c = Catalog()
    assert c.get("recipes", "p3-cifar10").augment_p == 0.12 and c.get("recipes", "p3-ffhq-afhq").augment_p == 0.15
    config = c.resolve(dataset="cifar10", backbone="ddpmpp-cifar10", sampler="edm-heun", recipe="p3-cifar10")
    assert config.recipe.augment_p == 0.12 and config.backbone.arch["augment_dim"] == AUGMENT_DIM
    # P3's FFHQ/AFHQ networks are the 64x64 variants of DDPM++/NCSN++ (no shipped tier): off the CIFAR-10 tier.
    c.resolve(dataset="ffhq64", backbone="ncsnpp-cifar10", sampler="edm-heun", recipe="p3-ffhq-afhq", off_tier=True)
    with pytest.raises(PresetError, match=r"augment_p': 0.12: .*backbone 'unet-demo'") as e:
        c.resolve(backbone="unet-demo", sampler="edm-heun", recipe="p3-cifar10")
    assert "\n" not in str(e.value)
    with pytest.raises(PresetError, match="set dataset.x_flip=false"):
        c.resolve(dataset="cifar10", backbone="ddpmpp-cifar10", sampler="edm-heun", recipe="p3-cifar10",
                  overrides=["dataset.x_flip=true"])
    with pytest.raises(PresetError, match=r"key .recipe.augment_p.: expected <= 1.0, got 1.5"):
        c.resolve(recipe="p3-cifar10", backbone="ddpmpp-cifar10", sampler="edm-heun",
                  overrides=["recipe.augment_p=1.5"])
