"""A sweep's slots: the chosen devices times the runs per device (DESIGN.md: the scheduler hands out local slots).

On CUDA each member sees only its slot's GPU (`CUDA_VISIBLE_DEVICES` through `LaunchPlan.gpus`; inside the engine it
is cuda:0). On the CPU the cores are split between the members that run at once (`DIFFTUI_CPU_THREADS` through
`LaunchPlan.env`), so two members never fight over the same threads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from difftui.engine.launch.devices import DeviceProbe, device_error, probe_devices
from difftui.engine.launch.plan import LaunchPlan
from difftui.engine.sweeps.errors import SweepError

__all__ = ["Slots", "cpu_cores"]


def cpu_cores() -> int:
    """The cores this process may use (affinity aware)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                          # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Slots:
    devices: tuple[str, ...]                        # ("cpu",) or GPU indices ("0", "1")
    runs_per_device: int = 1
    threads: int | None = None                      # CPU threads per member, as recorded with the sweep

    def __post_init__(self) -> None:
        if self.runs_per_device < 1:
            raise SweepError(f"runs per device: expected >= 1, got {self.runs_per_device}")
        if not self.devices:
            raise SweepError("a sweep needs at least one device")

    @property
    def count(self) -> int:
        return len(self.devices) * self.runs_per_device

    @property
    def on_cpu(self) -> bool:
        return self.devices == ("cpu",)

    @property
    def on_slurm(self) -> bool:
        """Members are one Slurm job array, `runs_per_device` at once (Slurm's throttle, engine/sweeps/slurm.py)."""
        return self.devices == ("slurm",)

    @property
    def member_device(self) -> str:
        """The device every member's config names: "cpu", or "cuda" (its slot's GPU is the only one it sees)."""
        return "cpu" if self.on_cpu else "cuda"

    def device_of(self, slot: int) -> str:
        return self.devices[slot % len(self.devices)]

    def cpu_threads(self) -> int:
        """Threads per member on the CPU: the sweep's recorded split, else the cores split between the members at
        once, never more than DIFFTUI_CPU_THREADS when it is set."""
        if self.threads:
            return self.threads
        share = max(1, cpu_cores() // self.count)
        cap = os.environ.get("DIFFTUI_CPU_THREADS", "").strip()
        return max(1, min(share, int(cap))) if cap.isdigit() else share

    def plan(self, slot: int, cpu_threads: int | None = None) -> LaunchPlan:
        if self.on_cpu:
            return LaunchPlan(env={"DIFFTUI_CPU_THREADS": str(cpu_threads or self.cpu_threads())})
        return LaunchPlan(gpus=(int(self.device_of(slot)),))

    def describe(self) -> str:
        if self.on_slurm:
            return f"{self.runs_per_device} at once (a Slurm job array, --array=...%{self.runs_per_device})"
        where = "the CPU" if self.on_cpu else f"GPU{'s' if len(self.devices) > 1 else ''} {','.join(self.devices)}"
        text = f"{self.count} at once ({self.runs_per_device} per device on {where})"
        if self.on_cpu:
            text += f", {self.cpu_threads()} thread{'s' if self.cpu_threads() > 1 else ''} each"
        return text

    def short(self) -> str:
        """"cpu x2", "GPU 0,1 x1", "slurm x2": the devices and the runs per device."""
        where = "cpu" if self.on_cpu else ("slurm" if self.on_slurm else f"GPU {','.join(self.devices)}")
        return f"{where} x{self.runs_per_device}"

    def to_list(self) -> list[str]:
        return list(self.devices)

    @classmethod
    def choose(cls, *, device: str = "auto", gpus: tuple[int, ...] | None = None, runs_per_device: int = 1,
               gpu_count: int | None = None) -> "Slots":
        """The slots for a base device ("auto", "cpu", "cuda", "cuda:K") and the user's GPUs (None: every visible
        GPU, or the CPU where there is none). Raises SweepError (one line) for GPUs that do not exist; the device
        itself is judged by the device rule (engine/launch/devices.py: the launch checks' and the engine's words).
        `gpu_count` stands in for the machine's probe (tests)."""
        device = (device or "auto").strip().lower()
        if device == "cpu":
            if gpus:
                raise SweepError(f"--gpus {','.join(map(str, gpus))} with --device cpu: choose one")
            return cls(("cpu",), runs_per_device)
        probe = probe_devices() if gpu_count is None else DeviceProbe(("",) * gpu_count, "", "given")
        count = probe.count
        if gpus:
            if len(set(gpus)) != len(gpus):
                raise SweepError(f"--gpus: a GPU is named twice ({','.join(map(str, gpus))})")
            bad = [g for g in gpus if not 0 <= g < count]
            if bad:
                raise SweepError(f"--gpus: GPU {bad[0]} does not exist here ({count} CUDA device(s) visible)")
            return cls(tuple(str(g) for g in gpus), runs_per_device)
        problem = device_error(device, probe)
        if problem is not None:
            raise SweepError(problem)
        if device.startswith("cuda:"):
            return cls((str(int(device.split(":", 1)[1])),), runs_per_device)
        if count == 0:
            return cls(("cpu",), runs_per_device)
        return cls(tuple(str(i) for i in range(count)), runs_per_device)
