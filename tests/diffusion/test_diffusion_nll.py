"""NLL in bits/dim over the whole chain (P1 Sec. 2; playbook 5.5, 5.8) against closed-form Gaussian values."""

import math

import numpy as np
import pytest
import torch

from difftui.engine.config.model import Recipe
from difftui.engine.diffusion import (
    GaussianDiffusion,
    GaussianOracle,
    SamplerArgs,
    calc_bpd_loop,
    get_named_beta_schedule,
    respaced,
)
from difftui.engine.run.builders import build_objective

SHAPE = (1, 2, 2)


@pytest.fixture(scope="module")
def oracle():
    mean = torch.tensor([0.3, -0.2, 0.1, 0.0], dtype=torch.float64).reshape(SHAPE)
    std = torch.tensor([0.5, 0.25, 0.3, 0.4], dtype=torch.float64).reshape(SHAPE)
    return GaussianOracle(mean, std=std)


def known_kl_terms(oracle, chain):
    """Closed-form E[L_t], t >= 1, for the exact reverse model: 1/2 log(Var[x_{t-1}|x_t] / beta_tilde_t), bits/dim."""
    like = torch.zeros(1, *SHAPE, dtype=torch.float64)
    out = []
    for i in range(1, chain.num_timesteps):
        v = oracle.reverse_variance(chain, i, like)
        out.append(float((0.5 * torch.log(v / chain.posterior_variance[i])).mean()) / math.log(2))
    return np.array(out)


def test_full_chain_terms_equal_their_known_values(oracle):
    chain = GaussianDiffusion(get_named_beta_schedule("cosine", 100))
    x0 = oracle.sample(6000, torch.Generator().manual_seed(0))
    res = calc_bpd_loop(oracle.chain_model(chain, "learned"), chain, x0, variance="learned", clip_denoised=False,
                        generator=torch.Generator().manual_seed(1))
    assert res["vb"].shape == (6000, 100) and res["total_bpd"].dtype == torch.float64
    kl = res["vb"][:, 1:].mean(0).numpy()
    known = known_kl_terms(oracle, chain)
    np.testing.assert_allclose(kl.sum(), known.sum(), rtol=0.02)
    np.testing.assert_allclose(kl[known > 1e-3], known[known > 1e-3], rtol=0.1)
    # Prior term: E KL(N(sqrt(a) x_0, 1 - a) || N(0, 1)), closed form.
    a = chain.alphas_cumprod[-1]
    ex2 = (oracle.mu ** 2 + oracle.lam).mean()
    prior = 0.5 * (-1 - math.log(1 - a) + (1 - a) + a * float(ex2)) / math.log(2)
    assert float(res["prior_bpd"].mean()) == pytest.approx(prior, rel=0.02)
    # The total is the sum of its parts, and every part is finite.
    torch.testing.assert_close(res["total_bpd"], res["vb"].sum(1) + res["prior_bpd"])
    assert bool(torch.isfinite(res["total_bpd"]).all())


def test_few_step_nll_exact_covariance_beats_heuristics(oracle):
    """Playbook 5.8: at few steps the NLL with OCM / exact learned variance is lower than with beta or beta_tilde,
    and OCM and exact learned variance (the same exact covariance for this data) agree."""
    base = GaussianDiffusion(get_named_beta_schedule("linear", 1000))
    g = torch.Generator().manual_seed(2)
    x0 = (oracle.sample(3000, g).clamp(-1, 1) * 127.5).round() / 127.5          # on the 8-bit grid in [-1, 1]
    nll = {}
    for variance in ("fixed_small", "fixed_large", "learned", "ocm"):
        chain = respaced(base, 10)
        res = calc_bpd_loop(oracle.chain_model(chain, variance), chain, x0, variance=variance,
                            clip_denoised=False, generator=torch.Generator().manual_seed(3))
        nll[variance] = float(res["total_bpd"].mean())
    assert nll["ocm"] < nll["fixed_small"] and nll["ocm"] < nll["fixed_large"]
    # Same model outputs up to the t = 0 decoder (learned is floored at beta_tilde_1 there, OCM uses Sigma_0).
    assert abs(nll["ocm"] - nll["learned"]) < 0.2


def test_objective_nll_entry_points(oracle):
    obj = build_objective(Recipe(name="t", description="t", variance="ocm", schedule="cosine", diffusion_steps=100))
    chain = obj.diffusion
    ab = torch.from_numpy(chain.alphas_cumprod)
    net = lambda x, t, y=None: torch.cat([oracle.eps(x, ab[t.long()]), oracle.ocm_head(ab[t.long()], x)], 1)
    x0 = (oracle.sample(64, torch.Generator().manual_seed(4)) * 127.5).round() / 127.5
    full = obj.nll_bpd(net, x0, generator=torch.Generator().manual_seed(0))
    few = obj.nll_bpd(net, x0, spec=SamplerArgs(kind="covariance", steps=5, variance="ocm"),
                      generator=torch.Generator().manual_seed(0))
    assert full.shape == (64,) and few.shape == (64,)
    assert bool(torch.isfinite(full).all() and torch.isfinite(few).all())
    with pytest.raises(ValueError, match="ancestral"):
        obj.nll_bpd(net, x0, spec=SamplerArgs(kind="ddim", steps=5))
