"""The DDPM family against closed-form Gaussian answers (playbook 0.1-0.2, 2.8, 3.0-3.2)."""

import math

import numpy as np
import pytest
import torch

from difftui.engine.diffusion import discretized_gaussian_log_likelihood, normal_kl

SHAPE = (1, 2, 2)                  # the conftest oracle's shape


def _t(i, n):
    return torch.full((n,), i, dtype=torch.long)


def test_q_sample_marginal(chain, oracle):
    g = torch.Generator().manual_seed(0)
    x0 = oracle.sample(200_000, g)
    for i in (0, 300, 999):
        x_t = chain.q_sample(x0, _t(i, x0.shape[0]), torch.randn(x0.shape, generator=g, dtype=torch.float64))
        a = chain.alphas_cumprod[i]
        mu, lam = oracle.mu.reshape(SHAPE), oracle.lam.reshape(SHAPE)
        # x_t ~ N(sqrt(a) mu, a s^2 + 1 - a).
        torch.testing.assert_close(x_t.mean(0), math.sqrt(a) * mu, atol=8e-3, rtol=0)
        torch.testing.assert_close(x_t.var(0), a * lam + 1 - a, atol=0, rtol=1.5e-2)


def test_true_posterior_is_bayes(chain):
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(16, *SHAPE, generator=g, dtype=torch.float64)
    x_t = torch.randn(16, *SHAPE, generator=g, dtype=torch.float64)
    for i in (1, 17, 500, 999):
        abp, beta = chain.alphas_cumprod_prev[i], chain.betas[i]
        prec = 1 / (1 - abp) + (1 - beta) / beta
        mean = (math.sqrt(abp) * x0 / (1 - abp) + math.sqrt(1 - beta) * x_t / beta) / prec
        m, v, logv = chain.q_posterior_mean_variance(x0, x_t, _t(i, 16))
        assert m.dtype == torch.float64
        torch.testing.assert_close(m, mean, rtol=1e-10, atol=1e-12)
        assert float(v.flatten()[0]) == pytest.approx(1 / prec, rel=1e-10)
        assert float(logv.flatten()[0]) == pytest.approx(math.log(1 / prec), rel=1e-10)


def test_exact_eps_gives_exact_reverse_mean_and_learned_variance_is_exact(chain, oracle):
    g = torch.Generator().manual_seed(2)
    for i in (1, 10, 400, 999):
        ab, abp, alpha = chain.alphas_cumprod[i], chain.alphas_cumprod_prev[i], 1 - chain.betas[i]
        x_t = torch.randn(8, *SHAPE, generator=g, dtype=torch.float64)
        eps = oracle.eps(x_t, ab)
        v = oracle.learned_v(chain, i, x_t)
        assert float(v.min()) >= -1 - 1e-9 and float(v.max()) <= 1 + 1e-9  # s <= 1: exact variance in [beta_tilde, beta]
        out = chain.p_mean_variance(torch.cat([eps, v], 1), x_t, _t(i, 8), variance="learned", clip_denoised=False)
        # Joint Gaussian (x_{t-1}, x_t): E[x_{t-1} | x_t] and Var[x_{t-1} | x_t] by conditioning.
        mu, lam = oracle.mu.reshape(SHAPE), oracle.lam.reshape(SHAPE)
        var_prev = abp * lam + 1 - abp
        var_t = ab * lam + 1 - ab
        mean = math.sqrt(abp) * mu + math.sqrt(alpha) * var_prev / var_t * (x_t - math.sqrt(ab) * mu)
        var = var_prev - alpha * var_prev ** 2 / var_t
        torch.testing.assert_close(out["mean"], mean, rtol=1e-9, atol=1e-11)
        torch.testing.assert_close(out["variance"], var.expand_as(x_t), rtol=1e-9, atol=0)


def test_vlb_term_with_exact_posterior_equals_known_value(chain, oracle):
    """L_{t-1} with the exact reverse mean and variance = 1/2 log(Var[x_{t-1}|x_t] / beta_tilde_t) nats per dim."""
    g = torch.Generator().manual_seed(3)
    n = 40_000
    x0 = oracle.sample(n, g)
    for i in (1, 50, 600):
        t = _t(i, n)
        x_t = chain.q_sample(x0, t, torch.randn(x0.shape, generator=g, dtype=torch.float64))
        out = torch.cat([oracle.eps(x_t, chain.alphas_cumprod[i]), oracle.learned_v(chain, i, x_t)], 1)
        vb, _ = chain.vb_terms_bpd(out, x0, x_t, t, variance="learned", clip_denoised=False)
        known = (0.5 * torch.log(oracle.reverse_variance(chain, i, x0[:1]) / chain.posterior_variance[i])).mean() / math.log(2)
        assert float(vb.mean()) == pytest.approx(float(known), rel=2e-2)
        # A wrong variance costs more (the KL is minimised at the exact one).
        vb_small, _ = chain.vb_terms_bpd(out[:, :1], x0, x_t, t, variance="fixed_small")
        assert float(vb_small.mean()) > float(vb.mean())


def test_prior_term_closed_form(chain):
    x0 = torch.linspace(-1, 1, 4, dtype=torch.float64).reshape(1, *SHAPE)
    a = chain.alphas_cumprod[-1]
    kl = 0.5 * (-1 - math.log(1 - a) + (1 - a) + a * x0 ** 2)
    assert float(chain.prior_bpd(x0)) == pytest.approx(float(kl.mean()) / math.log(2), rel=1e-12)


def test_normal_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(4)
    m1, m2 = torch.randn(5, generator=g, dtype=torch.float64), torch.randn(5, generator=g, dtype=torch.float64)
    lv1, lv2 = torch.randn(5, generator=g, dtype=torch.float64), torch.randn(5, generator=g, dtype=torch.float64)
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(m1, (0.5 * lv1).exp()),
                                            torch.distributions.Normal(m2, (0.5 * lv2).exp()))
    torch.testing.assert_close(normal_kl(m1, lv1, m2, lv2), ref, rtol=1e-12, atol=1e-14)


def test_decoder_likelihood_is_the_bin_probability():
    x = torch.tensor([-1.0, -0.5 + 1 / 255, 0.0 + 1 / 255, 1.0], dtype=torch.float64)
    means = torch.tensor([-0.9, -0.5, 0.01, 0.95], dtype=torch.float64)
    log_scales = torch.log(torch.tensor([0.05, 0.01, 0.02, 0.1], dtype=torch.float64))
    lp = discretized_gaussian_log_likelihood(x, means=means, log_scales=log_scales)
    Phi = torch.special.ndtr
    s = log_scales.exp()
    exact = torch.stack([
        Phi((x[0] + 1 / 255 - means[0]) / s[0]),
        Phi((x[1] + 1 / 255 - means[1]) / s[1]) - Phi((x[1] - 1 / 255 - means[1]) / s[1]),
        Phi((x[2] + 1 / 255 - means[2]) / s[2]) - Phi((x[2] - 1 / 255 - means[2]) / s[2]),
        1 - Phi((x[3] - 1 / 255 - means[3]) / s[3]),
    ])
    # The tanh approximation of Phi (kept from DDPM) is within ~2e-4 of the exact CDF.
    torch.testing.assert_close(lp.exp(), exact, atol=5e-4, rtol=0)


def test_fixed_variances_and_float32_path(chain):
    x = torch.randn(3, *SHAPE)
    t = torch.tensor([0, 1, 999])
    small = chain.p_mean_variance(torch.zeros_like(x), x, t, "fixed_small")
    large = chain.p_mean_variance(torch.zeros_like(x), x, t, "fixed_large")
    assert small["mean"].dtype == torch.float32
    np.testing.assert_allclose(small["variance"].flatten().numpy(), chain.posterior_variance[[0, 1, 999]], rtol=1e-6)
    np.testing.assert_allclose(large["variance"].flatten().numpy(),
                               [chain.posterior_variance[1], chain.betas[1], chain.betas[999]], rtol=1e-6)
    with pytest.raises(ValueError, match="2x output channels"):
        chain.p_mean_variance(torch.zeros_like(x), x, t, "learned")
