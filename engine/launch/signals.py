"""Stop signals that arrive at any moment of an engine's life, even before torch is imported.

`python -m difftui.engine` installs these handlers as its very first statement: SIGTERM and SIGINT only record the
signal; the run owner reads it between two steps and stops cleanly (checkpoint, status 'stopped', a log line). A
signal that arrives while the engine is still starting is therefore never lost, and nothing is interrupted halfway
(an exception raised inside a signal handler could land in the middle of a database write or a checkpoint).

To close the last gap (the interpreter's own start-up, before any Python line runs), the launcher starts engines
with the two signals blocked (`blocked()`, inherited through fork and exec), and `install()` unblocks them once the
handlers are in place: a signal sent in between waits, pending, and is then delivered to the handler.

Under Slurm (an engine started by the job wrapper, engine/launch/slurm/task.py, which sets DIFFTUI_SLURM_TASK=1)
two signals mean "checkpoint now and leave without a final status, the job will run again" (`requeue_signal`):
SIGUSR1, the warning `sbatch --signal=USR1@N` sends before the time limit (the wrapper then requeues the job), and
SIGTERM, which Slurm sends when it requeues or preempts the job (or cancels it: the job's end then says so). The
engine exits with EXIT_REQUEUE; a stop asked by `difftui stop` still ends the run 'stopped'.
"""

from __future__ import annotations

import contextlib
import os
import signal

__all__ = ["install", "received", "describe", "blocked", "stop_signal", "requeue_signal", "under_slurm",
           "SLURM_TASK_ENV", "EXIT_REQUEUE"]

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
WARNING_SIGNAL = signal.SIGUSR1                    # sbatch --signal=USR1@N: the time limit is near
SLURM_TASK_ENV = "DIFFTUI_SLURM_TASK"              # set by the Slurm job wrapper for the engines it starts
EXIT_REQUEUE = 75                                  # the engine checkpointed and left for its job to run again

_received: int | None = None
_warned: int | None = None


def _on_signal(signum: int, frame) -> None:
    global _received
    _received = signum


def _on_warning(signum: int, frame) -> None:
    global _warned
    _warned = signum


def install() -> None:
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(WARNING_SIGNAL, _on_warning)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS | {WARNING_SIGNAL})


def under_slurm() -> bool:
    """This engine was started by difftui's Slurm job wrapper."""
    return os.environ.get(SLURM_TASK_ENV) == "1"


def stop_signal() -> int | None:
    """The signal received that ends the run 'stopped' (SIGINT; SIGTERM outside Slurm), or None."""
    if _received == signal.SIGTERM and under_slurm():
        return None
    return _received


def requeue_signal() -> int | None:
    """Under Slurm: the signal received that means "checkpoint and leave, the job runs again" (SIGUSR1 or SIGTERM),
    or None. Outside Slurm a SIGUSR1 is ignored."""
    if not under_slurm():
        return None
    if _received == signal.SIGTERM:
        return _received
    return _warned


@contextlib.contextmanager
def blocked():
    """Block the stop signals in the calling thread (a process started meanwhile inherits the mask)."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def received() -> int | None:
    """The stop signal received so far (SIGTERM or SIGINT), or None (what a sweep's supervisor stops on)."""
    return _received


def describe(signum: int | None) -> str:
    return signal.Signals(signum).name if signum else "no signal"
