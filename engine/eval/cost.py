"""What an evaluation or a grid will cost, said before it is paid (issue 16 item 5). Torch-free: the CLI and the TUI
price an evaluation before any process starts, the evaluator and the engine with a rate they measured.

The unit is the image-forward: one image through the network once. Every sampler step is one call per image (Heun
two: NFE = 2N-1, playbook 5.3), and the held-out NLL calls the network once per step of its chain, T calls per image
for the whole chain (P1 Sec. 2: L_0 + sum of L_t + L_T). So

    grid          64 images x NFE of the grid sampler (playbook 5.0)
    panel         64 images x NFE of each sampler, plus images x steps for an ancestral one's NLL (playbook 5.1)
    held-out NLL  images x T
    FID           samples x NFE of the selection sampler (playbook 5.6), times the repeats; Inception's own
                  features are not counted (said so)
    curve         per step count (playbook 5.8) and covariance: samples x steps + images x steps

and the seconds are forwards / rate, the rate in image-forwards per second from one of:

    a timed batch       the evaluator times one no-grad forward at its batch size before it starts
    the grid's calls    the engine times its grid's first calls
    training img/s      before any process starts: the run's logged img/s. A trained image costs a forward and a
                        backward (about two forwards): TRAIN_IMAGE_FORWARDS image-forwards per trained image, the
                        factor the MFU's FLOPs use (run/loop.py, measure_flops)
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from difftui.engine.config.model import RunConfig, SamplerSpec
from difftui.engine.core_rules import ANCESTRAL_KINDS, FEW_STEP_COUNTS, sampler_error
from difftui.engine.eval.counts import DEFAULT_NLL_IMAGES, selection_spec
from difftui.engine.numbers import format_number
from difftui.engine.run.grid_layout import GRID_SIDE

__all__ = ["TRAIN_IMAGE_FORWARDS", "GRID_IMAGES", "Part", "Cost", "EvalCounts", "evaluation_parts", "grid_part", "training_rate",
           "describe_seconds"]

TRAIN_IMAGE_FORWARDS = 3                            # forward + backward (2 x forward), as the MFU's FLOPs count it
GRID_IMAGES = GRID_SIDE ** 2                        # playbook 5.0: 64 fixed latents
CURVE_VARIANCES = ("fixed_small", "fixed_large", "learned", "ocm")       # playbook 3.6, 5.7-5.8 (eval/protocol.py)


@dataclass(frozen=True)
class Part:
    what: str                                       # "held-out NLL: 16 images x 1,000 steps"
    forwards: int                                   # image-forwards
    rate: float | None = None                       # its own rate (a batch size of its own, timed), else the Cost's
    kind: str = ""                                  # "grid", "panel", "nll", "fid", "curve"


@dataclass(frozen=True)
class EvalCounts:
    """What an evaluation measures, in counts (the evaluator's options as numbers)."""
    panel: bool = True
    nll: bool = True                                # the held-out NLL over the whole chain (the evaluator's task)
    nll_images: int = DEFAULT_NLL_IMAGES            # its images, and those of the panel's ancestral chains' NLL
    panel_nll: bool = False                         # the panel's NLL without the held-out task (a live engine's)
    fid_samples: int = 0                            # 0: no FID
    repeats: int = 1
    curve: bool = False


def describe_seconds(seconds: float) -> str:
    """'12 s', '3 min', '1.5 h': an estimate's words (never more digits than it has)."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


@dataclass(frozen=True)
class Cost:
    parts: tuple[Part, ...]
    rate: float | None                              # image-forwards per second; None: not measured yet
    basis: str                                      # where the rate comes from

    @property
    def forwards(self) -> int:
        return sum(p.forwards for p in self.parts)

    def part_seconds(self, part: Part) -> float:
        return part.forwards / (part.rate or self.rate)

    @property
    def seconds(self) -> float | None:
        return sum(self.part_seconds(p) for p in self.parts) if self.rate else None

    def describe(self) -> str:
        """'estimate: about 55 s (panel ...: 20 s; held-out NLL ...: 35 s) at 900 image-forwards/s (basis)'."""
        if not self.parts:
            return "estimate: nothing to evaluate"
        if not self.rate:
            return (f"estimate: {format_number(self.forwards)} image-forwards ("
                    + "; ".join(p.what for p in self.parts) + f"); time unknown ({self.basis})")
        parts = "; ".join(f"{p.what}: {describe_seconds(self.part_seconds(p))}" for p in self.parts)
        return (f"estimate: about {describe_seconds(self.seconds)} ({parts}) at {format_number(self.rate)} "
                f"image-forwards/s, {self.basis}")

    def breakdown(self) -> list[str]:
        """The estimate as lines: the total, one per part, the rate and its basis (the TUI's dialog)."""
        if not self.rate:
            return [f"estimate: {format_number(self.forwards)} image-forwards, time unknown",
                    *(f"  {p.what}" for p in self.parts), self.basis]
        return [f"estimate: about {describe_seconds(self.seconds)}",
                *(f"  {p.what}: {describe_seconds(self.part_seconds(p))}" for p in self.parts),
                f"at {format_number(self.rate)} image-forwards/s, {self.basis}"]


def _applies(spec: SamplerSpec, config: RunConfig) -> bool:
    r = config.recipe
    return sampler_error(spec, objective="edm" if r.loss == "edm" else "ddpm", variance=r.variance,
                         T=r.diffusion_steps) is None


def _has_chain_nll(config: RunConfig) -> bool:
    """A likelihood of images: the DDPM family on pixels (a latent data set's chain is of VAE latents)."""
    return config.recipe.loss != "edm" and not config.dataset.latents


def grid_part(config: RunConfig) -> Part:
    spec = config.sampler.grid
    return Part(f"grid: {GRID_IMAGES} images x NFE {spec.nfe} ({spec.describe()})", GRID_IMAGES * spec.nfe)


def evaluation_parts(config: RunConfig, counts: EvalCounts) -> tuple[Part, ...]:
    """The parts of one evaluation of `config`'s run as `counts` asks, in the order the evaluator does them."""
    parts = []
    nll_ok = counts.nll and _has_chain_nll(config)
    images = counts.nll_images
    if counts.panel:
        panel_nll = (counts.nll or counts.panel_nll) and _has_chain_nll(config)
        panel = [config.sampler.grid] + [s for s in config.sampler.sweep if s != config.sampler.grid]
        applied = [s for s in panel if _applies(s, config)]
        forwards = sum(GRID_IMAGES * s.nfe for s in applied)
        what = f"panel: {len(applied)} samplers x {GRID_IMAGES} images, NFE {sum(s.nfe for s in applied)}"
        chains = [s for s in applied if s.kind in ANCESTRAL_KINDS] if panel_nll else []
        if chains:
            forwards += sum(images * s.steps for s in chains)
            what += f", NLL of {len(chains)} chains on {format_number(images)} images"
        parts.append(Part(what, forwards))
    if nll_ok:
        T = config.recipe.diffusion_steps
        parts.append(Part(f"held-out NLL: {format_number(images)} images x {format_number(T)} steps", images * T,
                          kind="nll"))
    if counts.fid_samples:
        spec = selection_spec(config)
        n = counts.fid_samples * counts.repeats
        parts.append(Part(f"FID: {format_number(n)} samples x NFE {spec.nfe} (plus Inception features)",
                          n * spec.nfe))
    if counts.curve and config.recipe.loss != "edm":
        cells = [v for v in CURVE_VARIANCES
                 if _applies(SamplerSpec(kind="covariance", steps=FEW_STEP_COUNTS[0], variance=v), config)]
        per_steps = counts.fid_samples * counts.repeats + (images if nll_ok else 0)
        parts.append(Part(f"few-step curve: {len(cells)} covariances x {len(FEW_STEP_COUNTS)} step counts",
                          len(cells) * sum(per_steps * s for s in FEW_STEP_COUNTS)))
    return tuple(parts)


def training_rate(store: Any, run: dict[str, Any], recent: int = 5) -> tuple[float | None, str]:
    """(image-forwards per second, basis) from the run's own logged training img/s: the median of its last
    `recent` values, times TRAIN_IMAGE_FORWARDS. (None, why) when it logged none."""
    rows = store.series_tail(int(run["id"]), "img_per_s", count=recent)
    values = [float(r["value"]) for r in rows if r["value"] is not None and float(r["value"]) > 0]
    if not values:
        return None, f"run {run['id']} logged no training img/s to price it with"
    img_s = statistics.median(values)
    device = run.get("device") or "its device"
    return img_s * TRAIN_IMAGE_FORWARDS, (f"from run {run['id']}'s training speed on {device} "
                                          f"({format_number(img_s)} img/s x {TRAIN_IMAGE_FORWARDS})")
