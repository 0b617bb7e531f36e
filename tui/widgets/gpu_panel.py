"""GPU statistics per device over the last minutes, as nvitop draws them: utilisation, memory, temperature and power
as sparklines beside their current value, one block per GPU the run uses (from the engine's `gpu` rows).

A reading the engine could not take is stored as NaN (with the reason in the row's `error`): it is a gap in the
sparkline and "unavailable: <reason>" in text, never a 0. Without an NVIDIA GPU the panel says so calmly.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from difftui.tui.metric_series import as_value

__all__ = ["GpuPanel", "spark", "squeeze", "HISTORY"]

BARS = "▁▂▃▄▅▆▇█"
HISTORY = 300                          # rows kept per GPU: 10 minutes at the engine's 2 s (engine/run/loop.py)
METRICS = ("util", "mem", "temperature", "power")


def spark(values: list[float | None], width: int, top: float = 100.0, bottom: float = 0.0) -> str:
    """The last `width` values as block characters scaled to [bottom, top]; a missing reading is a space."""
    tail = list(values)[-width:] if width > 0 else []
    out = []
    for v in tail:
        if v is None or not math.isfinite(v):
            out.append(" ")
            continue
        frac = 0.0 if top <= bottom else min(max((v - bottom) / (top - bottom), 0.0), 1.0)
        out.append(BARS[min(int(frac * len(BARS)), len(BARS) - 1)])
    return "".join(out)


def squeeze(values: list[float], width: int) -> list[float]:
    """The whole window in `width` columns: consecutive readings averaged (NaN where none of them is finite), the
    newest reading always in the last column."""
    n = len(values)
    if n <= width or width <= 0:
        return list(values)
    out = []
    for i in range(width):
        lo, hi = n - (width - i) * n // width, n - (width - i - 1) * n // width
        chunk = [v for v in values[lo:hi] if v is not None and math.isfinite(v)]
        out.append(sum(chunk) / len(chunk) if chunk else math.nan)
    return out


def _gib(mib: float) -> str:
    """The engine stores memory in MiB (engine/run/telemetry.py)."""
    return f"{mib / 1024:.1f}"


class GpuPanel(VerticalScroll):
    """One block per GPU (name, then util / memory / temperature / power over time); a calm line on the CPU."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.device = ""
        self.live = False                          # the run is active: say so when readings stop coming
        self.latest: dict[int, dict[str, Any]] = {}
        self.history: dict[int, dict[str, deque]] = {}
        self.times: dict[int, deque] = {}
        self._shown: tuple | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="gpu-text")

    def on_mount(self) -> None:
        self.border_title = "GPU"
        self._draw()

    def set_device(self, device: str | None, live: bool = False) -> None:
        device = device or ""
        if device != self.device or live != self.live:
            self.device, self.live = device, live
            self._draw()

    def reset(self) -> None:
        self.latest.clear()
        self.history.clear()
        self.times.clear()
        self._draw()

    def add_rows(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            idx = int(row["idx"])
            self.latest[idx] = row
            hist = self.history.setdefault(idx, {m: deque(maxlen=HISTORY) for m in METRICS})
            used, total = as_value(row.get("mem_used")), as_value(row.get("mem_total"))
            hist["util"].append(as_value(row.get("util")))
            hist["mem"].append(100 * used / total if math.isfinite(used) and math.isfinite(total) and total > 0
                               else math.nan)
            hist["temperature"].append(as_value(row.get("temperature")))
            hist["power"].append(as_value(row.get("power")))
            self.times.setdefault(idx, deque(maxlen=HISTORY)).append(float(row["time"]))
        if rows:
            self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        if self.is_mounted:
            text = self.render_panel()
            key = (text.plain, tuple(text.spans))
            if key != self._shown:
                # The sparklines move every sample; the panel's height (its line count) rarely changes, and only
                # then does it need a layout pass (which would redraw the whole screen).
                layout = self._shown is None or self._shown[0].count("\n") != text.plain.count("\n")
                self._shown = key
                self.query_one("#gpu-text", Static).update(text, layout=layout)

    # -- text -----------------------------------------------------------------------------------------------------

    def render_panel(self) -> Text:
        if not self.latest:
            if not self.device:
                return Text("waiting for the engine to pick a device", style="dim")
            if not self.device.startswith("cuda"):
                return Text(f"no NVIDIA GPU - running on {self.device}", style="dim")
            return Text(f"{self.device}: waiting for GPU statistics", style="dim")
        width = max(min((self.size.width or 60) - 30, HISTORY), 8)
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, idx in enumerate(sorted(self.latest)):
            if i:
                text.append("\n")
            self._gpu_block(text, idx, width)
        return text

    def _gpu_block(self, text: Text, idx: int, width: int) -> None:
        row = self.latest[idx]
        hist = self.history[idx]
        times = self.times[idx]
        span = (times[-1] - times[0]) / 60 if len(times) > 1 else 0.0
        text.append(f"GPU{idx} ", style="bold")
        text.append(str(row.get("name") or ""), style="bold")
        if row.get("uuid"):
            text.append(f"  {str(row['uuid'])[:12]}", style="dim")
        if span:
            self.border_subtitle = f"last {span:.1f} min"
        error = row.get("error")
        age = time.time() - float(row["time"])
        if self.live and age > 30:
            text.append(f"  (last reading {age:.0f} s ago)", style="yellow")
        used, total = as_value(row.get("mem_used")), as_value(row.get("mem_total"))
        temps = [v for v in hist["temperature"] if math.isfinite(v)]
        powers = [v for v in hist["power"] if math.isfinite(v)]
        lines = (
            ("util", as_value(row.get("util")), lambda v: f"{v:3.0f} %", hist["util"], 100.0, 0.0, "green"),
            ("mem", used if math.isfinite(total) else math.nan,
             lambda v: f"{_gib(v)}/{_gib(total)} GiB", hist["mem"], 100.0, 0.0, "cyan"),
            ("temp", as_value(row.get("temperature")), lambda v: f"{v:3.0f} °C", hist["temperature"],
             max(temps + [90.0]), min(temps + [30.0]), "yellow"),
            ("power", as_value(row.get("power")), lambda v: f"{v:4.0f} W", hist["power"],
             max(powers + [1.0]), 0.0, "magenta"),
        )
        for label, value, fmt, values, top, bottom, color in lines:
            # label, the sparkline (fixed width, so they line up), then the value or why there is none
            text.append(f"\n  {label:<5} ")
            text.append(spark(squeeze(list(values), width), width, top, bottom).ljust(width), style=color)
            if math.isfinite(value):
                text.append(f" {fmt(value)}")
            else:
                reason = str(error) if error else "no reading"
                text.append(f" unavailable: {reason}", style="yellow")
