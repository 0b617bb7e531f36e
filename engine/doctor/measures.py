"""The numbers the rules compute from a run's logged series (numpy; no torch). Each docstring is the formula.

A logged value of a training metric is an interval mean: the mean over the `log_every` steps of one logging interval
of the batch means, i.e. over n = batch_size * log_every images (engine/run/meter.py).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["per_image_cv", "level", "finite"]

def finite(values) -> np.ndarray:
    """The finite entries of `values` as float64."""
    v = np.asarray(values, dtype=np.float64)
    return v[np.isfinite(v)]


def per_image_cv(values, images_per_value: float) -> float:
    """The jitter of a logged series, as the coefficient of variation one image's term would have:

        d_k   = y_{k+1} - y_k                                  consecutive interval means (finite ones)
        s     = std(d) / sqrt(2)                               the std of one interval mean: a difference of two
                                                               independent means has sqrt(2) times their std, and
                                                               differencing removes a slow trend (a steady one is
                                                               removed entirely: std centres d on its mean)
        cv    = s * sqrt(n) / median(y)                        n = images per logged value

    An interval mean of n independent per-image terms with mean m and std sigma has std sigma / sqrt(n) whatever
    their distribution, so `cv` estimates sigma / m whatever the batch size and logging interval. The plain std (not
    a robust one) is deliberate: the VLB's per-image terms are heavy-tailed under uniform timestep sampling (P1), and
    their rare large values are the jitter. Steps whose interval means swing more than their sampling noise (an
    oscillating optimiser) raise it too. NaN with fewer than 3 finite values or a median <= 0."""
    y = finite(values)
    if y.size < 3:
        return math.nan
    m = float(np.median(y))
    if not m > 0:
        return math.nan
    s = float(np.std(np.diff(y), ddof=1)) / math.sqrt(2.0)
    return s * math.sqrt(images_per_value) / m


def level(values) -> float:
    """The level of a stretch of a series: the median of its finite values (NaN when none)."""
    v = finite(values)
    return float(np.median(v)) if v.size else math.nan
