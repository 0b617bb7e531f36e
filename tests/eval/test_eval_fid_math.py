"""FID and improved precision/recall (playbook 5.5) against closed-form answers, through torch-fidelity's functions."""

import math

import numpy as np
import pytest
import torch

from difftui.engine.eval.metrics.fid import feature_statistics, frechet_distance, precision_recall, summarise


def test_frechet_distance_of_two_diagonal_gaussians_is_the_closed_form():
    # For diagonal covariances: ||mu1 - mu2||^2 + sum_i (s1_i - s2_i)^2 (the matrix square root is elementwise).
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([0.5, -1.0, 0.0])
    s1, s2 = np.array([1.0, 0.25, 4.0]), np.array([0.5, 1.0, 2.0])
    exact = float(((mu1 - mu2) ** 2).sum() + ((s1 - s2) ** 2).sum())
    got = frechet_distance({"mu": mu1, "sigma": np.diag(s1 ** 2)}, {"mu": mu2, "sigma": np.diag(s2 ** 2)})
    assert got == pytest.approx(exact, rel=1e-10)


def test_frechet_distance_of_a_scaled_full_covariance_is_the_closed_form():
    # S2 = c^2 S1 commutes with S1: Tr(S1 + S2 - 2 (S1 S2)^(1/2)) = (1 - c)^2 Tr(S1); with a shift d: + ||d||^2.
    g = np.random.default_rng(0)
    A = g.normal(size=(5, 5))
    S1 = A @ A.T + 0.1 * np.eye(5)
    c, d = 1.7, g.normal(size=5)
    exact = float(d @ d + (1 - c) ** 2 * np.trace(S1))
    got = frechet_distance({"mu": np.zeros(5), "sigma": S1}, {"mu": d, "sigma": c ** 2 * S1})
    assert got == pytest.approx(exact, rel=1e-8)
    assert frechet_distance({"mu": d, "sigma": S1}, {"mu": d, "sigma": S1}) == pytest.approx(0.0, abs=1e-8)


def test_statistics_of_samples_converge_to_the_gaussians_distance():
    g = torch.Generator().manual_seed(0)
    n, D = 200_000, 4
    a = torch.randn(n, D, generator=g, dtype=torch.float64) * 0.5
    b = torch.randn(n, D, generator=g, dtype=torch.float64) * 2.0 + 1.0
    exact = D * 1.0 + D * (2.0 - 0.5) ** 2            # ||mu||^2 + sum (s1 - s2)^2
    got = frechet_distance(feature_statistics(a), feature_statistics(b))
    assert got == pytest.approx(exact, rel=0.01)


def test_precision_and_recall_see_quality_and_coverage():
    g = torch.Generator().manual_seed(1)
    centres = torch.tensor([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0], [20.0, 20.0]])
    real = torch.cat([c + torch.randn(500, 2, generator=g) for c in centres])
    same = torch.cat([c + torch.randn(500, 2, generator=g) for c in centres])
    p, r = precision_recall(same, real)
    assert p > 0.95 and r > 0.95
    # Half the modes, all of them real-looking: precision stays high, recall halves (P1's point: recall sees coverage).
    half = torch.cat([c + torch.randn(1000, 2, generator=g) for c in centres[:2]])
    p, r = precision_recall(half, real)
    assert p > 0.95 and 0.4 < r < 0.6
    # Far away: neither.
    p, r = precision_recall(half + 1000.0, real)
    assert p == 0.0 and r == 0.0


def test_repeats_report_the_minimum_and_the_spread():
    assert summarise([3.2, 3.0, 3.1]) == (3.0, pytest.approx(0.2))
    assert all(math.isnan(v) for v in precision_recall(torch.zeros(3, 2), torch.zeros(3, 2)))
