"""Every number the doctor's rules compare against, named and cited (issue 18: thresholds are data).

Each `Threshold` says where its value comes from. Where the playbook gives the number, `basis` quotes it (section and
figure). The playbook mostly names a symptom without a number ("the VLB curve jitters", "far worse"); there the value
is difftui's own choice, `basis` says so and why, and the section is the one whose symptom it measures. A rule fires
when its measure is strictly beyond the value (`exceeds` / `below`), so a measure exactly at a threshold is clean;
tests/doctor/test_doctor_thresholds.py checks each edge.

Windows (how much of a run a rule reads) are here too: they bound the doctor's cost on a run of any length.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Threshold", "THRESHOLDS", "exceeds", "below", "TAIL_ROWS", "OVERVIEW_BUCKETS", "GPU_ROWS"]


@dataclass(frozen=True)
class Threshold:
    name: str
    value: float
    section: str                                    # the playbook section whose symptom it measures
    basis: str                                      # where the value comes from

    def __float__(self) -> float:
        return float(self.value)


def exceeds(measure: float, threshold: Threshold) -> bool:
    """measure > value (NaN never exceeds)."""
    return measure > threshold.value


def below(measure: float, threshold: Threshold) -> bool:
    """measure < value (NaN is never below)."""
    return measure < threshold.value


#----------------------------------------------------------------------------
# How much of a run is read (bounds, not thresholds).

TAIL_ROWS = 400                                     # the newest logged values of a series a rule judges
OVERVIEW_BUCKETS = 256                              # a whole series reduced to at most this many step buckets
GPU_ROWS = 600                                      # the newest GPU samples (one per 2 s: the last ~10 minutes per GPU)

EARLY_FRACTION = Threshold(
    "early_fraction", 0.2, "3.3, 4.2",
    "difftui's choice: the first 20% of a run's steps are its steepest descent; a series' jitter is judged on the "
    "newest TAIL_ROWS values after them")
MIN_ROWS = Threshold(
    "min_rows", 20, "3.3, 4.2",
    "difftui's choice: a robust spread (MAD) of fewer than 20 logged values is itself too noisy to judge")

#----------------------------------------------------------------------------
# 3.3 The VLB curve's jitter (measures.per_image_cv).

VLB_JITTER = Threshold(
    "vlb_jitter", 8.0, "3.3",
    "difftui's choice (the playbook names the symptom, 'the VLB curve jitters', not a number): the per-image "
    "coefficient of variation of the logged L_vlb (measures.per_image_cv); measured on tiny digits runs, L_hybrid, "
    "T = 1000: uniform t 50-140 between steps 600 and 1,066, P1's importance sampling 2.9 once warm (bench/RESULTS.md)")
IS_WARMUP = Threshold(
    "importance_warmup", 3.0, "3.3",
    "difftui's choice: P1's resampler is uniform until every t holds 10 losses (engine/diffusion/resample.py); with "
    "importance sampling on, L_vlb is judged only after 3 x 10 T / batch steps (filling 10 per t under uniform draws "
    "takes about 2.5 x 10 T samples for T = 1000)")

#----------------------------------------------------------------------------
# 4.3 Mixed precision and gradient clipping.

SKIPPED_STEPS = Threshold(
    "skipped_steps", 0, "4.3",
    "playbook 4.3: the log states whether NaN/Inf appeared, and 'if it appears, fall back to FP32 first' "
    "(出现即回退 FP32 先跑通基线): any skipped non-finite step counts")
CLIP_ACTIVE = Threshold(
    "clip_active_fraction", 0.5, "4.3",
    "difftui's choice for 'most of the time' (the issue's words): more than half of the logged intervals have a mean "
    "gradient norm above recipe.grad_clip, so clipping rescales most steps and lowers the effective learning rate")

#----------------------------------------------------------------------------
# 4.4 / 3.5 DyDiT's router and its FLOPs budget.

FLOPS_BAND = Threshold(
    "flops_band", 0.05, "3.5, A.1a",
    "playbook A.1a (P5 Table 8): DyDiT's measured FLOPs sit near the target lambda; the largest gap in the table is "
    "0.042 (DyDiT-S at lambda 0.9: 5.72/6.07 G = 0.942), so a ratio within 0.05 of lambda is in budget")
ROUTER_PINNED = Threshold(
    "router_pinned", 0.05, "4.4",
    "difftui's choice: the playbook's 'router collapse (all on or all off)' as a FLOPs ratio within 0.05 of 0 or 1")
ROUTER_STAYS = Threshold(
    "router_stays", 0.9, "4.4",
    "difftui's choice: 'stays' pinned = at least 90% of the judged logged values pinned")

#----------------------------------------------------------------------------
# 1.4 / 4.5 / 2.9 Overfitting; 5.6 the best snapshot.

EVAL_NOISE = Threshold(
    "eval_noise", 0.02, "5.5",
    "playbook 5.5: P3 reports FID's random fluctuation at about +-2%; a held-out NLL or FID rise within 2% of the "
    "best is read as noise (the same margin is used for NLL, difftui's choice)")
MIN_EVALS = Threshold(
    "min_evals", 3, "1.4, 5.6",
    "difftui's choice: 'rising late in training' needs at least three evaluations at distinct steps")
LOSS_FALLS = Threshold(
    "loss_falls", 0.02, "1.4",
    "difftui's choice: the training loss 'falls' when its level drops by more than 2% (the evaluation noise margin)")
MEMORISATION = Threshold(
    "memorisation_ratio", 0.5, "1.4",
    "difftui's choice for 1.4's 'samples look like their nearest training images': the grid's median distance to "
    "its nearest training image is under half the typical spacing of the training images themselves "
    "(metric grid_nn_ratio, eval/diagnostics.py; fresh samples of the data distribution give about 1, copies 0)")

#----------------------------------------------------------------------------
# 0.0 / 1.0 The EMA grid against the data's statistics; 3.4 / 5.4 colour drift and over-saturation.

LOSS_PROGRESS = Threshold(
    "loss_progress", 0.5, "0.0",
    "difftui's choice for 0.0's 'the training loss falls': its level fell to at most half its first logged level")
GRID_VALUE_W1 = Threshold(
    "grid_value_w1", 0.5, "0.0, 1.0",
    "difftui's choice: the Wasserstein-1 distance between the grid's and the data's pixel values "
    "(eval/diagnostics.value_w1) exceeds half the data's pixel std; the default demo run's grids (batch 128) measure "
    "0.51, 0.42, 0.35 data std at steps 100, 200, 300 (noise turning into digits), 64 training images 0.01")
GRID_MEAN_SHIFT = Threshold(
    "grid_mean_shift", 0.5, "0.0, 1.0",
    "difftui's choice: the grid's pixel mean differs from the data's by more than half the data's pixel std "
    "(a [0,1]-vs-[-1,1] mix-up shifts it by about one std)")
GRID_STD_RATIO = Threshold(
    "grid_std_ratio", 2.0, "0.0, 1.0",
    "difftui's choice: the grid's pixel std is more than twice, or less than half, the data's")
SATURATION_EXCESS = Threshold(
    "saturation_excess", 0.10, "3.4, 5.4",
    "difftui's choice: the share of grid values at the ends of [-1, 1] (|x| >= 0.98) exceeds the data's share by "
    "more than 10 percentage points; the default demo run's grids exceed the digits' 58% by 39, 23, 15 points at "
    "steps 100, 200, 300 (noise clipped at the ends, shrinking: not systematic)")
STILL_IMPROVING = Threshold(
    "still_improving", 0.2, "0.0, 1.0, 3.4, 5.4",
    "difftui's choice for 'stays' / 'systematic': a grid symptom that shrank by more than 20% between the newest two "
    "grids is training still under way (early grids of a healthy run are noise), not a stuck one")
COLOUR_CAST = Threshold(
    "colour_cast", 0.25, "3.4, 5.4",
    "difftui's choice: the channels' mean offsets from the data differ from their common offset by more than a "
    "quarter of the data's pixel std (a systematic tint)")

#----------------------------------------------------------------------------
# 3.6 / 5.7 The few-step curve; 5.2 DDIM consistency.

FEW_STEP_FACTOR = Threshold(
    "few_step_factor", 3.0, "3.6, 5.7",
    "difftui's choice for 'far worse': the best FID at 5 or 10 steps is more than 3 times the FID of the fixed "
    "50-step deterministic sampler at the same training step")
CONSISTENCY = Threshold(
    "consistency", 0.6, "5.2",
    "difftui's choice: the lowest agreement (eval/diagnostics.consistency) of a fixed-x_T panel grid with the "
    "panel's most-step grid; the exact Gaussian model gives 1, a model whose x_0 prediction is fresh noise about 0; "
    "the default demo run at step 300 measures 0.984 (ddim panel, N = 10 against N = 100)")

#----------------------------------------------------------------------------
# 4.2 / 1.8 The loss after a change of width or batch.

DIVERGENCE = Threshold(
    "divergence", 2.0, "4.2",
    "difftui's choice for 'diverging': the newest loss level is more than twice the lowest level the run reached "
    "(a running median of 5 step buckets; healthy tiny digits runs measure 1.04-1.07)")
LOSS_JITTER = Threshold(
    "loss_jitter", 12.0, "4.2",
    "difftui's choice for 'oscillating': the per-image coefficient of variation of the logged training loss "
    "(measures.per_image_cv) above three times the largest healthy value measured: tiny digits runs at lr 3e-3 to "
    "3e-2 measure 1.2-1.3, the default demo run 4.1 past its first 20%")

#----------------------------------------------------------------------------
# 1.2 / 1.5 The data check.

NEAR_DUPLICATES = Threshold(
    "near_duplicates", 0.05, "1.2, 1.5",
    "difftui's choice: playbook 1.2 asks for the near-duplicate ratio and its method but sets no limit; above 5% of "
    "the sample it is reported (info: the playbook asks to disclose it, not to refuse the data)")

#----------------------------------------------------------------------------
# Throughput (4.3: mixed precision as a throughput tool; the data path is difftui's own).

LOW_UTIL = Threshold(
    "low_gpu_util", 50.0, "-",
    "difftui's choice: median GPU utilisation (NVML, %) below 50 over the judged samples")
DATA_WAIT = Threshold(
    "data_wait", 0.3, "-",
    "difftui's choice: the training loop waited for its batches more than 30% of the interval's wall time")
MFU_FRACTION = Threshold(
    "mfu_fraction", 0.5, "4.3",
    "difftui's choice for 'far below the tier's usual': under half the MFU of the tier's reference throughput "
    "(anchor.img_per_s_ref, the papers' code on one H100, eager bf16) on an H100's dense bf16 peak")

THRESHOLDS: dict[str, Threshold] = {t.name: t for t in (
    EARLY_FRACTION, MIN_ROWS, VLB_JITTER, IS_WARMUP, SKIPPED_STEPS, CLIP_ACTIVE, FLOPS_BAND, ROUTER_PINNED, ROUTER_STAYS, EVAL_NOISE,
    MIN_EVALS, LOSS_FALLS, MEMORISATION, LOSS_PROGRESS, GRID_VALUE_W1, GRID_MEAN_SHIFT, GRID_STD_RATIO,
    STILL_IMPROVING, SATURATION_EXCESS, COLOUR_CAST, FEW_STEP_FACTOR, CONSISTENCY, DIVERGENCE, LOSS_JITTER, NEAR_DUPLICATES,
    LOW_UTIL, DATA_WAIT, MFU_FRACTION)}
