"""The numbers the doctor computes, each against a case whose answer is known: the per-image jitter of a logged
series (doctor/measures.py), the grid statistics and nearest-image ratio, and playbook 5.2's consistency score on the
Gaussian model whose DDIM map is affine in x_T (eval/diagnostics.py)."""

import math

import numpy as np
import pytest
import torch
from doctor_testkit import with_cv

from difftui.engine.doctor.measures import per_image_cv
from difftui.engine.eval.diagnostics import (
    GridReference,
    agreement,
    consistency,
    nearest_distances,
    panel_consistency,
    quantiles,
    value_w1,
)


@pytest.mark.parametrize("cv, images", [(0.5, 80), (3.0, 1280), (20.0, 640)])
def test_per_image_cv_recovers_the_terms_cv_whatever_the_interval_size(cv, images):
    y = with_cv(2_000, 4.0, cv, images, seed=1)
    assert per_image_cv(y, images) == pytest.approx(cv, rel=0.06)


def test_per_image_cv_ignores_a_steady_trend_and_non_finite_values():
    y = with_cv(2_000, 4.0, 2.0, 100, seed=2) + np.linspace(0.5, 0.0, 2_000)      # a steadily falling loss
    y[::97] = np.nan
    assert per_image_cv(y, 100) == pytest.approx(2.0 * 4.0 / np.median(y[np.isfinite(y)]), rel=0.08)
    assert math.isnan(per_image_cv([1.0, 2.0], 10))                                 # too short to say
    assert math.isnan(per_image_cv([-1.0, -2.0, -1.5, -1.0], 10))                  # no positive level


def test_per_image_cv_counts_heavy_tails_as_jitter():
    # Log-normal per-image terms (sigma_log 1.5: cv = sqrt(exp(2.25) - 1) = 2.91), averaged 64 at a time: the
    # interval means are skewed, their variance is still sigma^2 / 64, and the estimate recovers the terms' cv.
    rng = np.random.default_rng(6)
    terms = rng.lognormal(0.0, 1.5, (4_000, 64))
    y = terms.mean(1)
    true_cv = math.sqrt(math.exp(1.5 ** 2) - 1)
    assert per_image_cv(y, 64) * np.median(y) / terms.mean() == pytest.approx(true_cv, rel=0.1)


def test_per_image_cv_of_an_alternating_series_is_closed_form():
    # y = m +- a alternating: d = -+2a, std(d) = 2a (ddof 1, n - 1 = 39 differences of mean ~0), so
    # cv = 2a / sqrt(2) * sqrt(n) / m.
    m, a, n = 2.0, 0.1, 50
    y = np.array([m + a * (-1) ** k for k in range(40)])
    d = np.diff(y)
    assert per_image_cv(y, n) == pytest.approx(np.std(d, ddof=1) / math.sqrt(2) * math.sqrt(n) / m, rel=1e-12)
    assert per_image_cv(y, n) == pytest.approx(2 * a / math.sqrt(2) * math.sqrt(n) / m, rel=0.02)


#----------------------------------------------------------------------------
# Grid statistics.

def test_a_grid_of_training_images_matches_the_data_and_is_a_copy():
    rng = np.random.default_rng(0)
    data = np.clip(rng.normal(-0.2, 0.5, (300, 3, 8, 8)), -1, 1)
    ref = GridReference.from_images(data)
    m = ref.measure(data[:64])
    assert m["grid_w1"] < 0.05 and abs(m["grid_mean"] - m["grid_data_mean"]) < 0.05
    assert m["grid_nn_ratio"] == 0.0                                     # copies of training images
    assert m["grid_colour_cast"] < 0.1


def test_fresh_samples_of_the_data_distribution_are_about_one_spacing_away():
    rng = np.random.default_rng(1)
    data = rng.normal(0.0, 0.3, (2_000, 1, 4, 4))
    fresh = rng.normal(0.0, 0.3, (64, 1, 4, 4))
    ref = GridReference.from_images(data)
    assert ref.measure(fresh)["grid_nn_ratio"] == pytest.approx(1.0, abs=0.15)


def test_a_zero_to_one_grid_against_minus_one_to_one_data_is_shifted_by_a_known_amount():
    # playbook 1.0's mix-up: the data in [-1, 1], the samples in [0, 1] -> the mean moves by half the data's mean gap.
    rng = np.random.default_rng(2)
    data = rng.uniform(-1, 1, (1_000, 1, 8, 8))
    ref = GridReference.from_images(data)
    m = ref.measure((data[:64] + 1) / 2)
    assert m["grid_mean"] - m["grid_data_mean"] == pytest.approx(0.5, abs=0.02)
    assert m["grid_std"] / m["grid_data_std"] == pytest.approx(0.5, abs=0.02)
    assert m["grid_w1"] == pytest.approx(0.5, abs=0.03)          # integral of |q - 1| over [0, 1]


def test_value_w1_and_colour_cast_are_exact_on_simple_images():
    assert value_w1(quantiles(np.full(10, -1.0)), quantiles(np.full(10, 1.0))) == 2.0
    x = np.random.default_rng(7).uniform(-0.5, 0.5, 5_000)
    assert value_w1(quantiles(x), quantiles(x + 0.25)) == pytest.approx(0.25, abs=1e-12)
    levels = np.repeat(np.linspace(-1, 1, 17), 300)                  # 17 grey levels (the digits)
    jitter = levels + np.random.default_rng(8).uniform(-0.03, 0.03, levels.size)
    assert value_w1(quantiles(levels), quantiles(jitter)) < 0.03     # quantised data is not 'far' from near copies
    data = np.zeros((10, 3, 4, 4))
    ref = GridReference.from_images(data + np.random.default_rng(3).normal(0, 0.2, data.shape))
    tinted = np.zeros((4, 3, 4, 4))
    tinted[:, 0] += 0.3                                             # red lifted by 0.3, the others not
    cast = ref.measure(tinted)["grid_colour_cast"]
    shift = np.array([0.3, 0.0, 0.0]) - ref.channel_means
    assert cast == pytest.approx(np.max(np.abs(shift - shift.mean())) / ref.std, rel=1e-9)
    assert cast > 0.25
    assert ref.measure(np.full((4, 3, 4, 4), 1.0))["grid_saturated"] == 1.0


def test_nearest_distances_are_rms_and_can_exclude_self():
    a = np.array([[[[0.0, 0.0]]], [[[1.0, 1.0]]]])
    assert nearest_distances(a, a).tolist() == [0.0, 0.0]
    assert nearest_distances(a, a, exclude_self=True).tolist() == pytest.approx([1.0, 1.0])


#----------------------------------------------------------------------------
# Playbook 5.2: the consistency score.

def test_agreement_is_one_for_affine_copies_and_about_zero_for_unrelated_images():
    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, (64, 3, 32, 32)) * 0.5
    assert agreement(x, x) == pytest.approx(1.0)
    assert agreement(x, 0.5 * x + 0.2) == pytest.approx(1.0)
    assert agreement(x, -x) == pytest.approx(-1.0)
    unrelated = agreement(x, rng.uniform(-0.5, 0.5, x.shape))
    assert abs(unrelated) < 3 / math.sqrt(64 * 3 * 8 * 8) * 8      # the mean of 64 correlations of 192-vectors


def test_the_consistency_score_of_the_exact_gaussian_model_is_one():
    """The known answer: for Gaussian data with the exact eps (GaussianOracle), every DDIM (eta = 0) step is affine
    in x_t with a scalar coefficient (isotropic covariance), so the samples at 10, 20, 50 and 100 steps are positive
    affine functions of one x_T and agree exactly; a model that ignores x_T (fresh noise) scores about 0."""
    from difftui.engine.config.model import SamplerSpec
    from difftui.engine.diffusion import GaussianDiffusion, GaussianOracle, get_named_beta_schedule
    from difftui.engine.diffusion.objective import DDPMObjective

    torch.manual_seed(0)
    shape = (1, 8, 8)
    oracle = GaussianOracle(torch.full(shape, 0.1, dtype=torch.float64), std=torch.full(shape, 0.3,
                                                                                         dtype=torch.float64))
    chain = GaussianDiffusion(get_named_beta_schedule("linear", 1000))
    objective = DDPMObjective(chain)
    objective.clip = False
    ab = torch.from_numpy(chain.alphas_cumprod)

    def net(x, t, y=None):
        return oracle.eps(x.double(), ab[t.long()]).to(x.dtype)

    x_T = torch.randn(16, *shape, dtype=torch.float64)
    images = {n: objective.sample(net, x_T, SamplerSpec(kind="ddim", steps=n))[0] for n in (10, 20, 50, 100)}
    score, agree = consistency(images)
    assert score == pytest.approx(1.0, abs=1e-9) and set(agree) == {10, 20, 50}

    g = torch.Generator().manual_seed(1)

    def noise_net(x, t, y=None):
        # A model whose predicted x_0 is fresh noise at every call: eps = (x_t - sqrt(a) z) / sqrt(1 - a). The last
        # DDIM step lands on its last prediction, so the samples at two step counts are independent: score ~ 0.
        a = ab[t.long()].reshape(-1, 1, 1, 1).to(x.dtype)
        z = torch.randn(x.shape, generator=g, dtype=x.dtype)
        return (x - a.sqrt() * z) / (1 - a).sqrt()

    noisy = {n: objective.sample(noise_net, x_T, SamplerSpec(kind="ddim", steps=n))[0] for n in (10, 100)}
    assert abs(consistency(noisy)[0]) < 0.15


def test_panel_consistency_groups_the_deterministic_samplers_of_a_panel():
    from difftui.engine.config.model import SamplerSpec
    rng = np.random.default_rng(5)
    base = rng.uniform(-1, 1, (8, 1, 8, 8))
    rows = [{"label": s.describe(), "spec": s, "nfe": s.nfe, "grid": base * (0.5 + 0.1 * i), "error": None}
            for i, s in enumerate([SamplerSpec(kind="ddim", steps=n) for n in (10, 20, 50, 100)])]
    stochastic = SamplerSpec(kind="ddim", steps=50, eta=1.0)
    rows.append({"label": stochastic.describe(), "spec": stochastic, "nfe": 50, "grid": -base, "error": None})
    out = panel_consistency(rows)
    scores = [r for r in out if r["metric"] == "consistency"]
    assert len(scores) == 1 and scores[0]["sampler"] == "DDIM eta=0 N=100 linear"
    assert scores[0]["value"] == pytest.approx(1.0)
    assert sorted(r["sampler"] for r in out if r["metric"] == "agreement") == [
        "DDIM eta=0 N=10 linear", "DDIM eta=0 N=20 linear", "DDIM eta=0 N=50 linear"]
    assert panel_consistency(rows[:1] + rows[4:]) == []              # one step count per group: nothing to compare


def test_large_images_are_bounded_in_count_and_compared_at_32_pixels():
    from difftui.engine.eval.diagnostics import (
        NN_SIDE,
        REFERENCE_IMAGES,
        REFERENCE_VALUES,
        SPACING_IMAGES,
        reference_count,
    )
    assert reference_count((3, 32, 32)) == REFERENCE_IMAGES
    assert reference_count((3, 64, 64)) == REFERENCE_VALUES // (3 * 64 * 64) == 4069
    assert reference_count((3, 256, 256)) == SPACING_IMAGES              # never fewer than the spacing sample
    rng = np.random.default_rng(9)
    data = rng.uniform(-1, 1, (300, 3, 64, 64)).astype(np.float32)
    ref = GridReference.from_images(data)
    assert ref.images.shape == (300, 3, NN_SIDE, NN_SIDE)
    assert ref.measure(data[:16])["grid_nn_ratio"] == 0.0                 # copies stay copies at 32x32


def test_quantiles_of_many_values_use_an_even_stride_and_stay_exact_enough():
    from difftui.engine.eval.diagnostics import QUANTILE_VALUES
    x = np.random.default_rng(10).normal(0.0, 0.3, 3 * QUANTILE_VALUES + 7)
    assert value_w1(quantiles(x), np.quantile(x, (np.arange(1000) + 0.5) / 1000)) < 2e-3


def test_a_grid_check_that_fails_says_so_once_and_never_stops_training():
    from difftui.engine.run.grid_check import GridCheck

    class Log:
        rows = []

        def add_metrics(self, step, kimg, values):
            self.rows.append((step, values))

    class Broken:                                                       # a data set that cannot give a batch
        images = torch.zeros(4, 1, 8, 8)
        shape = (1, 8, 8)

        def __len__(self):
            return 4

        def batch(self, idx):
            raise OSError("the cache file vanished")

    check = GridCheck(Broken(), seed=0, latent=False)
    first = check.record(Log(), 10, 0.08, torch.zeros(64, 1, 8, 8))
    assert first.startswith("grid statistics not recorded (OSError: the cache file vanished)")
    assert check.record(Log(), 20, 0.16, torch.zeros(64, 1, 8, 8)) is None and Log.rows == []
    assert GridCheck(Broken(), seed=0, latent=True).record(Log(), 10, 0.08, torch.zeros(64, 1, 8, 8)) is None
