"""The process group of a run: one process, or K under torchrun or srun (DDP; NCCL on CUDA, gloo on the CPU).

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE; without them the engine is the whole world (rank 0
of 1) and every collective below is the identity, so the training loop reads the same either way. Only rank 0 owns
the run (its lock, runs.db, checkpoints, grids); the others train and take part in the collectives.

Under Slurm (one srun task per GPU, started by difftui's job wrapper: DIFFTUI_SLURM_TASK=1) the same variables are
read from Slurm's (`slurm_world_env`): SLURM_PROCID -> RANK, SLURM_NTASKS -> WORLD_SIZE, SLURM_LOCALID -> LOCAL_RANK,
SLURM_NTASKS_PER_NODE -> LOCAL_WORLD_SIZE, and the rendezvous on the job's first node (MASTER_ADDR, set by the
wrapper from `scontrol show hostnames`, else read from SLURM_JOB_NODELIST; MASTER_PORT from the job id, so two jobs
on one node never share a port). From there the path is torchrun's.
"""

from __future__ import annotations

import datetime
import os
import re
from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.distributed as dist

from difftui.engine.launch.signals import SLURM_TASK_ENV
from difftui.engine.launch.slurm.task import slurm_port

__all__ = ["World", "init_world", "slurm_world_env", "first_host"]

TIMEOUT = datetime.timedelta(minutes=30)            # a grid or a checkpoint on rank 0 may keep the others waiting


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    # -- collectives (identities for a world of one) ----------------------------------------------------------------

    def broadcast(self, obj: Any, timeout: datetime.timedelta | None = None) -> Any:
        """Rank 0's `obj` on every rank (a picklable object: the config, a checkpoint path, a decision). The other
        ranks wait for it up to the process group's TIMEOUT, or `timeout` (through a gloo group of its own: rank 0
        may take hours first, e.g. building a data set's cache)."""
        if not self.distributed:
            return obj
        group = dist.new_group(backend="gloo", timeout=timeout) if timeout is not None else None
        try:
            box = [obj if self.main else None]
            dist.broadcast_object_list(box, src=0, group=group)
        finally:
            if group is not None:
                dist.destroy_process_group(group)
        return box[0]

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's `obj`, as a list on rank 0 (None elsewhere)."""
        if not self.distributed:
            return [obj]
        out = [None] * self.size if self.main else None
        dist.gather_object(obj, out, dst=0)
        return out

    def all_reduce_(self, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """In place over all ranks: "sum", "max" or "min"."""
        if self.distributed:
            dist.all_reduce(tensor, op={"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX,
                                        "min": dist.ReduceOp.MIN}[op])
        return tensor

    def barrier(self, timeout: datetime.timedelta | None = None) -> None:
        """Every rank waits for all the others, up to the process group's TIMEOUT or `timeout` (a gloo group of its
        own, as in broadcast)."""
        if not self.distributed:
            return
        if timeout is None:
            dist.barrier()
            return
        group = dist.new_group(backend="gloo", timeout=timeout)
        try:
            dist.barrier(group=group)
        finally:
            dist.destroy_process_group(group)

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


#----------------------------------------------------------------------------
# Slurm's variables as torchrun's.

def first_host(nodelist: str) -> str:
    """The first host of Slurm's compact node list: "node[03-05,9],gpu1" -> "node03", "vm" -> "vm"."""
    m = re.match(r"([^,\[]*)(?:\[([^\]]*)\])?([^,]*)", nodelist.strip())
    if not m or not (m.group(1) or m.group(2)):
        raise ValueError(f"SLURM_JOB_NODELIST {nodelist!r}: no host")
    prefix, ranges, suffix = m.groups()
    if ranges is None:
        return prefix + suffix
    first = ranges.split(",", 1)[0].split("-", 1)[0]
    return prefix + first + suffix


def slurm_world_env(env: Mapping[str, str]) -> dict[str, str]:
    """torchrun's variables for an srun task, from Slurm's (the module docstring); {} outside an srun step."""
    if "SLURM_PROCID" not in env or "SLURM_NTASKS" not in env:
        return {}
    per_node = env.get("SLURM_NTASKS_PER_NODE") or env.get("SLURM_TASKS_PER_NODE", "1")
    local_size = int(re.match(r"\d+", per_node).group(0)) if re.match(r"\d+", per_node) else 1
    out = {"RANK": env["SLURM_PROCID"], "WORLD_SIZE": env["SLURM_NTASKS"],
           "LOCAL_RANK": env.get("SLURM_LOCALID", "0"), "LOCAL_WORLD_SIZE": str(local_size)}
    out["MASTER_ADDR"] = env.get("MASTER_ADDR") or first_host(env.get("SLURM_JOB_NODELIST", "localhost"))
    out["MASTER_PORT"] = env.get("MASTER_PORT") or str(slurm_port(env.get("SLURM_JOB_ID", "0")))
    return out


def init_world() -> World:
    """Join torchrun's (or srun's) process group when this process was started by it: NCCL for CUDA tensors and
    gloo for CPU tensors where there is a GPU (the run's device decides which one its collectives use), gloo alone
    elsewhere."""
    if os.environ.get(SLURM_TASK_ENV) == "1":
        os.environ.update(slurm_world_env(os.environ))
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    world = World(rank=int(os.environ["RANK"]), size=size, local_rank=int(os.environ.get("LOCAL_RANK", "0")),
                  local_size=int(os.environ.get("LOCAL_WORLD_SIZE", str(size))))
    if torch.cuda.is_available() and world.local_rank < torch.cuda.device_count():
        torch.cuda.set_device(world.local_rank)
        dist.init_process_group("cpu:gloo,cuda:nccl", timeout=TIMEOUT)
    else:
        dist.init_process_group("gloo", timeout=TIMEOUT)
    return world
