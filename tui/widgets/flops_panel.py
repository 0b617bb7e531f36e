"""The FLOPs-budget panel (playbook 1.7-1.8, 3.5, A.1, A.1a): what a forward and a grid sample cost, what training
achieves, and, for a DyDiT run, whether the measured F_dynamic/F_static keeps to the target lambda.

It reads only what the engine logged: `gflops_fwd` (GFLOPs of one forward at batch 1, measured once), `tflops`
(achieved training TFLOP/s per log interval), `mfu` (on CUDA: the fraction of the card's peak), `flops_ratio` and
`flops_target` (DyDiT). A figure that was not logged is shown as "unavailable" with the reason, never as 0. Beside
them, the tier's anchor from the run's config (the paper's parameters and GMACs) and, for the DiT / DyDiT tiers,
the P5 Table 8 row at the run's lambda.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from difftui.engine.numbers import format_number
from difftui.tui.metric_series import BucketSeries

__all__ = ["FlopsPanel", "BudgetVerdict", "budget_verdict", "FLOPS_TOLERANCE", "P5_TABLE8", "spark_line"]

# playbook A.1a (P5 Table 8): DyDiT's measured FLOPs sit near the target lambda, not on it; the largest gap in the
# table is 0.042 (DyDiT-S at lambda 0.9: 5.72 / 6.07 G = 0.942). A ratio within 0.05 of lambda is in budget.
FLOPS_TOLERANCE = 0.05

# playbook A.1a (P5 Table 8, ImageNet 256x256): (lambda, FLOPs in G, FID) per model; lambda 1.0 is the static DiT.
P5_TABLE8: dict[str, tuple[tuple[float, float, float], ...]] = {
    "S": ((1.0, 6.07, 21.46), (0.9, 5.72, 21.06), (0.8, 4.94, 21.95), (0.7, 4.34, 23.01), (0.5, 3.16, 28.75),
          (0.4, 2.63, 36.21), (0.3, 1.96, 59.28)),
    "B": ((1.0, 23.02, 9.07), (0.9, 21.28, 8.78), (0.8, 18.53, 8.79), (0.7, 16.28, 9.40), (0.5, 11.90, 12.92),
          (0.4, 9.71, 15.54), (0.3, 7.51, 23.34)),
    "XL": ((1.0, 118.69, 2.27), (0.7, 84.33, 2.12), (0.6, 67.83, 2.18), (0.5, 57.88, 2.07), (0.3, 38.85, 3.36)),
}
SPARKS = "▁▂▃▄▅▆▇█"
LABEL_WIDTH = 14


@dataclass(frozen=True)
class BudgetVerdict:
    state: str            # "in", "out", "warmup" or "unknown"
    delta: float          # ratio - target (NaN when unknown)
    text: str


def budget_verdict(ratio: float | None, target: float | None, *, step: int = 0, warmup_steps: int = 0,
                   tolerance: float = FLOPS_TOLERANCE) -> BudgetVerdict:
    """playbook 3.5: is avg(F_dynamic / F_static) at the target lambda? In budget within +-tolerance; the text says
    by how much (above the target costs compute, below it spends less than allowed)."""
    if target is None or not math.isfinite(target):
        return BudgetVerdict("unknown", math.nan, "no target lambda logged")
    if ratio is None:
        return BudgetVerdict("unknown", math.nan, f"target lambda {target:g}: no F_dyn/F_static logged yet")
    if not math.isfinite(ratio):
        return BudgetVerdict("unknown", math.nan, f"F_dyn/F_static is {format_number(ratio)}: no verdict")
    delta = ratio - target
    if step < warmup_steps:
        return BudgetVerdict("warmup", delta, f"warm-up to step {warmup_steps:,}: {ratio:.3f} vs lambda {target:g} "
                                              f"({delta:+.3f}), judged after the warm-up")
    if abs(delta) <= tolerance:
        return BudgetVerdict("in", delta, f"IN budget: {ratio:.3f} vs lambda {target:g} ({delta:+.3f}, "
                                          f"within +-{tolerance:g})")
    side = "above" if delta > 0 else "below"
    beyond = abs(delta) - tolerance
    return BudgetVerdict("out", delta, f"OUT of budget: {ratio:.3f} is {abs(delta):.3f} {side} lambda {target:g} "
                                       f"({beyond:.3f} beyond the +-{tolerance:g} band)")


def spark_line(series: BucketSeries | None, width: int, lo: float = 0.0, hi: float = 1.0) -> str:
    """A series over the whole run as `width` block characters scaled to [lo, hi] (a space where nothing finite)."""
    if series is None or width <= 0:
        return ""
    out = []
    for p in series.points(width):
        if not math.isfinite(p.mean):
            out.append("×" if p.marker else " ")
            continue
        frac = (p.mean - lo) / (hi - lo) if hi > lo else 0.0
        out.append(SPARKS[min(max(int(frac * len(SPARKS)), 0), len(SPARKS) - 1)])
    return "".join(out)


def _table8_model(backbone: str) -> str | None:
    """'dydit-s-2' / 'dit-s-2' -> 'S' (the P5 Table 8 block of the tier)."""
    parts = backbone.lower().split("-")
    if len(parts) >= 2 and parts[0] in ("dit", "dydit") and parts[1].upper() in P5_TABLE8:
        return parts[1].upper()
    return None


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value


class FlopsPanel(Static):
    """Fed by the dashboard: the run row (its config), the latest metric values, the flops_ratio series, the newest
    grid's NFE and the GPU's name."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.run: dict[str, Any] | None = None
        self.config: dict[str, Any] = {}
        self.latest: dict[str, float] = {}
        self.ratio: BucketSeries | None = None
        self.grid_nfe: int | None = None
        self.grid_sampler: str = ""
        self.gpu_name: str = ""
        self.verdict: BudgetVerdict | None = None
        self._shown: tuple | None = None

    def on_mount(self) -> None:
        self.border_title = "FLOPs budget"
        self.update(self.render_panel())

    def on_resize(self) -> None:
        self._shown = None
        self._draw()

    def update_from(self, run: dict[str, Any] | None, latest: dict[str, float], ratio: BucketSeries | None,
                    grid: dict[str, Any] | None, gpu_name: str = "") -> None:
        if run is not None and (self.run is None or self.run.get("config") != run.get("config")):
            try:
                self.config = json.loads(run["config"])
            except (TypeError, ValueError):
                self.config = {}
        self.run = run
        self.latest = latest
        self.ratio = ratio
        if grid is not None:
            self.grid_nfe, self.grid_sampler = grid.get("nfe"), grid.get("sampler") or ""
        self.gpu_name = gpu_name
        self._draw()

    def _draw(self) -> None:
        """Redraw only what changed (the panel's height is its content's, so an update costs a layout pass)."""
        rows = self.rows() if self.run is not None else []
        key = tuple((label, value.plain, tuple(value.spans)) for label, value in rows)
        if key != self._shown or not rows:
            # A layout pass (which redraws every widget of the screen) only when the panel's height can change: a
            # row more or less, or a value that now wraps onto more or fewer lines (values wrap, never cut). The
            # figures of a running run change every second; their line count does not.
            lines = self._lines(key)
            layout = self._shown is None or lines != self._lines(self._shown)
            self._shown = key
            self.update(self.render_panel(rows), layout=layout)

    def _lines(self, key: tuple) -> int:
        width = max(self.content_size.width - LABEL_WIDTH - 1, 1)
        return sum(max(1, -(-len(plain) // width)) for _, plain, _ in key)

    # -- the figures ----------------------------------------------------------------------------------------------

    @property
    def dynamic(self) -> bool:
        return (self.config.get("backbone") or {}).get("family") == "dydit" or "flops_ratio" in self.latest

    def rows(self) -> list[tuple[str, Text]]:
        """(label, value) lines of the panel; pure, for the tests."""
        rows: list[tuple[str, Text]] = []
        backbone = self.config.get("backbone") or {}
        device = (self.run or {}).get("device") or self.config.get("device") or ""
        # GFLOPs per forward (measured) and per grid sample (x NFE).
        gflops = _finite(self.latest.get("gflops_fwd"))
        if gflops is None:
            rows.append(("GFLOPs", _na("not logged by this run's engine (an older run, or no step logged yet)")))
        elif not math.isfinite(gflops):
            rows.append(("GFLOPs", _na(f"the measurement gave {format_number(gflops)}")))
        else:
            value = Text(f"{format_number(gflops)} per forward" + (" (static)" if self.dynamic else "")
                         + "  (measured, batch 1)")
            if self.grid_nfe:
                value.append(f"  ·  {format_number(gflops * self.grid_nfe)} per grid sample (x NFE {self.grid_nfe}"
                             f"{', ' + self.grid_sampler if self.grid_sampler else ''})")
            else:
                value.append("  ·  per grid sample: x its NFE, once a grid is drawn", style="dim italic")
            rows.append(("GFLOPs", value))
        # Achieved training throughput, and its share of the card's peak.
        tflops = _finite(self.latest.get("tflops"))
        mfu = _finite(self.latest.get("mfu"))
        if tflops is None:
            value = _na("TFLOP/s not logged by this run's engine")
        elif not math.isfinite(tflops):
            value = _na(f"TFLOP/s measured {format_number(tflops)}")
        else:
            value = Text(f"{format_number(tflops)} TFLOP/s")
        value.append("  ·  ", style="dim")
        card = f" of the {self.gpu_name} peak" if self.gpu_name else " of the card's peak"
        if mfu is not None and math.isfinite(mfu):
            value.append(f"MFU {100 * mfu:.1f}%{card}")
        elif mfu is not None:
            value.append_text(_na(f"MFU measured {format_number(mfu)}"))
        elif device.startswith("cuda"):
            value.append_text(_na("MFU not logged by this run's engine"))
        else:
            value.append_text(_na(f"MFU only on a GPU (this run trains on {device or 'an unknown device'})"))
        rows.append(("training", value))
        if self.dynamic:
            rows.extend(self._budget_rows(backbone))
        rows.extend(self._anchor_rows(backbone))
        return rows

    def _budget_rows(self, backbone: dict[str, Any]) -> list[tuple[str, Text]]:
        rows: list[tuple[str, Text]] = []
        ratio = _finite(self.latest.get("flops_ratio"))
        target = _finite(self.latest.get("flops_target"))
        if target is None:
            target = _finite((self.config.get("recipe") or {}).get("flops_lambda"))
        warmup = int((backbone.get("arch") or {}).get("warmup_steps") or 0)
        step = int((self.run or {}).get("step") or 0)
        self.verdict = budget_verdict(ratio, target, step=step, warmup_steps=warmup)
        style = {"in": "bold green", "out": "bold red", "warmup": "yellow"}.get(self.verdict.state, "dim")
        # The verdict first (it names the ratio of the last log interval), then what that ratio costs.
        value = Text(self.verdict.text, style=style)
        gflops = _finite(self.latest.get("gflops_fwd"))
        if ratio is not None and gflops is not None and math.isfinite(gflops) and math.isfinite(ratio):
            value.append(f"  ·  ~ {format_number(gflops * ratio)} GFLOPs/forward at this ratio", style="dim")
        rows.append(("F_dyn/F_static", value))
        width = max(min(self.size.width - 50, 60), 8) if self.size.width else 24
        line = Text(spark_line(self.ratio, width, 0.0, 1.0), style="cyan")
        line.append(" 0..1  ", style="dim")
        if warmup:
            done = "done" if step >= warmup else f"at {step:,} of {warmup:,}"
            line.append(f"warm-up: steps 0-{warmup:,} keep L_complete ({done}; playbook 4.4, A.2)")
        else:
            line.append("warm-up: none for this tier (playbook A.2: only DiT-XL warms up)", style="dim")
        rows.append(("over training", line))
        return rows

    def _anchor_rows(self, backbone: dict[str, Any]) -> list[tuple[str, Text]]:
        anchor = backbone.get("anchor")
        if not anchor:
            return [("anchor", Text("not a paper anchor", style="dim"))]
        parts = []
        if anchor.get("params_m") is not None:
            parts.append(f"{anchor['params_m']:g} M params")
        if anchor.get("gmacs") is not None:
            parts.append(f"{anchor['gmacs']:g} GMACs")
        value = Text(f"{anchor.get('paper', '')}: {', '.join(parts) or 'no figures'}")
        if anchor.get("note"):
            value.append(f"  ({anchor['note']})", style="dim")
        rows = [("anchor", value)]
        model = _table8_model(backbone.get("name", ""))
        target = _finite((self.config.get("recipe") or {}).get("flops_lambda"))
        if model is not None:
            lam = target if self.dynamic and target is not None else 1.0
            row = next((r for r in P5_TABLE8[model] if abs(r[0] - lam) < 1e-9), None)
            name = f"{'DyDiT' if lam < 1 else 'DiT'}-{model}"
            if row is not None:
                rows.append(("P5 Table 8", Text(f"{name} at lambda {lam:g}: {row[1]:g} GFLOPs, FID {row[2]:g} "
                                                f"(ImageNet-256; playbook A.1a)")))
            else:
                grid = ", ".join(f"{r[0]:g}" for r in P5_TABLE8[model] if r[0] < 1)
                rows.append(("P5 Table 8", Text(f"no {name} row at lambda {lam:g} (the paper's grid: {grid})",
                                                style="dim")))
        return rows

    def render_panel(self, rows: list[tuple[str, Text]] | None = None) -> Table | Text:
        if self.run is None:
            return Text("waiting for the run ...", style="dim")
        table = Table.grid(padding=(0, 1))
        table.add_column(style="bold", no_wrap=True, min_width=LABEL_WIDTH)
        table.add_column(overflow="fold", ratio=1)           # wraps: nothing of a figure is cut off
        for label, value in rows if rows is not None else self.rows():
            table.add_row(label, value)
        return table


def _na(reason: str) -> Text:
    return Text(f"unavailable: {reason}", style="dim italic")
