"""GPU statistics through NVML (pynvml, from nvidia-ml-py).

Without an NVIDIA driver `nvmlInit` raises; the monitor then reports a calm "no NVIDIA GPU" status and samples
nothing. Units of a sample row (the `gpu` table): util in %, memory in MiB, temperature in degrees C, power in W.
"""

from __future__ import annotations

import time
from typing import Iterable

__all__ = ["GpuMonitor"]

GpuRow = tuple[float, int, float, float, float, float, float]   # (time, idx, util, mem_used, mem_total, temp, power)


class GpuMonitor:
    def __init__(self, indices: Iterable[int] = ()):
        self.indices = list(indices)
        self.handles: list[tuple[int, object]] = []
        self.status = "no NVIDIA GPU"
        if not self.indices:
            return
        try:
            import pynvml
            pynvml.nvmlInit()
            self._nvml = pynvml
            self.handles = [(i, pynvml.nvmlDeviceGetHandleByIndex(i)) for i in self.indices]
            names = [pynvml.nvmlDeviceGetName(h) for _, h in self.handles]
            self.status = ", ".join(n.decode() if isinstance(n, bytes) else str(n) for n in names)
        except Exception as e:                      # ImportError, NVMLError_LibraryNotFound, DriverNotLoaded, ...
            self.handles = []
            self.status = f"no NVIDIA GPU ({type(e).__name__})"

    @property
    def available(self) -> bool:
        return bool(self.handles)

    def sample(self) -> list[GpuRow]:
        """One row per watched GPU; a query that fails returns what it could (None for the missing fields)."""
        rows: list[GpuRow] = []
        now = time.time()
        nv = getattr(self, "_nvml", None)
        for idx, h in self.handles:
            util = mem_used = mem_total = temp = power = None
            try:
                util = float(nv.nvmlDeviceGetUtilizationRates(h).gpu)
                mem = nv.nvmlDeviceGetMemoryInfo(h)
                mem_used, mem_total = mem.used / 2**20, mem.total / 2**20
                temp = float(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU))
                power = nv.nvmlDeviceGetPowerUsage(h) / 1000.0
            except Exception:
                pass
            rows.append((now, idx, util, mem_used, mem_total, temp, power))
        return rows

    def close(self) -> None:
        if self.handles:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass
            self.handles = []
