"""How much an evaluation measures when the user says nothing (playbook 5.5-5.6), torch-free so that the CLI and the
TUI can size and price an evaluation before any process starts (eval/cost.py).

    REPORT_SAMPLES       FID on 50,000 generated images (playbook 5.5); any fewer is a quick, monitoring number
    DEFAULT_NLL_IMAGES   held-out NLL images of an evaluation that names no count: the whole T-step chain costs
                         T network calls per image (825 s for 174 images on the CPU demo, issue 16 item 5), so the
                         default is a fixed subset, small enough for about a minute there; its count is said beside
                         every NLL ("on 8 held-out images"); `--nll-images N` asks for more
    LIVE_PANEL_NLL_IMAGES  a live engine's panel: the NLL of its ancestral chains on this many held-out images
    selection_spec       the fixed deterministic sampler FID is measured with (playbook 5.6; its home is
                         eval/selection.py, re-exported here)
"""

from __future__ import annotations

from difftui.engine.config.model import Recipe
from difftui.engine.eval.selection import selection_spec

__all__ = ["REPORT_SAMPLES", "DEFAULT_NLL_IMAGES", "LIVE_PANEL_NLL_IMAGES", "MIN_EVAL_BATCH", "selection_spec", "fid_sample_count"]

REPORT_SAMPLES = 50_000                             # playbook 5.5: FID on 50,000 generated images
DEFAULT_NLL_IMAGES = 8                              # our choice (issue 16 item 5): its count always shown beside it
LIVE_PANEL_NLL_IMAGES = 64                          # a live engine's panel NLL batch (playbook 5.5: the size is reported)
MIN_EVAL_BATCH = 64                                 # sampling needs no gradients: at least this many per batch


def fid_sample_count(recipe: Recipe, samples: int | None, quick: bool) -> int:
    """Generated images per FID: the count asked, else the recipe's quick count (`quick`) or the report's 50,000."""
    return samples or (recipe.eval_quick_samples if quick else REPORT_SAMPLES)
