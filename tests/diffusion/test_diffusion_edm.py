"""EDM preconditioning, training noise and loss weight (P3; playbook 2.4, 3.4) against closed forms."""

import math

import numpy as np
import pytest
import torch

from difftui.engine.config.model import Recipe
from difftui.engine.diffusion import (
    EDMObjective,
    GaussianOracle,
    edm_denoise,
    edm_loss,
    edm_precond_coefficients,
)
from difftui.engine.run.builders import build_objective

SHAPE = (1, 2, 2)


def test_precond_coefficients_are_the_playbook_formulas():
    sigma = torch.tensor([0.002, 0.5, 1.0, 80.0], dtype=torch.float64)
    c_skip, c_out, c_in, c_noise = edm_precond_coefficients(sigma)
    for k, s in enumerate(sigma.tolist()):
        assert float(c_skip[k]) == pytest.approx(0.25 / (s * s + 0.25), rel=1e-15)
        assert float(c_out[k]) == pytest.approx(s * 0.5 / math.sqrt(s * s + 0.25), rel=1e-15)
        assert float(c_in[k]) == pytest.approx(1 / math.sqrt(s * s + 0.25), rel=1e-15)
        assert float(c_noise[k]) == pytest.approx(math.log(s) / 4, rel=1e-15)
    # The network sees unit-variance inputs when the data has std sigma_data: Var(c_in (y + n)) = 1.
    assert float((c_in ** 2 * (0.25 + sigma ** 2) - 1).abs().max()) < 1e-14


def exact_edm_net(oracle, sigma_data=0.5):
    """F such that c_skip x + c_out F(c_in x; c_noise) is the exact denoiser of the Gaussian data."""
    def net(x_in, c_noise, y=None):
        sigma = (4 * c_noise).exp().reshape(-1, 1, 1, 1)
        x = x_in * (sigma ** 2 + sigma_data ** 2).sqrt()
        c_skip = sigma_data ** 2 / (sigma ** 2 + sigma_data ** 2)
        c_out = sigma * sigma_data / (sigma ** 2 + sigma_data ** 2).sqrt()
        return (oracle.denoise(x, sigma.reshape(-1)) - c_skip * x) / c_out
    return net


def test_edm_loss_of_the_exact_denoiser_equals_its_known_value():
    """E lambda(sigma) Var[x_0 | x] = E_sigma 4 (sigma^2 + 1/4) s^2 / (s^2 + sigma^2) per dimension, with
    ln sigma ~ N(-1.2, 1.2^2) (playbook 3.4); for s = sigma_data it is exactly 1 at every sigma."""
    s = torch.tensor([0.5, 0.2, 1.0, 0.05], dtype=torch.float64)
    oracle = GaussianOracle(torch.zeros(SHAPE, dtype=torch.float64), std=s.reshape(SHAPE))
    net = exact_edm_net(oracle)
    x0 = oracle.sample(100_000, torch.Generator().manual_seed(0))
    loss = edm_loss(net, x0, generator=torch.Generator().manual_seed(1))          # [B, 1, 2, 2]
    per_dim = loss.mean(0).flatten()
    z, w = np.polynomial.hermite_e.hermegauss(80)
    sig = np.exp(-1.2 + 1.2 * z)
    for k, sk in enumerate(s.tolist()):
        known = float(np.sum(w * 4 * (sig ** 2 + 0.25) * sk ** 2 / (sk ** 2 + sig ** 2)) / np.sqrt(2 * np.pi))
        assert float(per_dim[k]) == pytest.approx(known, rel=0.02), (sk, known)
    assert float(per_dim[0]) == pytest.approx(1.0, rel=0.01)


def test_edm_objective_terms_and_noise_distribution():
    obj = build_objective(Recipe(name="t", description="t", loss="edm"))
    assert isinstance(obj, EDMObjective) and obj.out_channels(3) == 3
    seen = []

    def net(x_in, c_noise, y=None):
        seen.append(c_noise)
        return torch.zeros_like(x_in)

    torch.manual_seed(0)
    x0 = torch.rand(4096, 1, 2, 2, dtype=torch.float64) * 2 - 1
    terms = obj(net, x0)
    assert set(terms) == {"loss", "L_edm"} and terms["loss"].dtype == torch.float64
    ln_sigma = 4 * seen[0]
    # Playbook 3.4: ln(sigma) ~ N(-1.2, 1.2^2).
    assert float(ln_sigma.mean()) == pytest.approx(-1.2, abs=0.06)
    assert float(ln_sigma.std()) == pytest.approx(1.2, abs=0.05)
    # F = 0 means D = c_skip (y + n); the loss is lambda * (D - y)^2 per element.
    assert torch.isfinite(terms["loss"])


def test_edm_denoise_matches_oracle_through_preconditioning():
    oracle = GaussianOracle(torch.full(SHAPE, 0.1, dtype=torch.float64), std=torch.full(SHAPE, 0.3, dtype=torch.float64))
    x = torch.randn(5, *SHAPE, dtype=torch.float64) * 2
    sigma = torch.tensor([0.01, 0.1, 1.0, 10.0, 80.0], dtype=torch.float64)
    torch.testing.assert_close(edm_denoise(exact_edm_net(oracle), x, sigma), oracle.denoise(x, sigma),
                               rtol=1e-10, atol=1e-12)
