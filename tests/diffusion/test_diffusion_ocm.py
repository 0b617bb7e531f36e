"""OCM (P6; playbook 3.6-3.7, 5.7-5.8, A.8) and the few-step covariance panel against exact Gaussian answers."""

import math

import pytest
import torch
from torch import nn

from difftui.engine.config.model import Recipe
from difftui.engine.diffusion import (
    GaussianDiffusion,
    GaussianOracle,
    SamplerArgs,
    covariance_sample,
    ddim_sample,
    get_named_beta_schedule,
    hutchinson_diag_hessian,
    ocm_target,
    rademacher_like,
    respaced,
)
from difftui.engine.run.builders import build_objective

SHAPE = (1, 2, 2)


@pytest.fixture(scope="module")
def full_cov():
    """Correlated Gaussian data, so that the Hessian has off-diagonal terms and v * (H v) is a noisy estimate."""
    g = torch.Generator().manual_seed(0)
    A = torch.randn(4, 4, generator=g, dtype=torch.float64) * 0.4
    mean = torch.tensor([0.2, -0.1, 0.0, 0.3], dtype=torch.float64).reshape(SHAPE)
    return GaussianOracle(mean, cov=A @ A.T + 0.05 * torch.eye(4, dtype=torch.float64))


@pytest.fixture(scope="module")
def diag():
    mean = torch.tensor([0.3, -0.2, 0.1, 0.0], dtype=torch.float64).reshape(SHAPE)
    std = torch.tensor([0.5, 0.25, 0.8, 0.1], dtype=torch.float64).reshape(SHAPE)
    return GaussianOracle(mean, std=std)


def test_rademacher():
    v = rademacher_like(torch.empty(100_000, dtype=torch.float64), torch.Generator().manual_seed(0))
    assert set(v.unique().tolist()) == {-1.0, 1.0} and abs(float(v.mean())) < 0.01


def test_hutchinson_mean_matches_exact_diagonal_hessian(full_cov):
    a = 0.3
    H = full_cov.hessian(a)
    assert float((H - torch.diag(torch.diag(H))).abs().max()) > 0.1        # off-diagonals make it a real estimate
    x = full_cov.sample(3, torch.Generator().manual_seed(1))
    M = 4000
    est = hutchinson_diag_hessian(lambda z: full_cov.score(z, a), x, num_samples=M,
                                  generator=torch.Generator().manual_seed(2))
    exact = full_cov.hessian_diag(a, x)
    # Per-coordinate standard error: sqrt(sum_{j != i} H_ij^2 / M).
    se = ((H ** 2).sum(1) - torch.diag(H) ** 2).sqrt() / math.sqrt(M)
    assert float(((est - exact).reshape(3, 4).abs() / se).max()) < 4.5
    single = hutchinson_diag_hessian(lambda z: full_cov.score(z, a), x, num_samples=1,
                                     generator=torch.Generator().manual_seed(3))
    assert float((single - exact).abs().max()) > 0.05                     # one sample alone is biased-looking noise


def test_ocm_target_mean_is_the_normalised_head(full_cov):
    a = 0.6
    sigma = math.sqrt(1 - a)
    x = full_cov.sample(2, torch.Generator().manual_seed(4)).requires_grad_(True)
    eps = full_cov.eps(x, a)
    g = torch.Generator().manual_seed(5)
    M = 4000
    acc = torch.zeros_like(x)
    for _ in range(M):
        acc += ocm_target(eps, x, rademacher_like(x, g), torch.tensor(sigma, dtype=torch.float64))
    exact = full_cov.ocm_head(a, x.detach())
    assert float((acc / M - exact).abs().max()) < 0.02
    # g = -sigma^2 diag(H) lies in [0, 1] for data with variance <= 1 (here the prior variance is small).
    assert float(exact.min()) >= 0 and float(exact.max()) <= 1


class ExactEpsWithHeadTable(nn.Module):
    """Exact eps of the Gaussian data plus a learnable per-timestep head (diag(H) does not depend on x here)."""

    def __init__(self, oracle, chain):
        super().__init__()
        self.oracle, self.ab = oracle, torch.from_numpy(chain.alphas_cumprod)
        self.table = nn.Parameter(torch.zeros(chain.num_timesteps, *SHAPE, dtype=torch.float64))

    def forward(self, x, t, y=None):
        i = t.long()
        return torch.cat([self.oracle.eps(x, self.ab[i]), self.table[i]], 1)


def test_trained_ocm_head_approaches_the_exact_diagonal(full_cov):
    torch.manual_seed(0)
    obj = build_objective(Recipe(name="t", description="t", schedule="cosine", diffusion_steps=50, variance="ocm"))
    chain = obj.diffusion
    net = ExactEpsWithHeadTable(full_cov, chain)
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    exact = full_cov.ocm_head(torch.from_numpy(chain.alphas_cumprod), torch.zeros(50, *SHAPE, dtype=torch.float64))
    err0 = float((net.table.detach() - exact).abs().max())
    for step in range(500):
        if step == 300:
            opt.param_groups[0]["lr"] = 0.003
        terms = obj(net, full_cov.sample(256))
        assert set(terms) == {"loss", "L_simple", "L_ocm"}
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
    err = float((net.table.detach() - exact).abs().max())
    assert err < 0.04 and err < err0 / 20, (err0, err)


def test_few_step_panel_exact_covariance_reproduces_the_data(diag):
    """Playbook 3.6 / 5.8: at 5-20 steps OCM (and exact learned variance) keep the data variance; the heuristic
    beta / beta_tilde do not."""
    base = GaussianDiffusion(get_named_beta_schedule("linear", 1000))
    n = 20_000
    xT = torch.randn(n, *SHAPE, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    lam = diag.lam.reshape(SHAPE)
    ratio = {}
    for steps in (5, 10, 20):
        chain = respaced(base, steps)
        for variance in ("fixed_small", "fixed_large", "learned", "ocm"):
            x, nfe = covariance_sample(diag.chain_model(chain, variance), xT, base, steps=steps,
                                       variance=variance, clip_denoised=False,
                                       generator=torch.Generator().manual_seed(1))
            assert nfe == steps
            ratio[steps, variance] = (x.var(0) / lam).flatten()
            if variance in ("learned", "ocm"):
                torch.testing.assert_close(x.mean(0), diag.mu.reshape(SHAPE), atol=0.02, rtol=0)
                assert float((ratio[steps, variance] - 1).abs().max()) < 0.05, (steps, variance, ratio[steps, variance])
    # beta_tilde underestimates and beta overestimates the spread of the small-variance dimension at 5 steps.
    assert float(ratio[5, "fixed_small"][3]) < 0.8 and float(ratio[5, "fixed_large"][3]) > 1.5


def test_ocm_ddim_reproduces_the_data_and_objective_path(diag):
    base = GaussianDiffusion(get_named_beta_schedule("linear", 1000))
    ab = torch.from_numpy(base.alphas_cumprod)
    model = lambda x, t: torch.cat([diag.eps(x, ab[t.long()]), diag.ocm_head(ab[t.long()], x)], 1)
    xT = torch.randn(20_000, *SHAPE, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    x, nfe = ddim_sample(model, xT, base.alphas_cumprod, steps=5, variance="ocm",
                         generator=torch.Generator().manual_seed(4))
    assert nfe == 5
    assert float((x.var(0) / diag.lam.reshape(SHAPE) - 1).abs().max()) < 0.05
    # Plain DDIM (eta = 0) at 5 steps is deterministic and off in spread.
    x_plain, _ = ddim_sample(model, xT, base.alphas_cumprod, steps=5)
    assert float((x_plain.var(0) / diag.lam.reshape(SHAPE) - 1).abs().max()) > 0.1
    # Through the objective: an OCM-trained model runs the covariance and OCM-DDIM samplers with one NFE per step.
    obj = build_objective(Recipe(name="t", description="t", variance="ocm"))
    net = lambda x, t, y=None: model(x, t)
    for spec in (SamplerArgs(kind="covariance", steps=10, variance="ocm"),
                 SamplerArgs(kind="ddim", steps=10, variance="ocm"),
                 SamplerArgs(kind="covariance", steps=10, variance="fixed_large")):
        out, nfe = obj.sample(net, xT[:8], spec, generator=torch.Generator().manual_seed(0))
        assert nfe == 10 and out.shape == (8, *SHAPE)


#----------------------------------------------------------------------------
# P6's bound: Cov[x_0 | x_t] lies in [0, 1] for data in [-1, 1] (on by default, with x_0 clipping).

@pytest.fixture(scope="module")
def cosine_case():
    """The cosine chain (where (1 - abar)/abar reaches 4.1e8 at t = 999), data of std 0.45, one x_T 64 times."""
    chain = GaussianDiffusion(get_named_beta_schedule("cosine", 1000))
    oracle = GaussianOracle(torch.zeros(SHAPE, dtype=torch.float64), std=torch.full(SHAPE, 0.45, dtype=torch.float64))
    xT = torch.randn(1, *SHAPE, generator=torch.Generator().manual_seed(0), dtype=torch.float64).repeat(64, 1, 1, 1)
    return chain, oracle, xT


def head_off_by(model, delta):
    """The exact OCM model with its head g shifted by `delta` (a near-perfect head: 1e-3 off)."""
    def shifted(x, t):
        out = model(x, t)
        return torch.cat([out[:, :1], out[:, 1:] + delta], 1)
    return shifted


@pytest.mark.parametrize("steps", [5, 10, 20])
def test_a_head_1e_3_off_keeps_the_ocm_covariance_within_the_data_range(cosine_case, steps):
    chain, oracle, xT = cosine_case
    short = respaced(chain, steps)
    model = head_off_by(oracle.chain_model(short, "ocm"), -1e-3)
    # The first step: Sigma_0 = (1 - abar)/abar (1 - g) is bounded by 1, so the step's variance by beta_tilde + coef1^2.
    t = torch.full((1,), steps - 1, dtype=torch.long)
    p = short.p_mean_variance(model(xT[:1], short.model_timesteps(t)), xT[:1], t, variance="ocm")
    bound = short.posterior_variance[steps - 1] + short.posterior_mean_coef1[steps - 1] ** 2
    assert float(p["variance"].max()) <= bound * (1 + 1e-12)
    # 64 samples from one x_T keep about the data's spread (unbounded: std 0.68-0.91 for 20-5 steps).
    x, _ = covariance_sample(model, xT, chain, steps=steps, variance="ocm", generator=torch.Generator().manual_seed(1))
    assert float(x.std(0).mean()) < 0.55
    # OCM-DDIM takes the same bound (its sub-sequence is DDIM's tau, so the model answers every timestep).
    x, _ = ddim_sample(head_off_by(oracle.chain_model(chain, "ocm"), -1e-3), xT, chain.alphas_cumprod, steps=steps, variance="ocm", clip_denoised=True,
                       generator=torch.Generator().manual_seed(1))
    assert float(x.std(0).mean()) < 0.55


def test_the_bound_leaves_the_exact_head_unchanged(cosine_case):
    chain, oracle, xT = cosine_case
    from difftui.engine.diffusion import x0_variance_from_head
    a = torch.from_numpy(chain.alphas_cumprod)
    g = oracle.ocm_head(a, torch.zeros(1000, *SHAPE, dtype=torch.float64))
    bounded = x0_variance_from_head(g, a.reshape(-1, 1, 1, 1))
    raw = x0_variance_from_head(g, a.reshape(-1, 1, 1, 1), bound=False)
    torch.testing.assert_close(bounded, raw, rtol=0, atol=0)                  # data variance 0.2 < 1: no effect
    assert float(x0_variance_from_head(torch.full((1,), -1.0, dtype=torch.float64),
                                       torch.tensor(0.5, dtype=torch.float64), bound=False)) == 2.0
    assert float(x0_variance_from_head(torch.full((1,), -1.0, dtype=torch.float64),
                                       torch.tensor(0.5, dtype=torch.float64))) == 1.0
