"""The numbers the rules compute from a run's logged series (numpy; no torch). Each docstring is the formula.

A logged value of a training metric is an interval mean: the mean over the `log_every` steps of one logging interval
of the batch means, i.e. over n = batch_size * log_every images (engine/run/meter.py).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["MAD_TO_SIGMA", "robust_sigma", "per_image_cv", "level", "finite"]

MAD_TO_SIGMA = 1.4826                               # sigma = 1.4826 * MAD for a normal distribution


def finite(values) -> np.ndarray:
    """The finite entries of `values` as float64."""
    v = np.asarray(values, dtype=np.float64)
    return v[np.isfinite(v)]


def robust_sigma(values) -> float:
    """sigma_hat = 1.4826 * median(|x - median(x)|) over the finite values (NaN when there are none)."""
    v = finite(values)
    if v.size == 0:
        return math.nan
    return float(MAD_TO_SIGMA * np.median(np.abs(v - np.median(v))))


def per_image_cv(values, images_per_value: float) -> float:
    """The jitter of a logged series, as the coefficient of variation one image's term would have:

        d_k   = y_{k+1} - y_k                                  consecutive interval means (finite ones)
        s     = 1.4826 * MAD(d) / sqrt(2)                      the std of one interval mean (a difference of two
                                                               independent means has sqrt(2) times their std;
                                                               MAD around the median difference removes a steady trend)
        cv    = s * sqrt(n) / median(y)                        n = images per logged value

    An interval mean of n independent per-image terms with mean m and std sigma has std sigma / sqrt(n), so `cv`
    estimates sigma / m whatever the batch size and logging interval. Steps whose interval means swing more than
    their sampling noise (a jittery estimator, an oscillating optimiser) raise it. NaN with fewer than 3 finite
    values or a median <= 0."""
    y = finite(values)
    if y.size < 3:
        return math.nan
    m = float(np.median(y))
    if not m > 0:
        return math.nan
    s = robust_sigma(np.diff(y)) / math.sqrt(2.0)
    return s * math.sqrt(images_per_value) / m


def level(values) -> float:
    """The level of a stretch of a series: the median of its finite values (NaN when none)."""
    v = finite(values)
    return float(np.median(v)) if v.size else math.nan
