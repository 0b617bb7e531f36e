"""build_objective / Objective: the engine's contract, L_simple / L_vlb / L_hybrid, importance sampling, modes."""

import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from difftui.engine.config.model import Recipe, from_mapping
from difftui.engine.diffusion import (
    DDPMObjective,
    EDMObjective,
    GaussianDiffusion,
    LossSecondMomentResampler,
    SamplerArgs,
    get_named_beta_schedule,
)
from difftui.engine.run.builders import build_objective

PRESETS = Path(__file__).resolve().parents[2] / "presets"


def recipe(**kw):
    return Recipe(name="t", description="t", **kw)


class TinyNet(nn.Module):
    """A small eps network: three convs with a sinusoidal timestep embedding added after the first."""

    def __init__(self, c_in=1, c_out=1, width=32):
        super().__init__()
        self.width = width
        self.emb = nn.Linear(32, width)
        self.conv1 = nn.Conv2d(c_in, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.drop = nn.Dropout(0.1)
        self.out = nn.Conv2d(width, c_out, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x, t, y=None):
        freqs = torch.exp(-math.log(10000) * torch.arange(16, dtype=x.dtype, device=x.device) / 16)
        args = t.to(x.dtype)[:, None] * freqs[None]
        e = self.emb(torch.cat([args.cos(), args.sin()], 1))[:, :, None, None]
        h = torch.nn.functional.silu(self.conv1(x) + e)
        h = self.drop(torch.nn.functional.silu(self.conv2(h)))
        return self.out(h)


def digits(n=512):
    """The built-in data set (scikit-learn's 8x8 digits, [-1, 1], as difftui.engine.data.digits)."""
    from sklearn.datasets import load_digits
    x = torch.as_tensor(load_digits().images[:n], dtype=torch.float32).unsqueeze(1)
    return x / 16.0 * 2.0 - 1.0


#----------------------------------------------------------------------------

def test_presets_build_and_channels():
    for name, kind, out in (("p1-default", DDPMObjective, 3), ("p1-hybrid-cosine", DDPMObjective, 6),
                            ("p3-cifar10", EDMObjective, 3)):
        path = PRESETS / "recipes" / f"{name}.yaml"
        r = from_mapping(Recipe, yaml.safe_load(path.read_text()), str(path))
        obj = build_objective(r)
        assert isinstance(obj, kind) and obj.out_channels(3) == out
    assert build_objective(recipe(loss="simple", variance="ocm")).out_channels(3) == 6
    with pytest.raises(ValueError, match="no signal"):
        build_objective(recipe(loss="simple", variance="learned"))
    with pytest.raises(ValueError, match="variance head"):
        build_objective(recipe(loss="edm", variance="ocm"))


@pytest.mark.parametrize("loss,variance,keys", [
    ("simple", "fixed_small", {"loss", "L_simple"}),
    ("simple", "fixed_large", {"loss", "L_simple"}),
    ("hybrid", "learned", {"loss", "L_simple", "L_vlb", "L_hybrid"}),
    ("vlb", "learned", {"loss", "L_simple", "L_vlb"}),
    ("simple", "ocm", {"loss", "L_simple", "L_ocm"}),
    ("edm", "fixed_small", {"loss", "L_edm"}),
])
def test_logged_series_and_float64_end_to_end(loss, variance, keys):
    obj = build_objective(recipe(loss=loss, variance=variance, diffusion_steps=100))
    net = TinyNet(1, obj.out_channels(1)).double()
    nn.init.normal_(net.out.weight, std=0.1)
    x0 = digits(16).double()
    terms = obj(net, x0)
    assert set(terms) == keys
    assert all(v.dtype == torch.float64 and v.ndim == 0 and torch.isfinite(v) for v in terms.values())
    assert terms["loss"].requires_grad and not any(v.requires_grad for k, v in terms.items() if k != "loss")
    terms["loss"].backward()
    assert all(p.grad is not None for p in net.parameters())
    if loss == "hybrid":
        assert float(terms["loss"].detach()) == pytest.approx(float(terms["L_hybrid"]), rel=1e-12)
        assert float(terms["L_hybrid"]) == pytest.approx(float(terms["L_simple"] + 0.001 * terms["L_vlb"]), rel=1e-12)
    spec = SamplerArgs(kind="edm_heun" if loss == "edm" else "ddim", steps=5)
    x, nfe = obj.sample(net, torch.randn(2, 1, 8, 8, dtype=torch.float64), spec)
    assert x.dtype == torch.float64 and nfe == (9 if loss == "edm" else 5)


def test_hybrid_vlb_term_trains_only_the_variance():
    """The eps channels get the same gradient whatever lambda is: the VLB term sees a detached mean (playbook 3.0)."""
    grads = {}
    for lam in (0.0, 1000.0):
        obj = DDPMObjective(GaussianDiffusion(get_named_beta_schedule("linear", 100)), loss="hybrid",
                            variance="learned", hybrid_lambda=lam)
        out = torch.zeros(8, 2, 8, 8, dtype=torch.float64, requires_grad=True)
        torch.manual_seed(0)
        obj(lambda x, t, y, out=out: out + 0.1 * x.repeat(1, 2, 1, 1), digits(8).double())["loss"].backward()
        grads[lam] = out.grad.clone()
    torch.testing.assert_close(grads[0.0][:, :1], grads[1000.0][:, :1], rtol=0, atol=0)
    assert grads[0.0][:, 1:].abs().max() == 0 and grads[1000.0][:, 1:].abs().max() > 0


def test_importance_sampler_warmup_weights_and_state():
    T = 5
    s = LossSecondMomentResampler(T)
    np.testing.assert_array_equal(s.weights(), np.ones(T))            # uniform until 10 values per t
    for k in range(10):
        s.update(torch.arange(T), torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0 + k]))
    assert s.warmed_up()
    # P1 eq. 18: p_t ~ sqrt(E[L_t^2]), mixed with 0.001 uniform.
    rms = np.array([1, 2, 3, 4, np.sqrt(np.mean([(5.0 + k) ** 2 for k in range(10)]))])
    np.testing.assert_allclose(s.weights(), rms / rms.sum() * 0.999 + 0.001 / T, rtol=1e-12)
    s.update(torch.tensor([4]), torch.tensor([100.0]))                 # shifts out the oldest value of t=4
    history = s.state_dict()["loss_history"]                           # oldest first, as improved-diffusion keeps it
    assert history[4, -1] == 100.0 and history[4, 0] == 6.0
    t, w = s.sample(100_000, "cpu", generator=torch.Generator().manual_seed(0))
    p = s.weights() / s.weights().sum()
    np.testing.assert_allclose(np.bincount(t.numpy(), minlength=T) / 100_000, p, atol=5e-3)
    torch.testing.assert_close(w, torch.from_numpy(1 / (T * p[t.numpy()])))
    # The state survives torch.save / torch.load(weights_only=True) (the loop's checkpoints).
    buf = io.BytesIO()
    torch.save(s.state_dict(), buf)
    buf.seek(0)
    s2 = LossSecondMomentResampler(T)
    s2.load_state_dict(torch.load(buf, weights_only=True))
    np.testing.assert_array_equal(s2.weights(), s.weights())


def test_importance_sampler_batches_with_repeated_t_keep_the_newest_ten_values_of_each_t():
    """The on-device ring update equals improved-diffusion's loop over the batch in order (shift out the oldest,
    append), also when one batch draws the same t more than 10 times; and its state resumes the same history."""
    T, H = 7, 10
    s = LossSecondMomentResampler(T)
    ref_history, ref_counts = np.zeros((T, H)), np.zeros(T, dtype=int)
    g = torch.Generator().manual_seed(0)
    for step in range(30):
        n = 40 if step % 5 == 0 else 6
        t = torch.randint(0, T if step % 7 else 2, (n,), generator=g)      # some batches repeat a t 20+ times
        losses = torch.rand(n, generator=g, dtype=torch.float64) + step
        s.update(t, losses)
        for ti, loss in zip(t.tolist(), losses.tolist(), strict=True):      # improved-diffusion's update
            if ref_counts[ti] == H:
                ref_history[ti, :-1] = ref_history[ti, 1:]
                ref_history[ti, -1] = loss
            else:
                ref_history[ti, ref_counts[ti]] = loss
                ref_counts[ti] += 1
        state = s.state_dict()
        np.testing.assert_array_equal(state["loss_history"].numpy(), ref_history)
        np.testing.assert_array_equal(state["loss_counts"].numpy(), ref_counts)
    assert s.warmed_up()
    rms = np.sqrt(np.mean(ref_history ** 2, axis=-1))
    np.testing.assert_allclose(s.weights(), rms / rms.sum() * 0.999 + 0.001 / T, rtol=1e-12)
    resumed = LossSecondMomentResampler(T)
    resumed.load_state_dict(s.state_dict())
    more_t, more_l = torch.tensor([3] * 13 + [0]), torch.arange(14, dtype=torch.float64)
    s.update(more_t, more_l)
    resumed.update(more_t, more_l)
    np.testing.assert_array_equal(resumed.state_dict()["loss_history"], s.state_dict()["loss_history"])
    np.testing.assert_array_equal(s.state_dict()["loss_history"][3], np.arange(3.0, 13.0))


def test_objective_importance_sampling_learns_and_checkpoints():
    torch.manual_seed(0)
    obj = build_objective(recipe(loss="hybrid", variance="learned", diffusion_steps=50, importance_sampling=True))
    net = TinyNet(1, 2)
    x0 = digits(64)
    for _ in range(40):                                                 # 40 x 64 draws: every t gets 10 values
        obj(net, x0)
    sampler = obj.schedule_sampler
    assert sampler.warmed_up() and not np.allclose(sampler.weights(), sampler.weights().mean())
    state = obj.state_dict()
    fresh = build_objective(recipe(loss="hybrid", variance="learned", diffusion_steps=50, importance_sampling=True))
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh.schedule_sampler.weights(), sampler.weights())


def test_sampling_is_no_grad_and_restores_modes():
    obj = build_objective(recipe())
    seen = []

    class Probe(TinyNet):
        def forward(self, x, t, y=None):
            seen.append((torch.is_grad_enabled(), self.training, self.drop.training))
            return super().forward(x, t, y)

    net = Probe()
    net.drop.eval()                                                     # a submodule deliberately in eval
    obj.sample(net, torch.randn(2, 1, 8, 8), SamplerArgs(kind="ddim", steps=3))
    assert seen == [(False, False, False)] * 3
    assert net.training and not net.drop.training


def test_tiny_model_trained_with_hybrid_keeps_variance_in_bounds():
    """Playbook 3.0-3.2 on the built-in digits: finite L_vlb throughout, v' in [0, 1] (Sigma in [beta_tilde, beta])."""
    torch.manual_seed(0)
    obj = build_objective(recipe(loss="hybrid", variance="learned", diffusion_steps=1000))
    net = TinyNet(1, 2)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    data = digits(1024)
    first = None
    for _ in range(150):
        terms = obj(net, data[torch.randint(0, len(data), (64,))])
        assert torch.isfinite(terms["L_vlb"]) and torch.isfinite(terms["loss"])
        first = first if first is not None else float(terms["L_simple"])
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
    assert float(terms["L_simple"]) < first
    d = obj.diffusion
    net.eval()
    with torch.no_grad():
        x0 = data[:8]
        for i in range(0, 1000):
            t = torch.full((8,), i)
            out = net(d.q_sample(x0, t), t.float())
            var = d.p_mean_variance(out, x0, t, variance="learned")["variance"]
            lo = d.posterior_variance[i] if i > 0 else math.exp(d.posterior_log_variance_clipped[0])
            assert float(var.min()) >= lo * (1 - 1e-5) and float(var.max()) <= d.betas[i] * (1 + 1e-5), i


def test_learned_range_default_is_p1_form_and_clamp_is_playbook_2_8():
    """Default: improved-diffusion's LEARNED_RANGE for any v, also outside [-1, 1]; clamp=True bounds it."""
    betas = get_named_beta_schedule("cosine", 100)
    d = GaussianDiffusion(betas)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 1, 2, 2, generator=g, dtype=torch.float64)
    out = torch.randn(6, 2, 2, 2, generator=g, dtype=torch.float64) * 3
    t = torch.tensor([0, 1, 5, 50, 98, 99])
    lv = d.p_mean_variance(out, x, t, "learned")["log_variance"]
    frac = (out[:, 1:] + 1) / 2
    lo = torch.from_numpy(d.posterior_log_variance_clipped)[t].reshape(-1, 1, 1, 1)
    hi = torch.from_numpy(np.log(betas))[t].reshape(-1, 1, 1, 1)
    torch.testing.assert_close(lv, frac * hi + (1 - frac) * lo, rtol=0, atol=0)
    clamped = GaussianDiffusion(betas, learned_range_clamp=True).p_mean_variance(out, x, t, "learned")["log_variance"]
    inside = (out[:, 1:].abs() <= 1)
    torch.testing.assert_close(clamped[inside], lv[inside], rtol=0, atol=0)
    assert bool(((clamped >= lo - 1e-12) & (clamped <= hi + 1e-12)).all())
