"""Which device a run trains on: "auto" picks CUDA when present and the CPU otherwise; the run records which."""

from __future__ import annotations

import os

import torch

__all__ = ["DeviceError", "resolve_device", "describe_device", "set_cpu_threads"]


class DeviceError(RuntimeError):
    """The requested device does not exist here (one line)."""


def resolve_device(spec: str) -> torch.device:
    """"auto" | "cpu" | "cuda" | "cuda:K" -> torch.device; refuses CUDA where there is none."""
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceError(f"device '{spec}' requested but CUDA is not available here "
                              f"(torch {torch.__version__}); use --device cpu or auto")
        index = int(spec.split(":", 1)[1]) if ":" in spec else torch.cuda.current_device()
        if not 0 <= index < torch.cuda.device_count():
            raise DeviceError(f"device '{spec}' requested but only {torch.cuda.device_count()} CUDA device(s) exist")
        return torch.device("cuda", index)
    raise DeviceError(f"unknown device '{spec}' (expected auto, cpu, cuda or cuda:K)")


def describe_device(device: torch.device) -> str:
    """The words an event uses: "cpu (no CUDA)" / "cpu" / "cuda:0 (NVIDIA H100 80GB HBM3)"."""
    if device.type == "cuda":
        return f"cuda:{device.index} ({torch.cuda.get_device_name(device)})"
    return "cpu" if torch.cuda.is_available() else "cpu (no CUDA)"


def set_cpu_threads() -> int:
    """One intra-op thread per core this process may use (affinity aware), or `DIFFTUI_CPU_THREADS` when set;
    returns the count. (The worker also sets OMP_WAIT_POLICY=PASSIVE, see difftui.engine.__main__.)"""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:                          # not on Linux
        cores = os.cpu_count() or 1
    wanted = os.environ.get("DIFFTUI_CPU_THREADS", "").strip()
    torch.set_num_threads(max(1, int(wanted) if wanted.isdigit() else cores))
    return torch.get_num_threads()
