"""The data side's one error: a data set that cannot be loaded, said in one line (torch-free, so that the decoding
workers of the data check and the cache builder import no torch)."""

from __future__ import annotations

__all__ = ["DataError"]


class DataError(RuntimeError):
    """The data set cannot be loaded; the message is one line saying where the files should be."""
