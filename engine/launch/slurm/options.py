"""What a Slurm job of difftui asks for: `SlurmOptions`, typed and validated once (engine/config/schema.py's rules),
and the sbatch options they become, each one argv element (`--key=value`), never text for a shell.

    partition, time, nodes, gpus_per_node, tasks_per_node, cpus_per_task, mem, account, qos, constraint
    sbatch          the pass-through `--sbatch KEY=VALUE`: a known, harmless sbatch option (SBATCH_PASSTHROUGH) with a
                    printable value; the options difftui sets itself (array, signal, requeue, output ...) are refused
    signal_s        the warning before the time limit (`--signal=USR1@signal_s`): the engine checkpoints and the job
                    requeues itself (engine/launch/slurm/task.py)
    max_retries     how often the job's wrapper requeues an engine that crashed
    shared_fs       true: the nodes see the runs folder whatever its filesystem type says (checks.py)

Every name and number is checked against Slurm's own syntax here, so a bad value is one line naming the option before
anything is created, and nothing a user typed can ever reach a shell.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import model_validator

from difftui.engine.config.schema import config_model, rule, to_dict, validate

__all__ = ["SlurmOptions", "parse_time", "format_time", "parse_sbatch_pairs", "SBATCH_PASSTHROUGH", "SBATCH_OWN",
           "options_from_mapping", "merge_options", "DEFAULT_SIGNAL_S", "DEFAULT_MAX_RETRIES"]

DEFAULT_SIGNAL_S = 120                              # --signal=USR1@120: two minutes to checkpoint before the end
DEFAULT_MAX_RETRIES = 3

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")                 # partition, account, qos
_CONSTRAINT = re.compile(r"[A-Za-z0-9_.\-&|,\[\]*:()!]+")           # features joined by & | , [ ] *N
_MEM = re.compile(r"\d+[KMGT]?", re.IGNORECASE)
_KEY = re.compile(r"[a-z][a-z-]*")
# Slurm's time formats: minutes, minutes:seconds, hours:minutes:seconds, days-hours, days-hours:minutes,
# days-hours:minutes:seconds.
_TIME = re.compile(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?")
_PRINTABLE = re.compile(r"[\x20-\x7e]+")

# sbatch options difftui sets itself, from the typed fields or for the job's mechanics: refused as a pass-through.
SBATCH_OWN = frozenset({
    "partition", "time", "nodes", "gpus-per-node", "ntasks", "ntasks-per-node", "cpus-per-task", "mem", "account",
    "qos", "constraint", "array", "signal", "requeue", "no-requeue", "output", "error", "input", "parsable", "wrap",
    "chdir", "export", "export-file", "open-mode", "job-name", "get-user-env", "uid", "gid", "container",
})
# The pass-through: sbatch options that only shape where and when the job runs (no files, no programs, no users).
SBATCH_PASSTHROUGH = frozenset({
    "begin", "clusters", "comment", "contiguous", "core-spec", "cores-per-socket", "deadline", "dependency",
    "distribution", "exclude", "exclusive", "gpu-bind", "gpu-freq", "gpus", "gpus-per-socket", "gpus-per-task",
    "gres", "gres-flags", "hint", "hold", "licenses", "mail-type", "mail-user", "mcs-label", "mem-bind",
    "mem-per-cpu", "mem-per-gpu", "mincpus", "network", "nice", "nodelist", "overcommit", "oversubscribe",
    "power", "priority", "profile", "reservation", "sockets-per-node", "spread-job", "switches", "thread-spec",
    "threads-per-core", "time-min", "tmp", "use-min-nodes", "wckey", "cpus-per-gpu", "cpu-freq", "delay-boot",
    "extra-node-info",
})


def parse_time(text: str) -> int:
    """A Slurm time limit in seconds: "90" (minutes), "90:30", "2:00:00", "1-0", "1-12:00", "1-12:00:00".
    ValueError for anything else (also "infinite": difftui asks for a limit it can plan checkpoints against)."""
    m = _TIME.fullmatch(text.strip())
    if not m:
        raise ValueError(f"expected minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS, got {text!r}")
    days, a, b, c = m.groups()
    if days is not None:                            # D-HH[:MM[:SS]]
        seconds = int(days) * 86400 + int(a) * 3600 + int(b or 0) * 60 + int(c or 0)
    elif c is not None:                             # HH:MM:SS
        seconds = int(a) * 3600 + int(b) * 60 + int(c)
    elif b is not None:                             # MM:SS
        seconds = int(a) * 60 + int(b)
    else:                                           # minutes
        seconds = int(a) * 60
    if seconds <= 0:
        raise ValueError(f"expected a time limit above zero, got {text!r}")
    return seconds


def format_time(seconds: float) -> str:
    """Seconds as Slurm writes a time (D-HH:MM:SS, or HH:MM:SS under a day)."""
    s = int(round(seconds))
    days, s = divmod(s, 86400)
    text = f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{days}-{text}" if days else text


def _sbatch_fault(key: str, value: str) -> str | None:
    """Why `--sbatch key=value` is refused (one phrase), or None."""
    if not _KEY.fullmatch(key):
        return f"expected an sbatch long option name (lower-case letters and '-'), got {key!r}"
    if key in SBATCH_OWN:
        return (f"--{key} is set by difftui" + (f" (use --{key} or the profile's {key.replace('-', '_')})"
                                                 if key in SlurmOptions.FIELD_OPTIONS.values() else ""))
    if key not in SBATCH_PASSTHROUGH:
        return f"--{key} is not an sbatch option difftui passes through (known: {', '.join(sorted(SBATCH_PASSTHROUGH))})"
    if value and not _PRINTABLE.fullmatch(value):
        return f"the value of --{key} has a control character or a non-ASCII character"
    return None


def parse_sbatch_pairs(pairs: list[str] | tuple[str, ...], *, option: str = "--sbatch") -> dict[str, str]:
    """`--sbatch KEY=VALUE` (repeatable; `--sbatch hold` for a flag) -> {key: value}; ValueError with one line."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        key = key.strip().removeprefix("--")
        fault = _sbatch_fault(key, value)
        if fault:
            raise ValueError(f"{option} {pair!r}: {fault}")
        out[key] = value
    return out


@config_model
class SlurmOptions:
    """One Slurm job's request (a profile of slurm.yaml, the CLI's options, the review screen's choice)."""
    partition: str | None = None
    time: str | None = None                         # Slurm's syntax (parse_time); None: the partition's default
    nodes: int = 1
    gpus_per_node: int = 0
    tasks_per_node: int | None = None               # engine processes per node (default: one per GPU, else 1)
    cpus_per_task: int | None = None
    mem: str | None = None                          # per node, e.g. 64G
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    sbatch: dict[str, str] | None = None            # the pass-through
    signal_s: int = DEFAULT_SIGNAL_S
    max_retries: int = DEFAULT_MAX_RETRIES
    shared_fs: bool | None = None                   # None: decided from the runs folder's filesystem type

    # The CLI option of each field that has one (messages name it).
    FIELD_OPTIONS = {"partition": "partition", "time": "time", "nodes": "nodes", "gpus_per_node": "gpus-per-node",
                     "tasks_per_node": "ntasks-per-node", "cpus_per_task": "cpus-per-task", "mem": "mem",
                     "account": "account", "qos": "qos", "constraint": "constraint"}

    @model_validator(mode="after")
    def _rules(self):
        for key in ("partition", "account", "qos"):
            value = getattr(self, key)
            if value is not None and not _NAME.fullmatch(value):
                raise rule(key, f"expected a Slurm name (letters, digits, '_', '.', '-'), got {value!r}")
        if self.constraint is not None and not _CONSTRAINT.fullmatch(self.constraint):
            raise rule("constraint", f"expected Slurm features joined by & | , (letters, digits, _ . - [ ] * : ( ) "
                                     f"!), got {self.constraint!r}")
        if self.mem is not None and not _MEM.fullmatch(self.mem):
            raise rule("mem", f"expected a size such as 64G, 8000M or 500 (MB), got {self.mem!r}")
        if self.time is not None:
            try:
                parse_time(self.time)
            except ValueError as e:
                raise rule("time", str(e)) from None
        for key in ("nodes", "signal_s"):
            if getattr(self, key) < 1:
                raise rule(key, f"expected >= 1, got {getattr(self, key)}")
        for key in ("gpus_per_node", "max_retries"):
            if getattr(self, key) < 0:
                raise rule(key, f"expected >= 0, got {getattr(self, key)}")
        for key in ("tasks_per_node", "cpus_per_task"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise rule(key, f"expected >= 1, got {getattr(self, key)}")
        if self.gpus_per_node and self.tasks_per_node not in (None, self.gpus_per_node):
            raise rule("tasks_per_node", f"one engine process per GPU: {self.gpus_per_node} GPUs per node need "
                                         f"{self.gpus_per_node} tasks per node, got {self.tasks_per_node}")
        for key, value in (self.sbatch or {}).items():
            fault = _sbatch_fault(key, value) if isinstance(key, str) and isinstance(value, str) else "expected text"
            if fault:
                raise rule(f"sbatch.{key}", fault)
        if self.time is not None and parse_time(self.time) <= self.signal_s:
            raise rule("time", f"{self.time} leaves no time before the {self.signal_s} s warning (signal_s) at which "
                               f"the engine checkpoints to be requeued")
        return self

    # -- what the job is ----------------------------------------------------------------------------------------

    @property
    def processes_per_node(self) -> int:
        return self.tasks_per_node or self.gpus_per_node or 1

    @property
    def processes(self) -> int:
        """Engine processes in all (srun tasks, one per GPU): they share the recipe's global batch."""
        return self.processes_per_node * self.nodes

    @property
    def time_s(self) -> int | None:
        return parse_time(self.time) if self.time is not None else None

    @property
    def device(self) -> str:
        """The engine's device on the nodes: CUDA when the job asks for GPUs, else the CPU."""
        return "cuda" if self.gpus_per_node else "cpu"

    def sbatch_args(self) -> list[str]:
        """The request as sbatch options, one argv element each (the job's mechanics are script.py's)."""
        args = [f"--nodes={self.nodes}", f"--ntasks-per-node={self.processes_per_node}"]
        if self.gpus_per_node:
            args.append(f"--gpus-per-node={self.gpus_per_node}")
        for key in ("partition", "time", "cpus_per_task", "mem", "account", "qos", "constraint"):
            value = getattr(self, key)
            if value is not None:
                args.append(f"--{self.FIELD_OPTIONS[key]}={value}")
        for key, value in sorted((self.sbatch or {}).items()):
            args.append(f"--{key}={value}" if value else f"--{key}")
        return args

    def describe(self) -> str:
        parts = [f"partition {self.partition}" if self.partition else "the default partition"]
        if self.time:
            parts.append(f"time {self.time}")
        parts.append(f"{self.nodes} node{'s' * (self.nodes != 1)} x {self.processes_per_node} task"
                     f"{'s' * (self.processes_per_node != 1)}" + (f" ({self.gpus_per_node} GPUs each)"
                                                                  if self.gpus_per_node else " (CPU)"))
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """The fields that differ from the defaults (what a profile or a run's launch plan stores)."""
        defaults = SlurmOptions()
        return {k: to_dict(v) for k, v in to_dict(self).items() if v != getattr(defaults, k)}


def merge_options(base: SlurmOptions, changes: dict[str, Any], where: str = "command line") -> SlurmOptions:
    """`base` (a profile) with `changes` (explicit options; None values are left out; `sbatch` pairs are added to the
    profile's), validated: PresetError naming `where` and the key."""
    data = base.to_dict()
    for key, value in changes.items():
        if value is None:
            continue
        if key == "sbatch":
            data["sbatch"] = {**(data.get("sbatch") or {}), **value}
        else:
            data[key] = value
    return options_from_mapping(data, where)


def options_from_mapping(data: Any, where: str) -> SlurmOptions:
    """A profile or a stored plan -> SlurmOptions; PresetError with one line naming `where` and the key."""
    if data is None:
        data = {}
    return validate(SlurmOptions, data, where)

