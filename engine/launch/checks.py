"""Launch checks: what must hold on this machine before a run row is created (issue 11 item 6), and the defaults
that fit the device (item 5). The CLI and the TUI both call these; neither creates a run when one fails.

The config model (difftui.engine.config.model) already refused what the config itself gets wrong, the rules of a new run
included (tier vs data set, recipe vs tier family) and stored every path absolute. What is left depends on the
machine: the device must exist and the data must be where the profile says. Warnings (max steps below the grid or
snapshot interval, a tier sized for another resolution) are shown, not refused.

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
from typing import Any, Callable

from difftui.engine.config.model import DEVICE_SPEC, DatasetProfile, RunConfig
from difftui.engine.config.schema import to_dict

__all__ = ["DeviceProbe", "probe_devices", "start_probe", "device_error", "describe_device", "resolved_device_kind",
           "LaunchReport", "launch_checks", "data_error", "default_max_steps", "CPU_DEFAULT_STEPS"]

PROBE_TIMEOUT_S = 120.0

# Item 5: a CPU run gets a demo length unless the user asks for more. bench/RESULTS.md: the default preset (digits,
# unet-demo, batch 128) runs 0.5-0.9 s/step on 2 cores, so 1,000 steps is 9-15 minutes, with grids at 500 and 1,000;
# by step 1,000 the grid shows legible digits. A GPU run gets the recipe's total_steps (playbook 4.0, A.2, A.4).
CPU_DEFAULT_STEPS = 1000


#----------------------------------------------------------------------------
# Devices.

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


def _probe_torch(torch: Any) -> DeviceProbe:
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
            _probe = (_probe_torch(torch) if torch is not None
                      else _probe_subprocess(timeout) or _probe_nvml())
        return _probe


def start_probe() -> None:
    """Run the device probe in a daemon thread now, so that a later `probe_devices()` finds it done (the TUI calls
    this when it starts: the review screen then shows the device at once)."""
    threading.Thread(target=probe_devices, name="difftui-device-probe", daemon=True).start()


def resolved_device_kind(spec: str, probe: DeviceProbe) -> str:
    """'cuda' or 'cpu': what `spec` ("auto" | "cpu" | "cuda" | "cuda:K") trains on here."""
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return "cuda" if probe.count else "cpu"
    return "cpu" if spec == "cpu" else "cuda"


def device_error(spec: str, probe: DeviceProbe) -> str | None:
    """Why `spec` cannot be used here (None when it can); the words of engine/run/device.py's DeviceError."""
    spec = (spec or "auto").strip().lower()
    if not DEVICE_SPEC.fullmatch(spec):
        return f"unknown device '{spec}' (expected auto, cpu, cuda or cuda:K)"
    if spec.startswith("cuda"):
        if not probe.count:
            version = f" (torch {probe.torch_version})" if probe.torch_version else ""
            return f"device '{spec}' requested but CUDA is not available here{version}; use --device cpu or auto"
        index = int(spec.split(":", 1)[1]) if ":" in spec else 0
        if not 0 <= index < probe.count:
            return f"device '{spec}' requested but only {probe.count} CUDA device(s) exist"
    return None


def describe_device(spec: str, probe: DeviceProbe) -> str:
    """The words the screens use: "cpu (no CUDA)" / "cpu" / "cuda:0 (NVIDIA H100 80GB HBM3)"."""
    spec = (spec or "auto").strip().lower()
    if resolved_device_kind(spec, probe) == "cuda":
        index = int(spec.split(":", 1)[1]) if ":" in spec else 0
        name = probe.cuda[index] if index < probe.count else "?"
        return f"cuda:{index} ({name})"
    return "cpu" if probe.count else "cpu (no CUDA)"


#----------------------------------------------------------------------------
# The data.

_DATA_CODE = ("import json, sys; from difftui.engine.config.model import DatasetProfile; "
              "from difftui.engine.config.model import from_mapping; from difftui.engine.data import check_available; "
              "p = from_mapping(DatasetProfile, json.load(sys.stdin), 'dataset')\n"
              "try:\n    check_available(p)\nexcept Exception as e:\n    print(' '.join(str(e).split()))")


def data_error(profile: DatasetProfile, *, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why the profile's files are not usable (None when they are), asked of engine/data's `check_available` in a
    short subprocess (engine/data imports torch)."""
    try:
        proc = subprocess.run([sys.executable, "-c", _DATA_CODE], input=json.dumps(to_dict(profile)),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"dataset '{profile.name}': checking its files took over {timeout:.0f} s"
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        return f"dataset '{profile.name}': cannot check its files ({tail})"
    return proc.stdout.strip() or None


#----------------------------------------------------------------------------
# The checks.

@dataclass(frozen=True)
class LaunchReport:
    errors: tuple[str, ...]                         # each refuses the launch (one line)
    warnings: tuple[str, ...]                       # shown, not refused (one line each)
    device: str                                     # what the run will train on, in words

    @property
    def ok(self) -> bool:
        return not self.errors


def launch_checks(config: RunConfig, *, probe: DeviceProbe | None = None,
                  check_data: Callable[[DatasetProfile], str | None] | None = data_error,
                  device_here: bool = True) -> LaunchReport:
    """Everything a new run must pass on this machine, before its run row exists.

    `check_data(profile) -> reason | None` checks the data files (default: engine/data in a subprocess; the CLI
    passes an in-process check; None skips it). `device_here=False`: the run trains elsewhere (on Slurm's nodes,
    whose own checks are engine/launch/slurm/checks.py), so this machine's devices are not asked."""
    errors = []
    if not device_here:
        problem = check_data(config.dataset) if check_data is not None else None
        return LaunchReport((problem,) if problem else (), tuple(config.warnings()), f"{config.device} on the nodes")
    probe = probe_devices() if probe is None else probe
    problem = device_error(config.device, probe)
    if problem is not None:
        errors.append(problem)
    if check_data is not None:
        problem = check_data(config.dataset)
        if problem:
            errors.append(problem)
    return LaunchReport(tuple(errors), tuple(config.warnings()), describe_device(config.device, probe))


def default_max_steps(config: RunConfig, probe: DeviceProbe | None = None) -> int:
    """The max steps a new run gets when the user did not choose: the recipe's on a GPU, a demo length on the CPU
    (never more than the recipe's)."""
    probe = probe_devices() if probe is None else probe
    if resolved_device_kind(config.device, probe) == "cuda":
        return config.recipe.total_steps
    return min(config.recipe.total_steps, CPU_DEFAULT_STEPS)
