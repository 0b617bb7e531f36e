"""The difftui app: opens runs.db, shows the run history, and starts / stops / resumes engine processes.

The app never trains and never stops a run by closing: engines are detached processes (their own session, stdin from
/dev/null) that write to runs.db; the app only reads that database from worker threads and sends commands through it.
Reopening the app reattaches to whatever is still running, and a run whose process is gone is reaped as crashed.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections import deque
from pathlib import Path
from typing import Any, Iterable

from textual import events, work
from textual.app import App, ComposeResult
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from difftui.engine.store import Store
from difftui.engine.text import one_line
from difftui.tui import bindings
from difftui.tui.advice import in_tui_words
from difftui.tui.messages import (
    CloneReady,
    DatabaseReady,
    FixSweepReady,
    PresetsLoaded,
    RunActionDone,
    StepsNeeded,
)

__all__ = ["DifftuiApp"]


class DifftuiApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "difftui"
    BINDINGS = bindings.APP

    def __init__(self, db_path: str | Path = Path("runs.db"), preset_dirs: Iterable[str | Path] = ()) -> None:
        super().__init__()
        # Absolute now: the engines we spawn and every worker must agree on the file whatever the cwd becomes.
        self.db_path = Path(db_path).expanduser().absolute()
        self.preset_dirs = [Path(p).expanduser() for p in preset_dirs]
        # Engines (by run id) and evaluators (("eval", job id)) this app started: reaped, never killed.
        self.processes: dict[int | tuple[str, int], subprocess.Popen] = {}
        self.supervisors: dict[int, subprocess.Popen] = {}     # sweep supervisors this app started (same)
        self.sub_title = str(self.db_path)
        # The new-run flow's presets (kind -> [(name, preset or None, error)]), read once per flow, and the user's
        # remembered choices (tui/prefs.py).
        self.preset_entries: dict[str, list[tuple[str, Any, str]]] | None = None
        self.remembered: dict[str, Any] = {}
        self.opening = True                                    # the splash screen, until runs.db is open
        self._typeahead: deque[events.Key] = deque()          # keys held back (on_event)
        self._typeahead_timer = None
        self._key_in_flight: tuple[events.Key, float] | None = None
        # What a short message left out (which file, where it was looked for): topic -> text, newest first; the
        # help screen (?) lists them under "details" (issue 16 item 8).
        self.details: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield Static(f"opening {self.db_path} ...", id="splash", markup=False)

    def on_mount(self) -> None:
        from difftui.engine.launch.devices import start_probe
        start_probe()                               # the device probe (a subprocess) runs while the user picks
        self.open_database()

    # -- the database ---------------------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="open-db", exit_on_error=False)
    def open_database(self) -> None:
        """Create runs.db when it is missing, reap runs whose engine died, count the runs."""
        from difftui.engine.launch import liveness
        from difftui.engine.store import open_for_reading
        with (open_for_reading(self.db_path) if self.db_path.exists() else Store(self.db_path)) as store:
            liveness.reap(store)
            count = len(store.list_runs())
            read_only = store.read_only
        if read_only:
            self.call_from_thread(self.notify, f"{self.db_path} is read-only here: runs are shown, not changed",
                                  title="read-only", severity="warning", timeout=15)
        self.post_message(DatabaseReady(count))

    def on_database_ready(self, message: DatabaseReady) -> None:
        from difftui.tui.screens.history import HistoryScreen
        self.opening = False
        self.push_screen(HistoryScreen())
        if message.run_count == 0:
            self.action_new_run()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.report_worker_error(event.worker, event.worker.error)

    def report_worker_error(self, worker: Worker, error: BaseException | None) -> None:
        """The one place a failed worker becomes a message for the user (screens forward theirs here)."""
        text = in_tui_words(one_line(error))
        if worker.group == "open-db":
            self.opening = False
            self.query_one("#splash", Static).update(f"cannot open {self.db_path}: {text}\nctrl+q quits")
        self.notify(text, title=worker.group, severity="error", timeout=10)

    # -- keys in the order they were typed --------------------------------------------------------------------------

    KEY_SETTLE_S = 1.0          # the longest a key may keep the next one waiting (a safety net, see _keys_ready)

    async def on_event(self, event: events.Event) -> None:
        """Every key reaches its widget in the order it was typed, however fast the keys come.

        Textual routes a key to whatever has focus when it reads it, and runs key bindings (the focused widget's
        own, such as an input's backspace, too) only when the key has bubbled up to the app, while a printable key is
        inserted at once. So a burst could lose keys (typed before the new screen had focus) or reorder them
        (backspace after the digits typed behind it). Here a key is held while the screen is still being composed,
        and while an earlier key is still on its way up; held keys are replayed in order."""
        if isinstance(event, events.Key) and not event.is_forwarded and event.key not in ("ctrl+q", "ctrl+c"):
            if self._typeahead or not self._keys_ready():
                self._typeahead.append(event)
                self._arm_typeahead()
                return
            await self._send_key(event)
            return
        await super().on_event(event)

    async def _send_key(self, event: events.Key) -> None:
        focused = self.focused
        await super().on_event(event)
        consumed = focused is not None and focused.check_consume_key(event.key, event.character)
        if event.is_forwarded and not consumed:
            self._key_in_flight = (event, time.monotonic())

    def _on_key(self, event: events.Key) -> None:
        # Textual calls App._on_key (which runs the bindings) after this one, for the same message; held keys are
        # sent from a callback queued behind it.
        if self._key_in_flight is not None and self._key_in_flight[0] is event:
            self._key_in_flight = None
            if self._typeahead:
                self.call_later(self._drain_typeahead)

    def _keys_ready(self) -> bool:
        if self.opening:
            return False
        if self._key_in_flight is not None:
            # Settled when it reaches the app (_on_key); the time limit covers a key a widget kept for itself.
            if time.monotonic() - self._key_in_flight[1] < self.KEY_SETTLE_S:
                return False
            self._key_in_flight = None
        return bool(getattr(self.screen, "ready_for_keys", True))

    def _arm_typeahead(self) -> None:
        if self._typeahead_timer is None:
            self._typeahead_timer = self.set_interval(0.01, self._drain_typeahead)

    async def _drain_typeahead(self) -> None:
        while self._typeahead and self._keys_ready():
            await self._send_key(self._typeahead.popleft())
        if not self._typeahead and self._typeahead_timer is not None:
            self._typeahead_timer.stop()
            self._typeahead_timer = None

    # -- navigation -----------------------------------------------------------------------------------------------

    def action_new_run(self, choices: dict[str, str] | None = None) -> None:
        from difftui.tui.screens.new_run import PresetPickerScreen
        self.preset_entries = None              # read them again: the user may have edited a preset file
        self.load_presets()
        self.push_screen(PresetPickerScreen("datasets", dict(choices or {})))

    @work(thread=True, exclusive=True, group="presets", exit_on_error=False)
    def load_presets(self) -> None:
        """Read and validate every preset file of every kind (a malformed one is listed with its one-line error),
        and the user's remembered choices."""
        from difftui.engine.config.catalog import Catalog, load_preset
        from difftui.engine.config.model import PresetError
        from difftui.tui.prefs import load_choices
        from difftui.tui.screens.new_run import STEPS
        catalog = Catalog(self.preset_dirs)
        entries: dict[str, list[tuple[str, Any, str]]] = {}
        for kind in STEPS:
            entries[kind] = []
            for name, path in catalog.files(kind).items():
                try:
                    entries[kind].append((name, load_preset(kind, path), ""))
                except PresetError as e:
                    entries[kind].append((name, None, one_line(e)))
        self.post_message(PresetsLoaded(entries, load_choices()))

    def on_presets_loaded(self, message: PresetsLoaded) -> None:
        from difftui.tui.screens.new_run import PresetPickerScreen
        self.preset_entries = message.entries
        self.remembered = message.remembered
        for screen in self.screen_stack:
            if isinstance(screen, PresetPickerScreen):
                screen.presets_ready()

    def keep_detail(self, topic: str, text: str) -> None:
        """Keep what a short message left out for the help screen (newest first; a topic keeps its newest text)."""
        self.details.pop(topic, None)
        self.details = {topic: text, **self.details}

    def action_help(self) -> None:
        from difftui.tui.screens.help import HelpScreen
        if not isinstance(self.screen, HelpScreen) and len(self.screen_stack) > 1:
            self.push_screen(HelpScreen(self.screen))

    def close_new_run_flow(self) -> None:
        """Pop the picker and review screens (they are stacked so that escape walks back)."""
        from difftui.tui.screens.new_run import NewRunStep
        while len(self.screen_stack) > 1 and isinstance(self.screen, NewRunStep):
            self.pop_screen()

    def open_dashboard(self, run_id: int) -> None:
        from difftui.tui.screens.dashboard import DashboardScreen
        self.close_new_run_flow()
        if isinstance(self.screen, DashboardScreen):
            self.pop_screen()
        self.push_screen(DashboardScreen(run_id))

    # -- sweeps, compare and clone (issue 8) ----------------------------------------------------------------------

    def open_sweep_grid(self, *, spec=None, run_id: int | None = None) -> None:
        """Start a sweep around `spec` (a RunSpec), around run `run_id`'s config, or around the defaults."""
        from difftui.tui.screens.sweep_grid import SweepGridScreen
        self.push_screen(SweepGridScreen(spec=spec, run_id=run_id))

    def open_sweep(self, sweep_id: int) -> None:
        """The sweep view (closing the sweep setup screens that launched it)."""
        from difftui.tui.screens.sweep_step import SweepStep
        from difftui.tui.screens.sweep_view import SweepScreen
        while len(self.screen_stack) > 1 and isinstance(self.screen, SweepStep):
            self.pop_screen()
        self.close_new_run_flow()
        self.push_screen(SweepScreen(sweep_id))

    def open_sweeps(self) -> None:
        from difftui.tui.screens.sweep_list import SweepListScreen
        self.push_screen(SweepListScreen())

    def open_compare(self, run_ids: list[int]) -> None:
        from difftui.tui.screens.compare import CompareScreen
        self.push_screen(CompareScreen(run_ids))

    # -- a finding's fix (issue 18 item 3): a fork with its edit, or a sweep of its grid --------------------------------

    def fix_finding(self, run_id: int, finding: Any, *, grid: bool = False) -> None:
        """The fork review with the finding's first edit applied (the newest checkpoint preselected; the user can
        change both), or, when the fix is a grid and no single edit (playbook 4.5's dropout values) or `grid` asks
        for it, the sweep setup with that grid around the run's config."""
        from difftui.engine.doctor.finding import set_args
        if grid and finding.grid is None:
            self.notify("this finding's fix is no grid: f forks with its edit", severity="warning")
            return
        if finding.edits and not grid:
            from difftui.tui.screens.fork_review import ForkReviewScreen
            self.push_screen(ForkReviewScreen(run_id, set_args(finding.edits[0]),
                                              why=f"fix: {finding.title} (playbook {finding.section})"))
        elif finding.grid is not None:
            self.prepare_fix_sweep(run_id, finding.grid)
        else:
            self.notify(f"no config edit fixes this one: {finding.advice or finding.why}", timeout=10)

    @work(thread=True, exclusive=True, group="fix-sweep", exit_on_error=False)
    def prepare_fix_sweep(self, run_id: int, fix: Any) -> None:
        """The run's options as a sweep's base, and the finding's grid as a SweepGrid (its preset's, with the
        finding's values)."""
        import json

        from difftui.engine.config.catalog import Catalog, load_preset
        from difftui.engine.config.model import SweepGrid
        from difftui.engine.sweeps import RunSpec
        catalog = Catalog(self.preset_dirs)
        with Store(self.db_path) as store:
            run = store.get_run(run_id)
        if run is None:
            raise RuntimeError(f"run {run_id} is gone")
        spec = RunSpec.from_config(json.loads(run["config"]), catalog)
        axes = {k: list(v) for k, v in fix.axes.items()}
        path = catalog.files("sweeps").get(fix.preset) if fix.preset else None
        grid = load_preset("sweeps", path) if path is not None else None
        if grid is None or grid.axes != axes:
            grid = SweepGrid(name=fix.preset or "fix", description=f"the fix grid of playbook {fix.section}",
                             playbook=fix.section, axes=axes)
        self.post_message(FixSweepReady(spec, grid))

    def on_fix_sweep_ready(self, message: FixSweepReady) -> None:
        from difftui.tui.screens.sweep_setup import SweepSetupScreen
        self.push_screen(SweepSetupScreen(message.spec, message.grid))

    def track_supervisor(self, sweep_id: int, proc: subprocess.Popen) -> None:
        self.supervisors[sweep_id] = proc

    @work(thread=True, group="clone", exit_on_error=False)
    def clone_run(self, run_id: int) -> None:
        """Turn run `run_id`'s config back into new-run options; the review screen opens with them filled in."""
        import json

        from difftui.engine.config.catalog import Catalog
        from difftui.engine.sweeps import RunSpec
        with Store(self.db_path) as store:
            run = store.get_run(run_id)
        if run is None:
            raise RuntimeError(f"run {run_id} is gone")
        self.post_message(CloneReady(run_id, RunSpec.from_config(json.loads(run["config"]), Catalog(self.preset_dirs))))

    def on_clone_ready(self, message: CloneReady) -> None:
        from difftui.tui.screens.review import ReviewScreen
        spec = message.spec
        choices = {"datasets": spec.dataset, "backbones": spec.backbone, "samplers": spec.sampler,
                   "recipes": spec.recipe}
        self.push_screen(ReviewScreen(choices, clone_of=message.run_id, spec=spec))

    # -- run actions: the engine's launch API, called from workers ------------------------------------------------

    def track(self, key: int | tuple[str, int], proc: subprocess.Popen) -> None:
        """An engine (by run id) or an evaluator (("eval", job id)) this app started: reaped, never killed."""
        self.processes[key] = proc

    def reap_children(self) -> None:
        """Collect the exit status of engines this app started, so none lingers as a zombie (never kills)."""
        for key, proc in list(self.processes.items()):
            if proc.poll() is not None:
                self.processes.pop(key, None)
        for sweep_id, proc in list(self.supervisors.items()):
            if proc.poll() is not None:
                self.supervisors.pop(sweep_id, None)

    # Each action is the engine's use case (difftui.engine.launch.runs, difftui.engine.eval.start), the same call the
    # CLI makes; its Outcome is shown as it is, and a refusal (LaunchError, one line) as a warning.

    def _run_action(self, run_id: int, action: str, call, *, hint: str = "") -> None:
        from difftui.engine.launch.outcome import LaunchError
        from difftui.engine.launch.runs import StepsExhausted
        try:
            outcome = call()
        except StepsExhausted as e:                  # resume with no step left: ask how far to go
            self.post_message(StepsNeeded(run_id, e.step, e.total_steps, e.asked))
            return
        except LaunchError as e:
            self.post_message(RunActionDone(run_id, action, in_tui_words(one_line(e)), refused=True))
            return
        if outcome.proc is not None:
            self.track(("eval", outcome.job_id) if outcome.job_id is not None else run_id, outcome.proc)
        self.post_message(RunActionDone(run_id, action, outcome.message + (hint if outcome.proc else "")))

    @work(thread=True, group="run-action", exit_on_error=False)
    def stop_run(self, run_id: int) -> None:
        from difftui.engine.launch.runs import request_stop
        self._run_action(run_id, "stop", lambda: request_stop(self.db_path, run_id))

    @work(thread=True, group="run-action", exit_on_error=False)
    def resume_run(self, run_id: int, total_steps: int | None = None) -> None:
        """Resume from the newest checkpoint; `total_steps` sets a new end (a finished run trained further). A run with
        no step left asks how far to go (StepsExhausted -> StepsNeeded -> TrainFurtherScreen)."""
        from difftui.engine.launch.runs import resume
        self._run_action(run_id, "resume", lambda: resume(self.db_path, run_id, total_steps=total_steps))

    def on_steps_needed(self, message: StepsNeeded) -> None:
        from difftui.tui.advice import steps_exhausted
        from difftui.tui.screens.train_further import TrainFurtherScreen
        if message.asked is not None:
            self.notify(steps_exhausted(message.run_id, message.step, message.total_steps, message.asked),
                        title="resume", severity="warning")
            return

        def chosen(steps: int | None) -> None:
            if steps is not None:
                self.resume_run(message.run_id, steps)

        self.push_screen(TrainFurtherScreen(message.run_id, message.step, message.total_steps), chosen)

    def ask_evaluation(self, run_id: int) -> None:
        """`v`: the counts and the estimate first (EvaluateScreen, the CLI's defaults), then `evaluate_run`."""
        from difftui.tui.screens.evaluate import EvaluateScreen

        def chosen(request) -> None:
            if request is not None:
                self.evaluate_run(run_id, request)

        self.push_screen(EvaluateScreen(self.db_path, run_id), chosen)

    @work(thread=True, group="run-action", exit_on_error=False)
    def evaluate_run(self, run_id: int, request=None) -> None:
        """A live engine evaluates its panel between two steps; any other run is evaluated by the evaluator process
        (`python -m difftui.engine eval`, own session, progress in runs.db; `t` on the dashboard shows it): the panel,
        the held-out NLL on `request.nll_images` images and, when FID samples are asked and the Inception weights are
        found, FID and precision/recall. No torch in this process."""
        from difftui.engine.eval.start import EvalRequest, start_evaluation
        from difftui.engine.launch.outcome import LaunchError
        request = request or EvalRequest()
        try:
            outcome = start_evaluation(self.db_path, run_id, request)
        except LaunchError as e:
            self.post_message(RunActionDone(run_id, "evaluate", in_tui_words(one_line(e)), refused=True))
            return
        if outcome.proc is not None:
            self.track(("eval", outcome.job_id), outcome.proc)
        if not outcome.fid_skipped:
            hint = " (t on the dashboard shows its progress)" if outcome.proc else ""
            self.post_message(RunActionDone(run_id, "evaluate", outcome.message + hint))
            return
        no_fid = self.fid_skipped(os.environ.get("DIFFTUI_INCEPTION"))
        self.post_message(RunActionDone(run_id, "evaluate", f"evaluating run {run_id} (job {outcome.job_id}); t shows "
                                        f"its progress; {no_fid.text}", no_fid.detail, no_fid.topic))

    @staticmethod
    def fid_skipped(explicit: str | None):
        """The short line and the `?` details for an evaluation without FID (tui/advice.py)."""
        from difftui.engine.eval.metrics.weights import INCEPTION_FILE, INCEPTION_URL, inception_candidates
        from difftui.tui.advice import fid_skipped
        return fid_skipped(explicit, inception_candidates(), INCEPTION_FILE, INCEPTION_URL)

    @work(thread=True, group="run-action", exit_on_error=False)
    def delete_run(self, run_id: int) -> None:
        from difftui.engine.launch.runs import delete_run
        self._run_action(run_id, "delete", lambda: delete_run(self.db_path, run_id))

    def on_run_action_done(self, message: RunActionDone) -> None:
        if message.detail:
            self.keep_detail(message.topic or message.action, message.detail)
        self.notify(message.text, title=message.action, severity="warning" if message.refused else "information")
        refresh = getattr(self.screen, "refresh_now", None)
        if refresh is not None:
            refresh()
