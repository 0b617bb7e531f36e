"""Stop signals that arrive at any moment of an engine's life, even before torch is imported.

`python -m difftui.engine` installs these handlers as its very first statement: SIGTERM and SIGINT only record the
signal; the run owner reads it between two steps and stops cleanly (checkpoint, status 'stopped', a log line). A
signal that arrives while the engine is still starting is therefore never lost, and nothing is interrupted halfway
(an exception raised inside a signal handler could land in the middle of a database write or a checkpoint).

To close the last gap (the interpreter's own start-up, before any Python line runs), the launcher starts engines
with the two signals blocked (`blocked()`, inherited through fork and exec), and `install()` unblocks them once the
handlers are in place: a signal sent in between waits, pending, and is then delivered to the handler.
"""

from __future__ import annotations

import contextlib
import signal

__all__ = ["install", "received", "describe", "blocked"]

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}

_received: int | None = None


def _on_signal(signum: int, frame) -> None:
    global _received
    _received = signum


def install() -> None:
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


@contextlib.contextmanager
def blocked():
    """Block the stop signals in the calling thread (a process started meanwhile inherits the mask)."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def received() -> int | None:
    """The stop signal received so far (SIGTERM or SIGINT), or None."""
    return _received


def describe(signum: int | None) -> str:
    return signal.Signals(signum).name if signum else "no signal"
