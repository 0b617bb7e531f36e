"""The messages the app's workers post back to the UI thread.

Workers read runs.db (or import torch, or spawn the engine) off the UI thread and post exactly one of these per unit
of work; the handlers only touch widgets. Messages that a newer one makes stale say so with `can_replace`, so a slow UI
never queues more than one of each (toolong's coalescing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.message import Message

__all__ = [
    "DatabaseReady",
    "RunsLoaded",
    "PresetsLoaded",
    "ConfigResolved",
    "ConfigRejected",
    "ConfigMeasured",
    "RunLaunched",
    "LaunchFailed",
    "RunPolled",
    "RunBatch",
    "GridLoaded",
    "RunActionDone",
]


class DatabaseReady(Message):
    """runs.db exists (created if it did not) and dead runs were reaped."""

    def __init__(self, run_count: int) -> None:
        super().__init__()
        self.run_count = run_count


class RunsLoaded(Message):
    """The history screen's poll: every run, newest first."""

    def __init__(self, runs: list[dict[str, Any]]) -> None:
        super().__init__()
        self.runs = runs

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunsLoaded)


class PresetsLoaded(Message):
    """Every preset kind read from disk (kind -> [(name, preset or None, error or "")]) and the user's remembered
    new-run choices."""

    def __init__(self, entries: dict[str, list[tuple[str, Any, str]]], remembered: dict[str, Any]) -> None:
        super().__init__()
        self.entries = entries
        self.remembered = remembered


class ConfigResolved(Message):
    """The review screen's presets and overrides composed into a valid RunConfig."""

    def __init__(self, generation: int, config: Any, yaml_text: str) -> None:
        super().__init__()
        self.generation = generation
        self.config = config
        self.yaml_text = yaml_text


class ConfigRejected(Message):
    """The overrides do not compose (PresetError): one line for the screen."""

    def __init__(self, generation: int, error: str) -> None:
        super().__init__()
        self.generation = generation
        self.error = error


class ConfigMeasured(Message):
    """Parameters, MACs and device for a resolved config (built on the meta device in a worker)."""

    def __init__(self, generation: int, facts: dict[str, Any]) -> None:
        super().__init__()
        self.generation = generation
        self.facts = facts


class RunLaunched(Message):
    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id


class LaunchFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


@dataclass
class RunBatch:
    """What one dashboard poll read: the run row and the rows added since the last poll. A full read (the first
    poll, after a rewind, or after a long pause) carries every series already bucketed by SQL in `series` and the
    recent GPU window in `gpu`; an incremental one carries the new metric rows in `metrics`."""
    run: dict[str, Any] | None
    series: dict[str, Any] | None = None                               # name -> BucketSeries (a full read)
    latest: dict[str, float] = field(default_factory=dict)              # name -> newest value (a full read)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    gpu: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)        # new grid index rows (no PNG bytes)
    grid: tuple[int, Any] | None = None                               # (sample id, PIL image) of the newest grid
    last_metric: int = 0
    last_gpu: int = 0
    last_event: int = 0
    last_sample: int = 0
    last_eval: int = 0
    seconds: float = 0.0                                              # how long the worker took

    @property
    def full(self) -> bool:
        return self.series is not None


class RunPolled(Message):
    """One dashboard poll's batch. The timer re-arms only after this is handled, so there is never a second."""

    def __init__(self, batch: RunBatch) -> None:
        super().__init__()
        self.batch = batch


class GridLoaded(Message):
    """A grid PNG decoded off the UI thread (the scrubber asked for it)."""

    def __init__(self, sample_id: int, image: Any) -> None:
        super().__init__()
        self.sample_id = sample_id
        self.image = image

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, GridLoaded)


class RunActionDone(Message):
    """stop / resume / delete finished: a line for the user."""

    def __init__(self, run_id: int, action: str, text: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.action = action
        self.text = text
