"""FID and improved precision/recall on feature rows, through torch-fidelity's own functions (playbook 5.5).

    FID = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))          (Heusel et al.; torch-fidelity/TTUR)
    precision = share of generated samples inside the real manifold (k-NN balls, k = 3)
    recall    = share of real samples inside the generated manifold   (Kynkaanniemi et al. 2019; P1 Sec. 5)

The repeats of playbook 5.5 (FID computed three times, the minimum reported; about +-2% spread) are `summarise`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["PR_NEIGHBOURHOOD", "feature_statistics", "frechet_distance", "precision_recall", "summarise"]

PR_NEIGHBOURHOOD = 3                                # improved precision/recall with k = 3 (playbook 5.5)
PR_BATCH = 5_000                                    # rows per distance block (a 5k x 50k block is 1 GB)


def feature_statistics(features: torch.Tensor) -> dict[str, np.ndarray]:
    """{"mu": [D], "sigma": [D, D]} in float64 (torch-fidelity's fid_features_to_statistics)."""
    from torch_fidelity.metric_fid import fid_features_to_statistics
    stats = fid_features_to_statistics(features.detach().cpu().to(torch.float64))
    return {"mu": np.asarray(stats["mu"], dtype=np.float64), "sigma": np.asarray(stats["sigma"], dtype=np.float64)}


def frechet_distance(stats_1: dict[str, np.ndarray], stats_2: dict[str, np.ndarray]) -> float:
    """The Frechet distance of two Gaussians given as {"mu", "sigma"} (torch-fidelity's fid_statistics_to_metric)."""
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_statistics_to_metric
    s1 = {k: np.asarray(v, dtype=np.float64) for k, v in stats_1.items()}
    s2 = {k: np.asarray(v, dtype=np.float64) for k, v in stats_2.items()}
    return float(fid_statistics_to_metric(s1, s2, verbose=False)[KEY_METRIC_FID])


def precision_recall(generated: torch.Tensor, real: torch.Tensor, k: int = PR_NEIGHBOURHOOD) -> tuple[float, float]:
    """(precision, recall) of generated against real feature rows (torch-fidelity's calculate_precision_recall_part,
    which works in blocks: the same numbers as the full distance matrix without holding it)."""
    from torch_fidelity.metric_prc import calculate_precision_recall_part
    if min(len(generated), len(real)) <= k:
        return math.nan, math.nan
    return calculate_precision_recall_part(generated.float(), real.float(), neighborhood=k, batch_size=PR_BATCH)


def summarise(values: list[float]) -> tuple[float, float]:
    """(minimum, spread = max - min) of the repeats (playbook 5.5: report the minimum of three)."""
    return float(min(values)), float(max(values) - min(values))
