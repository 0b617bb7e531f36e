"""GPU statistics per device: utilisation over time, memory, temperature and power (from the engine's gpu rows)."""

from __future__ import annotations

from collections import deque
from typing import Any

from rich.text import Text
from textual.widgets import Static

__all__ = ["GpuPanel", "spark"]

BARS = "▁▂▃▄▅▆▇█"
HISTORY = 240


def spark(values: list[float], width: int, top: float = 100.0) -> str:
    """The last `width` values as block characters scaled to [0, top]."""
    tail = values[-width:] if width > 0 else []
    out = []
    for v in tail:
        frac = 0.0 if v is None or top <= 0 else min(max(v / top, 0.0), 1.0)
        out.append(BARS[min(int(frac * len(BARS)), len(BARS) - 1)])
    return "".join(out)


def _gib(value: float, total: float) -> str:
    """Memory in GiB; NVML reports bytes, a total under 1 MiB-worth of GiB is taken as MiB."""
    scale = 2**30 if total > 2**24 else 2**10
    return f"{value / scale:.1f}"


class GpuPanel(Static):
    """One block per GPU; a calm line when the run trains on the CPU."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.device = ""
        self.latest: dict[int, dict[str, Any]] = {}
        self.util: dict[int, deque[float]] = {}
        self.mem: dict[int, deque[float]] = {}

    def on_mount(self) -> None:
        self.border_title = "GPU"
        self.update(self.render_panel())

    def set_device(self, device: str | None) -> None:
        device = device or ""
        if device != self.device:
            self.device = device
            self.update(self.render_panel())

    def add_rows(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            idx = int(row["idx"])
            self.latest[idx] = row
            self.util.setdefault(idx, deque(maxlen=HISTORY)).append(row["util"] or 0.0)
            mem = (row["mem_used"] or 0.0) / row["mem_total"] * 100 if row["mem_total"] else 0.0
            self.mem.setdefault(idx, deque(maxlen=HISTORY)).append(mem)
        if rows:
            self.update(self.render_panel())

    def on_resize(self) -> None:
        self.update(self.render_panel())

    def render_panel(self) -> Text:
        if not self.latest:
            if not self.device:
                return Text("waiting for the engine to pick a device", style="dim")
            if not self.device.startswith("cuda"):
                return Text(f"no NVIDIA GPU - running on {self.device}", style="dim")
            return Text(f"{self.device}: waiting for GPU statistics", style="dim")
        width = max(self.size.width - 50, 8)
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, idx in enumerate(sorted(self.latest)):
            row = self.latest[idx]
            if i:
                text.append("\n")
            util = row["util"] or 0.0
            text.append(f"GPU{idx} ", style="bold")
            text.append(f"util {util:3.0f}% ")
            text.append(spark(list(self.util[idx]), width), style="green")
            used, total = row["mem_used"], row["mem_total"]
            if total:
                text.append(f"  mem {_gib(used or 0.0, total)}/{_gib(total, total)} GiB")
            if row["temperature"] is not None:
                text.append(f"  {row['temperature']:.0f}°C")
            if row["power"] is not None:
                text.append(f"  {row['power']:.0f} W")
        return text
