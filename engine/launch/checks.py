"""Launch checks: what must hold on this machine before a run row is created (issue 11 item 6), and the defaults
that fit the device (item 5). The CLI and the TUI both call these; neither creates a run when one fails.

The config model (difftui.engine.config.model) already refused what the config itself gets wrong, the rules of a new run
included (tier vs data set, recipe vs tier family) and stored every path absolute. What is left depends on the
machine: the device must exist and the data must be where the profile says. Warnings (max steps below the grid or
snapshot interval, a tier sized for another resolution) are shown, not refused.

The device rule and its probe live in engine/launch/devices.py (the engine asks the same rule); the data check runs
in a short subprocess (engine/data imports torch). Torch-free.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable

from difftui.engine.config.model import DatasetProfile, RunConfig
from difftui.engine.config.schema import to_dict
from difftui.engine.launch.devices import (
    PROBE_TIMEOUT_S,
    DeviceProbe,
    describe_device,
    device_error,
    probe_devices,
    resolved_device_kind,
)

__all__ = ["LaunchReport", "launch_checks", "data_error", "default_max_steps", "CPU_DEFAULT_STEPS"]

# Item 5: a CPU run gets a demo length unless the user asks for more. bench/RESULTS.md: the default preset (digits,
# unet-demo, batch 128) runs 0.5-0.9 s/step on 2 cores, so 1,000 steps is 9-15 minutes, with grids at 500 and 1,000;
# by step 1,000 the grid shows legible digits. A GPU run gets the recipe's total_steps (playbook 4.0, A.2, A.4).
CPU_DEFAULT_STEPS = 1000


#----------------------------------------------------------------------------
# The data.

_DATA_CODE = ("import json, sys; from difftui.engine.config.model import DatasetProfile; "
              "from difftui.engine.config.model import from_mapping; from difftui.engine.data import check_available; "
              "p = from_mapping(DatasetProfile, json.load(sys.stdin), 'dataset')\n"
              "from difftui.engine.text import one_line\n"
              "try:\n    check_available(p)\nexcept Exception as e:\n    print(one_line(e))")


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
