"""Throughput on a GPU: a run starved by its data loader (difftui's own data path; no playbook section), and MFU far
below the tier's usual (playbook 4.3: mixed precision as a throughput tool)."""

from __future__ import annotations

import math

import numpy as np

from difftui.engine.doctor.finding import Evidence, Finding, Needs
from difftui.engine.doctor.measures import finite, level
from difftui.engine.doctor.rule import fmt, rule, span_text
from difftui.engine.doctor.thresholds import DATA_WAIT, LOW_UTIL, MFU_FRACTION, MIN_ROWS, below, exceeds
from difftui.engine.doctor.view import RunView
from difftui.engine.run.peaks import PEAK_TFLOPS

REFERENCE_CARD = "H100 80GB HBM3"                   # where the tiers' img_per_s_ref were measured (one H100, bf16)
CONV_FAMILIES = ("unet", "adm", "ddpmpp", "ncsnpp")  # channels_last helps convolutions (engine/run/trainer.py)

# playbook 4.3 (2): 仅当大规模训练中需要吞吐(例如 P3 的 ImageNet-64 配置)才启用 FP16。
WHY_4_3 = "Enable reduced precision only where large-scale training needs the throughput, as P3's ImageNet-64 setup."
WHY_LOADER = ("difftui's data path, not a playbook rule: a GPU that waits for its batches trains no faster however the "
              "model is tuned.")


@rule("loader-bound", "-", "a GPU run whose utilisation stays low while the data loader waits",
      applies=lambda v: v.on_gpu)
def loader_bound(v: RunView) -> Finding | Needs | None:
    utils = finite([r["util"] for r in v.gpu])
    waits = v.tail("data_wait")
    wait = finite(waits.values)
    missing = []
    if below(utils.size, MIN_ROWS):
        missing.append(f"GPU utilisation samples (NVML): at least {MIN_ROWS.value:g} (has {utils.size})")
    if below(wait.size, MIN_ROWS):
        missing.append(f"data_wait: at least {MIN_ROWS.value:g} logged values (has {wait.size})")
    if missing:
        return Needs("loader-bound", "-", "GPU utilisation against the data loader's waits", tuple(missing))
    util, waiting = float(np.median(utils)), float(np.median(wait))
    if not (below(util, LOW_UTIL) and exceeds(waiting, DATA_WAIT)):
        return None
    edits: tuple[dict, ...] = ()
    if v.cfg("recipe.data_on_device") is False:
        edits = ({"recipe.data_on_device": True},)
    evidence = Evidence(f"median GPU utilisation {util:.0f}% over the last {utils.size} samples while the loop waited "
                        f"for its batches {100 * waiting:.0f}% of the time ({span_text(waits.span)})",
                        {"gpu_util": util, "data_wait": waiting}, waits.span)
    name = v.cfg("dataset.name")
    return Finding("loader-bound", "warning", "The GPU waits for the data loader", "-", WHY_LOADER, evidence,
                   edits=edits, actions=(f"difftui data prepare {name}",),
                   advice="Feed the GPU: the uint8 cache (difftui data prepare builds it once; it is memory-mapped at "
                          "every start), a data set that fits a quarter of GPU memory lives there "
                          "(recipe.data_on_device), and the DataLoader's workers (4, engine/data/loader.py).",
                   used=("GPU samples (util)", "metric data_wait"))


def _usual_mfu(v: RunView) -> float:
    """The tier's reference MFU: img_per_s_ref x 6 x GMACs (forward + backward, 2 FLOPs per multiply-add) over an
    H100's dense bf16 peak; NaN when the tier has no reference throughput."""
    anchor = v.cfg("backbone.anchor") or {}
    ips, gmacs = anchor.get("img_per_s_ref"), anchor.get("gmacs")
    if not ips or not gmacs:
        return math.nan
    return ips * 6 * gmacs * 1e9 / 1e12 / PEAK_TFLOPS[REFERENCE_CARD]["bf16"]


def _bf16_peak(v: RunView) -> float:
    names = [r.get("name") or "" for r in v.gpu]
    for card, peaks in PEAK_TFLOPS.items():
        if any(card in n for n in names):
            return peaks["bf16"]
    return math.nan


@rule("low-mfu", "4.3", "MFU far below the tier's usual", applies=lambda v: v.on_gpu)
def low_mfu(v: RunView) -> Finding | Needs | None:
    usual = _usual_mfu(v)
    peak = _bf16_peak(v)
    s = v.tail("tflops")
    tflops = finite(s.values)
    missing = []
    if not math.isfinite(usual):
        missing.append(f"a reference throughput for tier {v.cfg('backbone.name')!r} (anchor.img_per_s_ref)")
    if not math.isfinite(peak):
        missing.append("the card's dense bf16 peak (a card of engine/run/peaks.py, named in the GPU samples)")
    if below(tflops.size, MIN_ROWS):
        missing.append(f"tflops: at least {MIN_ROWS.value:g} logged values (has {tflops.size})")
    if missing:
        return Needs("low-mfu", "4.3", "MFU against the tier's usual", tuple(missing))
    mfu = level(tflops) / peak                      # on the card's bf16 peak, whatever precision the run used
    if not below(mfu / usual, MFU_FRACTION):
        return None
    edits = []
    if v.precision == "fp32":
        edits.append({"recipe.precision": "bf16"})
    if v.cfg("backbone.family") in CONV_FAMILIES and v.cfg("recipe.channels_last") is False:
        edits.append({"recipe.channels_last": True})
    if not v.cfg("recipe.compile"):
        edits.append({"recipe.compile": True})
    evidence = Evidence(
        f"MFU {100 * mfu:.1f}% of the card's bf16 peak (median {fmt(level(tflops))} TFLOP/s, {span_text(s.span)}) "
        f"vs the tier's usual {100 * usual:.1f}% (its reference img/s on one H100, bf16); precision {v.precision}",
        {"mfu_bf16": mfu, "usual_mfu": usual, "ratio": mfu / usual}, s.span)
    return Finding("low-mfu", "warning", "MFU far below the tier's usual", "4.3", WHY_4_3, evidence,
                   edits=tuple(edits),
                   advice="bf16 autocast, channels_last for the conv nets and torch.compile are difftui's fast path "
                          "(README 'Runs on GPUs'); playbook 4.3: check with the same evaluation protocol that quality "
                          "does not drop when precision changes.",
                   used=("metric tflops", "GPU samples (card name)", "config backbone.anchor"))
