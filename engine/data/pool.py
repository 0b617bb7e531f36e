"""Parallel decoding: map a function over chunks of items in a process pool, results in order, with progress.

Decoding JPEG/PNG is CPU-bound and holds the GIL, so the data check and the cache builder use processes. The pool
uses the "spawn" start method: it is started from the TUI's worker threads too, where forking a threaded process is
unsafe. Small jobs (fewer than `IN_PROCESS_BELOW` items) or `workers=0` run in this process (starting interpreters
would cost more than the work).
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Iterator, Sequence

__all__ = ["map_chunks", "default_workers", "IN_PROCESS_BELOW"]

IN_PROCESS_BELOW = 256
CHUNK = 64


def default_workers() -> int:
    """One process per core this process may use (cgroup/affinity aware where the OS says)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def map_chunks(fn: Callable[[Sequence[Any]], list[Any]], items: Sequence[Any], *, workers: int | None = None,
               progress: Callable[[int, int, str], None] | None = None, what: str = "decoding",
               chunk: int = CHUNK) -> Iterator[list[Any]]:
    """Yield fn(chunk) for consecutive chunks of `items`, in order. `fn` must be a module-level function."""
    total = len(items)
    workers = default_workers() if workers is None else workers
    done = 0
    if progress:
        progress(0, total, what)
    if workers <= 1 or total < IN_PROCESS_BELOW:
        for part in _chunks(items, chunk):
            out = fn(part)
            done += len(part)
            if progress:
                progress(done, total, what)
            yield out
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        parts = list(_chunks(items, chunk))
        # Keep a bounded number of chunks in flight, so memory stays flat and results come back in order.
        window = workers * 4
        futures = [pool.submit(fn, p) for p in parts[:window]]
        next_part = len(futures)
        for i in range(len(parts)):
            out = futures[i].result()
            futures[i] = None
            if next_part < len(parts):
                futures.append(pool.submit(fn, parts[next_part]))
                next_part += 1
            done += len(parts[i])
            if progress:
                progress(done, total, what)
            yield out
