"""How a run's engine is started (`LaunchPlan`), and the one parser of the GPU and process options.

`--gpus 0,1` / `--nproc-per-node K` / `--nnodes N` / `--rdzv-endpoint HOST:PORT` on the command line, the review
screen's GPUs field and a sweep's GPUs (the CLI's `sweep start --gpus` and the sweep setup screen) are all read by
`parse_gpus` and `plan_from_options` here, so they accept and refuse the same text with the same line.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["LaunchPlan", "parse_gpus", "plan_from_options"]


@dataclass(frozen=True)
class LaunchPlan:
    """How a run's engine is started; stored with the run (runs.launch) so that a resume starts it the same way.

    `gpus` become CUDA_VISIBLE_DEVICES (inside the engine they are cuda:0..K-1); `nproc_per_node` > 1 or `nnodes` > 1
    goes through torchrun (DDP; gloo on the CPU). `env` adds environment variables (e.g. a sweep member's thread
    count). `slurm` (the fields of a SlurmOptions, launch/slurm/options.py) submits it to Slurm instead: one job,
    one srun task per GPU. Which backend starts it is difftui.engine.launch.backends' choice."""
    nproc_per_node: int = 1
    gpus: tuple[int, ...] | None = None
    nnodes: int = 1
    rdzv_endpoint: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    slurm: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.nproc_per_node < 1:
            raise ValueError(f"--nproc-per-node: expected >= 1, got {self.nproc_per_node}")
        if self.nnodes < 1:
            raise ValueError(f"--nnodes: expected >= 1, got {self.nnodes}")
        if self.nnodes > 1 and not self.rdzv_endpoint:
            raise ValueError("--nnodes > 1 needs --rdzv-endpoint HOST:PORT (the machine that runs rank 0)")
        if self.gpus is not None and len(self.gpus) != len(set(self.gpus)):
            raise ValueError(f"--gpus: a GPU is named twice ({','.join(map(str, self.gpus))})")

    @property
    def distributed(self) -> bool:
        return self.nproc_per_node > 1 or self.nnodes > 1

    @property
    def processes(self) -> int:
        """Processes in all (they share the recipe's global batch): srun's tasks on Slurm."""
        if self.slurm is not None:
            return self.slurm_options().processes
        return self.nproc_per_node * self.nnodes

    def slurm_options(self) -> Any:
        """The Slurm request (a SlurmOptions; PresetError with one line for a bad stored one)."""
        from difftui.engine.launch.slurm.options import options_from_mapping
        return options_from_mapping(self.slurm or {}, "the run's Slurm options")

    def to_json(self) -> str:
        data = asdict(self)
        data["gpus"] = list(self.gpus) if self.gpus is not None else None
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str | None) -> "LaunchPlan":
        if not text:
            return cls()
        data = json.loads(text)
        gpus = data.get("gpus")
        return cls(nproc_per_node=int(data.get("nproc_per_node", 1)), gpus=tuple(gpus) if gpus is not None else None,
                   nnodes=int(data.get("nnodes", 1)), rdzv_endpoint=data.get("rdzv_endpoint"),
                   env=dict(data.get("env") or {}), slurm=data.get("slurm"))

    def describe(self) -> str:
        if self.slurm is not None:
            return "Slurm: " + self.slurm_options().describe()
        parts = []
        if self.gpus is not None:
            parts.append(f"GPUs {','.join(map(str, self.gpus))}")
        if self.distributed:
            parts.append(f"{self.nproc_per_node} process(es) per node" + (f" x {self.nnodes} nodes" if self.nnodes > 1
                                                                         else ""))
        return ", ".join(parts) or "one process"


def parse_gpus(text: str | None, *, option: str = "--gpus") -> tuple[int, ...] | None:
    """"0,1" (spaces allowed) -> (0, 1); empty or None -> None (no GPUs named). ValueError with one line naming
    `option` (the screens say "GPUs") for anything else, or a GPU named twice."""
    if text is None or not text.strip():
        return None
    try:
        ids = tuple(int(g) for g in text.split(",") if g.strip())
    except ValueError:
        raise ValueError(f"{option} {text.strip()!r}: expected GPU numbers separated by commas, e.g. 0,1") from None
    if not ids:
        raise ValueError(f"{option} {text.strip()!r}: no GPU named")
    if any(g < 0 for g in ids):
        raise ValueError(f"{option} {text.strip()!r}: GPU numbers start at 0")
    if len(set(ids)) != len(ids):
        raise ValueError(f"{option}: a GPU is named twice ({','.join(map(str, ids))})")
    return ids


def plan_from_options(gpus: str | None = None, nproc_per_node: int | None = None, nnodes: int = 1,
                      rdzv_endpoint: str | None = None, *, option: str = "--gpus") -> LaunchPlan:
    """The command line's (or the review screen's) launch options as a LaunchPlan; ValueError with one line for a
    bad value. One process per named GPU."""
    ids = parse_gpus(gpus, option=option)
    nproc = nproc_per_node or (len(ids) if ids else 1)
    if ids and nproc != len(ids):
        raise ValueError(f"{option} names {len(ids)} GPU(s) but --nproc-per-node is {nproc}: one process per GPU")
    return LaunchPlan(nproc_per_node=nproc, gpus=ids, nnodes=nnodes, rdzv_endpoint=rdzv_endpoint)
