"""Schedules and timestep sub-sequences (playbook 0.0, 2.9, 0.3/A.7; P1 respacing)."""

import math

import numpy as np
import pytest

from difftui.engine.diffusion import (
    GaussianDiffusion,
    alphas_cumprod_from_betas,
    ddim_timesteps,
    get_named_beta_schedule,
    space_timesteps,
)


@pytest.mark.parametrize("name", ["linear", "cosine"])
@pytest.mark.parametrize("T", [50, 1000, 4000])
def test_alpha_bar_monotone_near_one_and_zero(name, T):
    betas = get_named_beta_schedule(name, T)
    assert betas.dtype == np.float64 and betas.shape == (T,)
    ab = alphas_cumprod_from_betas(betas)
    assert np.all(np.diff(ab) < 0)                          # playbook 0.0: decreasing in t
    assert ab[0] > 0.99                                     # ~1 at t = 0
    assert ab[-1] < 1e-3                                    # ~0 at t = T-1


def test_linear_schedule_values():
    b = get_named_beta_schedule("linear", 1000)
    assert b[0] == pytest.approx(1e-4, abs=0) and b[-1] == pytest.approx(0.02, rel=1e-15)
    b4 = get_named_beta_schedule("linear", 4000)            # scaled by 1000/T
    assert b4[0] == pytest.approx(0.25e-4, rel=1e-15) and b4[-1] == pytest.approx(0.005, rel=1e-15)


def test_cosine_schedule_matches_closed_form_alpha_bar():
    T, s = 1000, 0.008
    ab = alphas_cumprod_from_betas(get_named_beta_schedule("cosine", T))
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
    expected = np.array([f(t + 1) / f(0) for t in range(T)])
    # Identical until the 0.999 clip bites at the very end.
    np.testing.assert_allclose(ab[:-1], expected[:-1], rtol=1e-12)
    betas = get_named_beta_schedule("cosine", T)
    assert betas.max() == pytest.approx(0.999)               # P1: beta clipped at 0.999


def test_space_timesteps_is_p1_rounding():
    assert space_timesteps(1000, 10) == [0, 111, 222, 333, 444, 555, 666, 777, 888, 999]
    steps = space_timesteps(1000, 250)
    assert len(steps) == 250 and steps[0] == 0 and steps[-1] == 999
    assert space_timesteps(4000, 1) == [0]


def test_ddim_tau_rules_match_ddim_code():
    for N in (10, 20, 50, 100):
        assert ddim_timesteps(1000, N, "linear") == list(range(0, 1000, 1000 // N))
        quad = [int(s) for s in np.linspace(0, np.sqrt(1000 * 0.8), N) ** 2]
        assert ddim_timesteps(1000, N, "quadratic") == quad
    assert len(ddim_timesteps(1000, 30, "linear")) == 30
    with pytest.raises(ValueError):
        ddim_timesteps(100, 200)


def test_respace_keeps_alpha_bar_on_kept_steps():
    d = GaussianDiffusion(get_named_beta_schedule("linear", 1000))
    keep = space_timesteps(1000, 20)
    r = d.respace(keep)
    np.testing.assert_allclose(r.alphas_cumprod, d.alphas_cumprod[keep], rtol=1e-13)
    assert list(r.timestep_map) == keep
    # Respacing twice composes the maps back to the original timesteps.
    r2 = r.respace([0, 5, 19])
    assert list(r2.timestep_map) == [keep[0], keep[5], keep[19]]
