"""Diagnostics of the fixed-x_T grids (issue 18): numbers the doctor judges that the engine did not record before,
each defined once here, with its formula in the docstring. numpy only (a torch tensor is accepted and copied to the
host); the engine calls them where grids are drawn and panels evaluated:

    GridReference.measure(grid)   the EMA grid against the training images (playbook 0.0, 1.0, 3.4, 5.4) and its
                                  distance to them (1.4): metric rows GRID_METRICS at the grid's step
    panel_consistency(rows)       one x_T's samples at several step counts of one deterministic sampler agree on
                                  their content (playbook 5.2): evals rows of kind "consistency"

Images are [N, C, H, W] in [-1, 1] (playbook 1.0), clipped to [-1, 1] first, as the PNG shows them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["GRID_METRICS", "QUANTILES", "SATURATED", "LOWPASS_SIDE", "REFERENCE_IMAGES", "REFERENCE_VALUES",
           "SPACING_IMAGES", "NN_SIDE", "QUANTILE_VALUES", "GridReference", "reference_count", "lowpass",
           "quantiles", "value_w1", "nearest_distances", "agreement", "consistency", "panel_consistency",
           "deterministic_group"]

QUANTILES = 1000                                    # the pixel-value distribution as this many quantiles
# The metric names a grid's numbers are logged under (all "grid_*", so a front end can group or hide them).
GRID_METRICS = ("grid_mean", "grid_std", "grid_data_mean", "grid_data_std", "grid_w1", "grid_saturated",
                "grid_data_saturated", "grid_colour_cast", "grid_nn_ratio")
SATURATED = 0.98                                    # |x| >= 0.98: at an end of the range (within 1% of it)
LOWPASS_SIDE = 8                                    # "high-level content": the image area-averaged to at most 8x8
REFERENCE_IMAGES = 4096                             # training images a grid is compared with (a fixed subset),
REFERENCE_VALUES = 50_000_000                       # at most this many values (200 MB as float32: 4,096 at 64x64x3)
NN_SIDE = 32                                        # nearest-image distances on images area-averaged to <= 32x32
QUANTILE_VALUES = 1_000_000                         # quantiles from at most this many values (an even stride)
SPACING_IMAGES = 256                                # of which this many measure the data's own spacing


def as_array(images: Any, dtype=np.float64) -> np.ndarray:
    """[N, C, H, W] in [-1, 1] from a numpy array or a torch tensor (copied to the host)."""
    if hasattr(images, "detach"):
        images = images.detach().float().cpu().numpy()
    return np.clip(np.asarray(images, dtype=dtype), -1.0, 1.0)


def reference_count(shape: tuple[int, ...]) -> int:
    """How many training images of one shape (C, H, W) the reference holds: REFERENCE_IMAGES, or fewer when they
    would exceed REFERENCE_VALUES values (large images), never fewer than SPACING_IMAGES."""
    return max(SPACING_IMAGES, min(REFERENCE_IMAGES, REFERENCE_VALUES // int(np.prod(shape))))


def quantiles(x: np.ndarray) -> np.ndarray:
    """Q(q_k) of the pixel values at q_k = (k + 1/2) / QUANTILES, k = 0 .. QUANTILES - 1 (linear interpolation), of
    every value, or of every s-th value when there are more than QUANTILE_VALUES (s the smallest stride that fits)."""
    flat = np.asarray(x).ravel()
    flat = flat[::-(-flat.size // QUANTILE_VALUES)]
    return np.quantile(flat, (np.arange(QUANTILES) + 0.5) / QUANTILES).astype(np.float64)


def value_w1(qa: np.ndarray, qb: np.ndarray) -> float:
    """The Wasserstein-1 distance between two pixel-value distributions given by their quantiles:

        W1 = integral_0^1 |Q_a(q) - Q_b(q)| dq  ~  mean_k |Q_a(q_k) - Q_b(q_k)|

    in pixel units ([-1, 1] images: 0 .. 2). Unlike a histogram distance it does not depend on binning, so data with
    few grey levels (the 17 of the digits) compared with continuous samples is not 'far' for being quantised."""
    return float(np.mean(np.abs(np.asarray(qa) - np.asarray(qb))))


def nearest_distances(a: np.ndarray, b: np.ndarray, *, exclude_self: bool = False) -> np.ndarray:
    """For each image of `a`, the RMS distance to its nearest image of `b`:

        d(x, B) = min_{y in B} sqrt(mean_k (x_k - y_k)^2)

    through |x|^2 + |y|^2 - 2 x.y; with `exclude_self`, a[i] is b[i] and is not its own neighbour."""
    a2 = a.reshape(len(a), -1)
    b2 = b.reshape(len(b), -1)
    sq = (a2 ** 2).sum(1)[:, None] + (b2 ** 2).sum(1)[None, :] - 2.0 * (a2 @ b2.T)
    if exclude_self:
        np.fill_diagonal(sq, np.inf)
    return np.sqrt(np.maximum(sq.min(1), 0.0) / a2.shape[1])


@dataclass(frozen=True)
class GridReference:
    """The training images a run's grids are compared with (a fixed subset) and their statistics."""
    images: np.ndarray                              # [M, C, h, w] float32: lowpass(x, NN_SIDE) of the M images
    mean: float
    std: float
    channel_means: np.ndarray                       # [C]
    quantiles: np.ndarray                           # [QUANTILES] of the pixel values
    saturated: float
    spacing: float                                  # median distance of a training image to its nearest other one

    @classmethod
    def from_images(cls, images: Any) -> "GridReference":
        x = as_array(images, np.float32)
        small = lowpass(x, NN_SIDE)
        # The data's own spacing: d(x_j, B \ {x_j}) for the first SPACING_IMAGES, against all M.
        d = nearest_distances(small[:SPACING_IMAGES], small, exclude_self=True) if len(x) > 1 else \
            np.array([math.nan])
        return cls(images=small, mean=float(x.mean(dtype=np.float64)), std=float(x.std(dtype=np.float64)),
                   channel_means=x.mean(axis=(0, 2, 3), dtype=np.float64), quantiles=quantiles(x),
                   saturated=float(np.mean(np.abs(x) >= SATURATED)), spacing=float(np.median(d)))

    def measure(self, grid: Any) -> dict[str, float]:
        """The grid's numbers against this reference (GRID_METRICS):

            grid_mean, grid_std          over every pixel value of the grid; grid_data_mean, grid_data_std the same
                                         of the reference images
            grid_w1                      value_w1 (Wasserstein-1) between the grid's and the data's pixel values
            grid_saturated, grid_data_saturated   the share of values with |x| >= SATURATED
            grid_colour_cast             (C = 3 only) with D_c = mean_c(grid) - mean_c(data):
                                         max_c |D_c - mean_c' D_c'| / data_std (a tint: channels shifted unequally)
            grid_nn_ratio                median_i d(g_i, B) / spacing, d as in `nearest_distances` on the images
                                         area-averaged to at most NN_SIDE x NN_SIDE, B the reference
                                         images, spacing = median_j d(x_j, B \\ {x_j}): about 1 for fresh samples of
                                         the data distribution, 0 for copies of training images
        """
        g = as_array(grid)
        out = {"grid_mean": float(g.mean()), "grid_std": float(g.std()), "grid_data_mean": self.mean,
               "grid_data_std": self.std, "grid_w1": value_w1(quantiles(g), self.quantiles),
               "grid_saturated": float(np.mean(np.abs(g) >= SATURATED)), "grid_data_saturated": self.saturated}
        if g.shape[1] == 3:
            shift = g.mean(axis=(0, 2, 3)) - self.channel_means
            out["grid_colour_cast"] = float(np.max(np.abs(shift - shift.mean())) / max(self.std, 1e-12))
        if self.spacing > 0 and math.isfinite(self.spacing):
            near = nearest_distances(lowpass(g, NN_SIDE).astype(np.float32), self.images)
            out["grid_nn_ratio"] = float(np.median(near) / self.spacing)
        return out


#----------------------------------------------------------------------------
# Playbook 5.2: the DDIM consistency diagnostic.

def lowpass(x: np.ndarray, side: int = LOWPASS_SIDE) -> np.ndarray:
    """Area-average [N, C, H, W] down to at most side x side (H and W divisible by the factor; identity when H <= side)."""
    n, c, h, w = x.shape
    fh, fw = max(h // side, 1), max(w // side, 1)
    return x[:, :, :h - h % fh, :w - w % fw].reshape(n, c, h // fh, fh, w // fw, fw).mean(axis=(3, 5))


def agreement(a: Any, b: Any) -> float:
    """The mean over images k of the Pearson correlation between lowpass(a[k]) and lowpass(b[k]) (all channels and
    positions of one image as one vector): 1 when b is a positive affine copy of a at the low-pass scale, about 0 for
    unrelated images, -1 for a negative. An image flat in both is counted as 1, flat in one only as 0."""
    la, lb = lowpass(as_array(a)), lowpass(as_array(b))
    la = la.reshape(len(la), -1)
    lb = lb.reshape(len(lb), -1)
    da, db = la - la.mean(1, keepdims=True), lb - lb.mean(1, keepdims=True)
    na, nb = np.sqrt((da ** 2).sum(1)), np.sqrt((db ** 2).sum(1))
    flat_a, flat_b = na < 1e-12, nb < 1e-12
    r = (da * db).sum(1) / np.where(flat_a | flat_b, 1.0, na * nb)
    r = np.where(flat_a & flat_b, 1.0, np.where(flat_a | flat_b, 0.0, r))
    return float(np.mean(r))


def consistency(images_by_steps: dict[int, Any]) -> tuple[float, dict[int, float]]:
    """Playbook 5.2 on one x_T: the samples of each step count N against those of the most steps N_max,

        agreement(N) = agreement(X_N, X_Nmax)        score = min_{N < N_max} agreement(N)

    High-level content (subject, composition) should hold across trajectories, details may change (5.2 (3)); a low
    score flags the sampler, the schedule or numerical error rather than training. Needs two step counts or more."""
    if len(images_by_steps) < 2:
        raise ValueError("consistency needs the same x_T sampled at two step counts or more")
    top = max(images_by_steps)
    agree = {n: agreement(images_by_steps[n], images_by_steps[top]) for n in sorted(images_by_steps) if n != top}
    return min(agree.values()), agree


def deterministic_group(spec: Any) -> tuple | None:
    """The family a deterministic sampler spec belongs to (same trajectory rule, any step count), else None:
    DDIM with eta = 0 (by its tau rule), EDM Euler/Heun without churn (by sigma range and rho)."""
    if spec.kind == "ddim" and spec.eta == 0.0 and spec.variance == "fixed_small":
        return ("ddim", spec.tau)
    if spec.kind in ("edm_euler", "edm_heun") or (spec.kind == "edm_stochastic" and spec.S_churn == 0.0):
        return (spec.kind, spec.sigma_min, spec.sigma_max, spec.rho)
    return None


def panel_consistency(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Evals rows (kind "consistency") for each group of a panel's deterministic samplers with two step counts or
    more (the rows of difftui.engine.diffusion.evaluate_panel: "spec", "grid", "nfe"): metric "agreement" per
    sampler against the group's most-step sampler, and metric "consistency" (the score) on that sampler's label."""
    groups: dict[tuple, dict[int, dict[str, Any]]] = {}
    for row in rows:
        if row.get("grid") is None or row.get("error"):
            continue
        key = deterministic_group(row["spec"])
        if key is not None:
            groups.setdefault(key, {})[int(row["spec"].steps)] = row
    out = []
    for members in groups.values():
        if len(members) < 2:
            continue
        score, agree = consistency({n: r["grid"] for n, r in members.items()})
        top = members[max(members)]
        protocol = {"reference": top["label"], "steps": sorted(members), "lowpass_side": LOWPASS_SIDE,
                    "images": int(len(top["grid"])), "definition": "difftui.engine.eval.diagnostics.consistency"}
        for n, value in agree.items():
            out.append({"sampler": members[n]["label"], "nfe": int(members[n]["nfe"]), "metric": "agreement",
                        "value": value, "kind": "consistency", "protocol": protocol})
        out.append({"sampler": top["label"], "nfe": int(top["nfe"]), "metric": "consistency", "value": score,
                    "kind": "consistency", "protocol": protocol})
    return out
