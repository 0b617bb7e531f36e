"""What a run use case gives its front ends: an `Outcome` to print or show, or a `LaunchError` with one line.

The TUI and the CLI make the same engine call for each use case (new run, resume, stop, delete, evaluate; DESIGN.md)
and show what it returns, so the two can never give different answers for the same run.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

__all__ = ["LaunchError", "Outcome"]


class LaunchError(RuntimeError):
    """A use case refused (the run is alive, waits in an active sweep's queue, is not running, ...) or could not be
    done; the message is one line naming the run and what to do."""


@dataclass(frozen=True)
class Outcome:
    """What a use case did: one line for the user, and the process it started (an engine or an evaluator), if any."""
    run_id: int
    message: str
    proc: subprocess.Popen | None = None
    job_id: int | None = None                       # the evaluator's job row (evaluate)
    fid_skipped: bool = False                       # evaluate: FID was wanted if found, and was not found
    slurm_job: str | None = None                    # the Slurm job a run was submitted as (no process here)
