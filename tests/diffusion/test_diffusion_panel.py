"""Sampler presets (playbook 5.x, A.3) and the panel evaluation the dashboard shows."""

import pytest
import torch

from difftui.engine.config.catalog import Catalog
from difftui.engine.config.model import Recipe
from difftui.engine.diffusion import (
    EDM_STOCHASTIC_GRID,
    EDM_STOCHASTIC_SETTINGS,
    GaussianOracle,
)
from difftui.engine.eval.panel import evaluate_panel
from difftui.engine.run.builders import build_objective

SHAPE = (1, 2, 2)


@pytest.fixture(scope="module")
def panels():
    return {p.name: p.preset for p in Catalog().all("samplers")}


@pytest.fixture(scope="module")
def oracle():
    return GaussianOracle(torch.full(SHAPE, 0.1, dtype=torch.float64), std=torch.full(SHAPE, 0.3, dtype=torch.float64))


def test_presets_carry_the_playbook_numbers(panels):
    for name in ("ddpm", "ddpm-learned", "edm-heun", "edm-euler", "edm-stochastic-cifar10",
                 "edm-stochastic-imagenet64", "edm-stochastic-grid", "covariance-heuristic", "covariance-learned",
                 "covariance-ocm"):
        assert name in panels, name
    for name in ("covariance-heuristic", "covariance-learned", "covariance-ocm"):
        assert sorted({s.steps for s in panels[name].sweep}) == [5, 10, 15, 20]          # playbook 5.8
    assert {s.variance for s in panels["covariance-ocm"].sweep} == {"ocm", "fixed_small", "fixed_large"}
    for name in ("edm-heun", "edm-euler"):
        for s in (panels[name].grid, *panels[name].sweep):
            assert (s.sigma_min, s.sigma_max, s.rho) == (0.002, 80.0, 7.0)               # playbook 5.3
    assert panels["edm-heun"].grid.steps == 18                                            # NFE 35, playbook 5.6
    c = panels["edm-stochastic-cifar10"].grid
    assert (c.S_churn, c.S_tmin, c.S_tmax, c.S_noise) == (30.0, 0.01, 1.0, 1.007)        # P3 Table 5
    churns = {s.S_churn for s in panels["edm-stochastic-imagenet64"].sweep if s.kind == "edm_stochastic"}
    assert churns == {40.0, 80.0}
    for s in panels["edm-stochastic-imagenet64"].sweep:
        if s.kind == "edm_stochastic":
            assert (s.S_tmin, s.S_tmax, s.S_noise) == (0.05, 50.0, 1.003)
    assert [s.S_churn for s in panels["edm-stochastic-grid"].sweep] == list(EDM_STOCHASTIC_GRID["S_churn"])
    assert EDM_STOCHASTIC_SETTINGS["cifar10"] == dict(S_churn=30.0, S_tmin=0.01, S_tmax=1.0, S_noise=1.007)
    assert EDM_STOCHASTIC_GRID["S_noise"][-1] == 1.01 and EDM_STOCHASTIC_GRID["S_tmax"][-1] == 80.0


def ocm_net(oracle, obj):
    ab = torch.from_numpy(obj.diffusion.alphas_cumprod)
    return lambda x, t, y=None: torch.cat([oracle.eps(x, ab[t.long()]), oracle.ocm_head(ab[t.long()], x)], 1)


def test_panel_rows_for_an_ocm_model(panels, oracle):
    obj = build_objective(Recipe(name="t", description="t", variance="ocm"))
    net = ocm_net(oracle, obj)
    x_T = torch.randn(4, *SHAPE, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    images = (oracle.sample(32, torch.Generator().manual_seed(1)) * 127.5).round() / 127.5
    rows = evaluate_panel(obj, net, x_T, panels["covariance-ocm"], images=images)
    assert [r["role"] for r in rows] == ["grid"] + ["sweep"] * 11                    # the grid spec is not repeated
    for r in rows:
        assert r["error"] is None and r["nfe"] == r["steps"] and r["grid"].shape == x_T.shape
        assert r["grid"].abs().max() <= 1 and r["nll_bpd"] is not None and r["nll_bpd"] > 0
    again = evaluate_panel(obj, net, x_T, panels["covariance-ocm"], images=images)
    for a, b in zip(rows, again, strict=False):                                                     # reproducible rows
        torch.testing.assert_close(a["grid"], b["grid"], rtol=0, atol=0)
        assert a["nll_bpd"] == b["nll_bpd"]
    # Deterministic samplers have no chain likelihood.
    ddim_rows = evaluate_panel(obj, net, x_T, panels["ddim"], images=images)
    assert [r["nfe"] for r in ddim_rows] == [50, 10, 20, 100] and all(r["nll_bpd"] is None for r in ddim_rows)


def test_panel_reports_samplers_that_do_not_apply(panels, oracle):
    obj = build_objective(Recipe(name="t", description="t"))                         # fixed variance
    ab = torch.from_numpy(obj.diffusion.alphas_cumprod)
    net = lambda x, t, y=None: oracle.eps(x, ab[t.long()])
    x_T = torch.randn(2, *SHAPE, dtype=torch.float64)
    rows = evaluate_panel(obj, net, x_T, panels["covariance-learned"])
    learned = [r for r in rows if r["spec"].variance == "learned"]
    assert learned and all(r["grid"] is None and "learned" in r["error"] for r in learned)
    assert all(r["grid"] is not None and r["error"] is None for r in rows if r["spec"].variance == "fixed_small")
    edm_rows = evaluate_panel(obj, net, x_T, panels["edm-heun"])
    assert [r["nfe"] for r in edm_rows] == [35, 19, 79, 35, 79]


def test_edm_panels_on_an_edm_model(panels, oracle):
    obj = build_objective(Recipe(name="t", description="t", loss="edm"))
    net = lambda x_in, c_noise, y=None: torch.zeros_like(x_in)
    x_T = torch.randn(2, *SHAPE, dtype=torch.float64)
    rows = evaluate_panel(obj, net, x_T, panels["edm-stochastic-cifar10"])
    assert [r["nfe"] for r in rows] == [35, 35, 79] and all(r["error"] is None for r in rows)
    rows = evaluate_panel(obj, net, x_T, panels["ddim"])
    assert all(r["grid"] is None and "edm_heun" in r["error"] for r in rows)
