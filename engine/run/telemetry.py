"""GPU statistics through NVML (pynvml, from the nvidia-ml-py package), for the GPUs a run actually uses.

Devices are named by UUID: CUDA index k of this process (after CUDA_VISIBLE_DEVICES) is looked up as its UUID, and
NVML is asked for that UUID, so a run on GPU 2 of 8 reports GPU 2 and not GPU 0. A row of the `gpu` table is
(time, nvml index, util %, memory used MiB, memory total MiB, temperature C, power W, name, uuid, error); a reading
that fails is NaN with its reason in `error` (never a zero). Without an NVIDIA driver `nvmlInit` raises; the
monitor then says "no NVIDIA GPU (...)" and samples nothing.
"""

from __future__ import annotations

import math
import time
from typing import Any, Iterable

__all__ = ["GpuMonitor", "cuda_uuids", "GpuRow"]

GpuRow = tuple[float, int, float, float, float, float, float, str, str, str | None]


def cuda_uuids(indices: Iterable[int]) -> list[str]:
    """NVML UUIDs ("GPU-...") of these CUDA device indices as this process sees them (after CUDA_VISIBLE_DEVICES)."""
    import torch
    if not torch.cuda.is_available():
        return []
    out = []
    for i in indices:
        uuid = str(torch.cuda.get_device_properties(i).uuid)
        out.append(uuid if uuid.startswith(("GPU-", "MIG-")) else f"GPU-{uuid}")
    return out


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _reason(e: BaseException) -> str:
    return type(e).__name__ if not str(e) else f"{type(e).__name__}: {e}"


class GpuMonitor:
    def __init__(self, uuids: Iterable[str] = ()):
        self.uuids = list(uuids)
        self.handles: list[tuple[int, str, str, Any]] = []          # (nvml index, name, uuid, handle)
        self.status = "no NVIDIA GPU"
        self._nvml: Any = None
        if not self.uuids:
            return
        try:
            import pynvml
            pynvml.nvmlInit()
            self._nvml = pynvml
        except Exception as e:                      # ImportError, NVMLError_LibraryNotFound, DriverNotLoaded, ...
            self.status = f"no NVIDIA GPU ({_reason(e)})"
            return
        missing = []
        for uuid in self.uuids:
            try:
                try:
                    handle = pynvml.nvmlDeviceGetHandleByUUID(uuid)
                except TypeError:
                    handle = pynvml.nvmlDeviceGetHandleByUUID(uuid.encode())
                index = int(pynvml.nvmlDeviceGetIndex(handle))
                name = _text(pynvml.nvmlDeviceGetName(handle))
                self.handles.append((index, name, uuid, handle))
            except Exception as e:
                missing.append(f"{uuid}: {_reason(e)}")
        self.status = ", ".join(f"GPU {i} {n}" for i, n, _, _ in self.handles) or "NVML found none of the run's GPUs"
        if missing:
            self.status += " (not found: " + "; ".join(missing) + ")"

    @property
    def available(self) -> bool:
        return bool(self.handles)

    def sample(self) -> list[GpuRow]:
        """One row per watched GPU; each reading that fails is NaN, and its reason goes to the row's error."""
        nv = self._nvml
        rows: list[GpuRow] = []
        now = time.time()
        for index, name, uuid, h in self.handles:
            errors: list[str] = []

            def read(label: str, fn, errors: list[str] = errors) -> float:
                try:
                    return float(fn())
                except Exception as e:
                    errors.append(f"{label}: {_reason(e)}")
                    return math.nan

            util = read("util", lambda h=h: nv.nvmlDeviceGetUtilizationRates(h).gpu)
            mem = None
            try:
                mem = nv.nvmlDeviceGetMemoryInfo(h)
            except Exception as e:
                errors.append(f"memory: {_reason(e)}")
            mem_used = mem.used / 2**20 if mem is not None else math.nan
            mem_total = mem.total / 2**20 if mem is not None else math.nan
            temp = read("temperature", lambda h=h: nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU))
            power = read("power", lambda h=h: nv.nvmlDeviceGetPowerUsage(h) / 1000.0)
            rows.append((now, index, util, mem_used, mem_total, temp, power, name, uuid, "; ".join(errors) or None))
        return rows

    def close(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass
            self._nvml = None
            self.handles = []
