"""The dashboard's header line: run, status (with its Slurm job's state on a cluster), step, img/s, ETA, device, the
last raw loss and the FLOPs verdict."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual.widgets import Static

from difftui.engine.launch.slurm.jobs import describe_job
from difftui.engine.numbers import format_duration, format_number
from difftui.tui.advice import in_tui_words
from difftui.tui.widgets.flops_panel import budget_verdict

__all__ = ["StatusLine", "STATUS_STYLES", "eta_seconds"]

STATUS_STYLES = {
    "queued": "yellow", "running": "bold green", "stopping": "yellow", "completed": "bold blue",
    "stopped": "cyan", "failed": "bold red", "crashed": "bold red",
    "partial": "bold yellow",                       # a sweep whose members did not all complete (issue 16 item 7)
}


def eta_seconds(step: int, total: int | None, img_per_s: float | None, batch_size: int | None) -> float | None:
    """Time left at the current throughput: (total - step) steps of `batch_size` images at `img_per_s`."""
    if not total or not img_per_s or not batch_size or img_per_s <= 0:
        return None
    return max(total - step, 0) * batch_size / img_per_s


class StatusLine(Static):
    """One line, updated from each poll. The values are kept as attributes for tests and other widgets."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.run: dict[str, Any] | None = None
        self.status = ""
        self.step = 0
        self.total_steps: int | None = None
        self.img_per_s: float | None = None
        self.loss: tuple[str, float] | None = None
        self.batch_size: int | None = None
        self.flops: tuple[float, float | None] | None = None      # DyDiT: (F_dynamic/F_static, target lambda)
        self.findings = (0, 0, 0)                   # the doctor's findings: (all, warnings, new since opened)
        self._shown: tuple | None = None

    def update_run(self, run: dict[str, Any] | None, latest: dict[str, float]) -> None:
        if run is None:
            self.update(Text("run not found (deleted?)", style="bold red"))
            return
        if self.batch_size is None or (self.run and self.run.get("config") != run.get("config")):
            try:
                self.batch_size = int(json.loads(run["config"])["recipe"]["batch_size"])
            except (KeyError, TypeError, ValueError):
                self.batch_size = None
        self.run = run
        self.status = run["status"]
        self.step = int(run["step"] or 0)
        self.total_steps = run["total_steps"]
        if "img_per_s" in latest:
            self.img_per_s = latest["img_per_s"]
        if "flops_ratio" in latest:
            self.flops = (latest["flops_ratio"], latest.get("flops_target"))
        for name in ("L_simple", "L_edm", "L_hybrid"):
            if name in latest:
                self.loss = (name, latest[name])
                break
        self._draw()

    def set_findings(self, count: int, warnings: int, new: int) -> None:
        """The findings badge (issue 18): how many, how many warnings, how many appeared while the dashboard was
        open and have not been looked at yet."""
        if (count, warnings, new) != self.findings:
            self.findings = (count, warnings, new)
            if self.run is not None:
                self._draw()

    def _draw(self) -> None:
        line = self.compose_line()
        key = (line.plain, tuple(line.spans))
        if key != self._shown:                      # one line, always: no layout pass, and none when unchanged
            self._shown = key
            self.update(line, layout=False)

    def _warmup_steps(self) -> int:
        try:
            return int(json.loads(self.run["config"])["backbone"]["arch"].get("warmup_steps") or 0)
        except (KeyError, TypeError, ValueError, AttributeError):
            return 0

    def compose_line(self) -> Text:
        run = self.run
        assert run is not None
        text = Text()                               # one line or two: the dashboard's CSS decides (compact)
        text.append(f"run {run['id']} ", style="bold")
        text.append(f"{run['name']}  ")
        text.append(f"● {self.status}", style=STATUS_STYLES.get(self.status, ""))
        active = self.status in ("queued", "running", "stopping")
        job = describe_job(run, prefix="Slurm job ") if active else None
        if job:                                     # PENDING with Slurm's reason, RUNNING on which nodes
            text.append(f"  {job}", style="yellow" if run.get("slurm_state") != "RUNNING" else "")
        count, warnings, new = self.findings
        if count:                                   # the badge: ctrl+f opens the findings
            word = f"{count} finding{'s' if count > 1 else ''}" + (f", {new} NEW" if new else "")
            text.append(f"  ⚑ {word} (ctrl+f)", style="reverse bold yellow" if new else
                        ("bold yellow" if warnings else "cyan"))
        total = self.total_steps
        pct = f" ({100 * self.step / total:.0f}%)" if total else ""
        text.append(f"  step {self.step}/{total or '?'}{pct}")
        if self.img_per_s is not None:
            text.append(f"  {format_number(self.img_per_s)} img/s")
        if active:
            text.append(f"  ETA {format_duration(eta_seconds(self.step, total, self.img_per_s, self.batch_size))}")
        if self.loss is not None:
            # The raw value of the last log interval (the charts say what their smoothed header shows).
            bad = self.loss[1] is None or self.loss[1] != self.loss[1] or abs(self.loss[1]) == float("inf")
            text.append(f"  {self.loss[0]} last {format_number(self.loss[1])}", style="bold red" if bad else "")
        if self.flops is not None:
            ratio, target = self.flops
            warmup = self._warmup_steps()
            verdict = budget_verdict(ratio, target, step=self.step, warmup_steps=warmup)
            text.append(f"  F_dyn/F_static {format_number(ratio, 3)}")
            if verdict.state in ("in", "out"):
                word = "in budget" if verdict.state == "in" else f"OUT of budget ({verdict.delta:+.3f})"
                text.append(f" (lambda {target:g}, {word})", style="green" if verdict.state == "in" else "bold red")
            elif verdict.state == "warmup":
                text.append(f" (lambda {target:g}, warm-up)", style="yellow")
        if run.get("device"):
            text.append(f"  {run['device']}", style="dim")
        if run.get("off_tier"):
            text.append("  OFF-TIER", style="bold yellow")
        if self.status in ("failed", "crashed") and run.get("error"):
            text.append(f"  {in_tui_words(run['error'])}", style="red")
        return text
