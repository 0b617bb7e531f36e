"""The device rule: which device a run's spec ("auto" | "cpu" | "cuda" | "cuda:K") means on this machine, why it
cannot be used here, and the words for it. One home (issue 15): the launch checks, the review screen and the CLI
ask it with the probe below before a run exists, and the engine (engine/run/device.py) asks it with a probe built
from torch when it starts, so a refusal reads the same wherever it is met.

Torch-free: the CUDA devices are probed once per process, in a short subprocess that imports torch (or from torch
itself when this process has already loaded it, as the CLI may; NVML only when torch cannot be asked), and the
answer is cached for the life of the process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import Any

from difftui.engine.config.model import device_spec_error

__all__ = ["DeviceProbe", "probe_devices", "probe_from_torch", "start_probe", "device_error", "device_index",
           "describe_device", "resolved_device_kind", "PROBE_TIMEOUT_S"]

PROBE_TIMEOUT_S = 120.0


#----------------------------------------------------------------------------
# The probe.

@dataclass(frozen=True)
class DeviceProbe:
    """The CUDA devices torch can use here (names, in index order), torch's version, and how we know."""
    cuda: tuple[str, ...]
    torch_version: str
    source: str                                     # "torch" | "subprocess" | "nvml" | "none"

    @property
    def count(self) -> int:
        return len(self.cuda)


_PROBE_CODE = ("import json, torch; n = torch.cuda.device_count() if torch.cuda.is_available() else 0; "
               "print(json.dumps({'cuda': [torch.cuda.get_device_name(i) for i in range(n)], "
               "'torch': torch.__version__}))")
_probe: DeviceProbe | None = None
_probe_lock = threading.Lock()


def probe_from_torch(torch: Any) -> DeviceProbe:
    """The probe of an imported torch module (the engine's, or this process's when it has loaded torch)."""
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return DeviceProbe(tuple(torch.cuda.get_device_name(i) for i in range(n)), torch.__version__, "torch")


def _probe_subprocess(timeout: float) -> DeviceProbe | None:
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE_CODE], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        data = json.loads(proc.stdout.strip().splitlines()[-1])
        return DeviceProbe(tuple(data["cuda"]), str(data["torch"]), "subprocess")
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError, KeyError):
        return None


def _probe_nvml() -> DeviceProbe:
    try:
        import pynvml
        pynvml.nvmlInit()
        try:
            names = tuple(str(pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i)))
                          for i in range(pynvml.nvmlDeviceGetCount()))
        finally:
            pynvml.nvmlShutdown()
        return DeviceProbe(names, "", "nvml")
    except Exception:                               # no driver, no library: no NVIDIA GPU that we can see
        return DeviceProbe((), "", "none")


def probe_devices(*, timeout: float = PROBE_TIMEOUT_S, refresh: bool = False) -> DeviceProbe:
    """The CUDA devices of this machine, asked once per process (thread-safe; blocks while a probe runs)."""
    global _probe
    with _probe_lock:
        if _probe is None or refresh:
            torch = sys.modules.get("torch")
            _probe = (probe_from_torch(torch) if torch is not None
                      else _probe_subprocess(timeout) or _probe_nvml())
        return _probe


def start_probe() -> None:
    """Run the device probe in a daemon thread now, so that a later `probe_devices()` finds it done (the TUI calls
    this when it starts: the review screen then shows the device at once)."""
    threading.Thread(target=probe_devices, name="difftui-device-probe", daemon=True).start()


#----------------------------------------------------------------------------
# The rule.

def _spec(spec: str | None) -> str:
    return (spec or "auto").strip().lower()


def resolved_device_kind(spec: str, probe: DeviceProbe) -> str:
    """'cuda' or 'cpu': what `spec` trains on here ("auto" takes CUDA when there is any)."""
    spec = _spec(spec)
    if spec == "auto":
        return "cuda" if probe.count else "cpu"
    return "cpu" if spec == "cpu" else "cuda"


def device_error(spec: str, probe: DeviceProbe, *, local_size: int = 1) -> str | None:
    """Why `spec` cannot be used here by `local_size` processes of this node (None when it can).

    Several processes per node (torchrun) take one GPU each, cuda:0..K-1 of the visible ones: the GPUs are chosen
    with --gpus (CUDA_VISIBLE_DEVICES), not with cuda:K."""
    problem = device_spec_error(spec)
    if problem is not None:
        return problem
    spec = _spec(spec)
    if spec.startswith("cuda") and not probe.count:
        version = f" (torch {probe.torch_version})" if probe.torch_version else ""
        return f"device '{spec}' requested but CUDA is not available here{version}; use --device cpu or auto"
    if resolved_device_kind(spec, probe) == "cpu":
        return None
    if local_size > 1:
        if ":" in spec:
            return (f"device '{spec}' with {local_size} processes per node: choose the GPUs with --gpus (each "
                    f"process takes one of them)")
        if local_size > probe.count:
            return f"{local_size} processes per node but only {probe.count} CUDA device(s) are visible"
        return None
    index = int(spec.split(":", 1)[1]) if ":" in spec else 0
    if not 0 <= index < probe.count:
        return f"device '{spec}' requested but only {probe.count} CUDA device(s) exist"
    return None


def device_index(spec: str, probe: DeviceProbe, *, local_rank: int = 0, local_size: int = 1) -> int | None:
    """The CUDA index `spec` trains on here (None: the CPU): cuda:K's K, 0 for "cuda" and "auto", the node-local
    rank when several processes share the node. Ask `device_error` first."""
    spec = _spec(spec)
    if resolved_device_kind(spec, probe) == "cpu":
        return None
    if local_size > 1:
        return local_rank
    return int(spec.split(":", 1)[1]) if ":" in spec else 0


def describe_device(spec: str, probe: DeviceProbe, *, local_rank: int = 0, local_size: int = 1) -> str:
    """The words the screens, the CLI and the run's events use: "cpu (no CUDA)" / "cpu" / "cuda:0 (NVIDIA H100
    80GB HBM3)"."""
    index = device_index(spec, probe, local_rank=local_rank, local_size=local_size)
    if index is None:
        return "cpu" if probe.count else "cpu (no CUDA)"
    name = probe.cuda[index] if index < probe.count else "?"
    return f"cuda:{index} ({name})"
