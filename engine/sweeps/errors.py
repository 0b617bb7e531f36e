"""The one error type of the sweep control functions: a one-line message naming the sweep, run or value at fault."""

from __future__ import annotations

__all__ = ["SweepError"]


class SweepError(RuntimeError):
    """A sweep action cannot be done (unknown sweep, still stopping, nothing to resume, ...): one line."""
