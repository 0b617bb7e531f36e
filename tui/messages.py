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
    "RunsJudged",
    "PresetsLoaded",
    "ConfigResolved",
    "ConfigRejected",
    "ConfigMeasured",
    "ForkPlanned",
    "FixSweepReady",
    "RunLaunched",
    "LaunchFailed",
    "RunPolled",
    "RunBatch",
    "GridLoaded",
    "RunActionDone",
    "StepsNeeded",
    "GridsLoaded",
    "SweepPlanned",
    "SweepPlanRejected",
    "SweepLaunched",
    "SweepBatch",
    "SweepPolled",
    "SweepsLoaded",
    "CompareBatch",
    "ComparePolled",
    "CompareGridsLoaded",
    "CloneReady",
    "SweepActionDone",
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


class RunsJudged(Message):
    """The history's findings column (issue 18): run id -> (cursors, findings, worst severity), for the runs in
    view."""

    def __init__(self, judged: dict[int, tuple]) -> None:
        super().__init__()
        self.judged = judged


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


class ForkPlanned(Message):
    """The fork review's form planned (launch/fork.py plan_fork): where the child starts and what changes."""

    def __init__(self, generation: int, plan: Any, points: list[int], yaml_text: str) -> None:
        super().__init__()
        self.generation = generation
        self.plan = plan
        self.points = points
        self.yaml_text = yaml_text


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
    diagnosis: Any = None                                             # the doctor's judgement (issue 18), if asked
    doctor_error: str = ""                                            # why the doctor could not judge (one line)
    doctor_stale: bool = False                                        # newer rows wait for the next judgement

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
    """stop / resume / evaluate / delete finished: a line for the user (`refused`: the engine said no), and optionally
    the details `?` shows (with their topic)."""

    def __init__(self, run_id: int, action: str, text: str, detail: str = "", topic: str = "", *,
                 refused: bool = False) -> None:
        super().__init__()
        self.run_id = run_id
        self.action = action
        self.text = text
        self.refused = refused
        self.detail = detail
        self.topic = topic


class StepsNeeded(Message):
    """`resume` refused a run with no step left (engine: StepsExhausted): ask the user for a new end."""

    def __init__(self, run_id: int, step: int, total_steps: int | None, asked: int | None) -> None:
        super().__init__()
        self.run_id, self.step, self.total_steps, self.asked = run_id, step, total_steps, asked


#----------------------------------------------------------------------------
# Sweeps, compare and clone (issue 8).

class GridsLoaded(Message):
    """The grid presets and the base run options: (name, grid or None, error, refusal or None) per preset, where a
    refusal is the one line saying why the grid does not apply to the base (e.g. a lambda grid on a static tier)."""

    def __init__(self, spec: Any, entries: list[tuple[str, Any, str, str | None]]) -> None:
        super().__init__()
        self.spec = spec
        self.entries = entries


class SweepPlanned(Message):
    """The sweep setup form resolved into a plan (every member validated), its slots and its estimate."""

    def __init__(self, generation: int, plan: Any, slots: Any, estimate: Any) -> None:
        super().__init__()
        self.generation = generation
        self.plan = plan
        self.slots = slots
        self.estimate = estimate


class SweepPlanRejected(Message):
    def __init__(self, generation: int, error: str) -> None:
        super().__init__()
        self.generation = generation
        self.error = error


class SweepLaunched(Message):
    def __init__(self, sweep_id: int) -> None:
        super().__init__()
        self.sweep_id = sweep_id


@dataclass
class SweepBatch:
    """What one sweep-view poll read: the sweep, its supervisor's liveness, the member summaries (last/best
    metrics) and the metric rows added since the last poll."""
    sweep: dict[str, Any] | None
    alive: bool = False
    summaries: list[Any] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    last_id: int = 0
    judged: dict[int, tuple] = field(default_factory=dict)  # run id -> (cursors, findings, worst): issue 18


class SweepPolled(Message):
    def __init__(self, batch: SweepBatch) -> None:
        super().__init__()
        self.batch = batch


class SweepsLoaded(Message):
    def __init__(self, sweeps: list[dict[str, Any]]) -> None:
        super().__init__()
        self.sweeps = sweeps

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SweepsLoaded)


@dataclass
class CompareBatch:
    """What one compare poll read: the runs (summaries), the config difference, new metric rows and the grid index
    (sample rows without PNG bytes) of each run."""
    summaries: list[Any] = field(default_factory=list)
    diff: list[tuple[str, list[Any]]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    grids: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    last_id: int = 0
    recheck: Any = None                             # a fork and its parent: the re-check (engine/doctor/recheck.py)
    recheck_key: Any = None                         # the two runs' cursors it was judged at (None: not a fork pair)
    recheck_error: str = ""


class ComparePolled(Message):
    def __init__(self, batch: CompareBatch) -> None:
        super().__init__()
        self.batch = batch


class CompareGridsLoaded(Message):
    """The grids at the scrubber's step, decoded off the UI thread: {run_id: (sample row or None, PIL image)}."""

    def __init__(self, step: int, images: dict[int, tuple[Any, Any]]) -> None:
        super().__init__()
        self.step = step
        self.images = images

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, CompareGridsLoaded)


class FixSweepReady(Message):
    """A finding's fix grid made ready for the sweep setup: the run's options (a RunSpec) and the grid (SweepGrid)."""

    def __init__(self, spec: Any, grid: Any) -> None:
        super().__init__()
        self.spec = spec
        self.grid = grid


class CloneReady(Message):
    """A run's config turned back into new-run options, for the review screen."""

    def __init__(self, run_id: int, spec: Any) -> None:
        super().__init__()
        self.run_id = run_id
        self.spec = spec


class SweepActionDone(Message):
    """stop / resume / retry / add on a sweep finished: a line for the user."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
