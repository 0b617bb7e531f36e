"""The difftui app: opens runs.db, shows the run history, and starts / stops / resumes engine processes.

The app never trains and never stops a run by closing: engines are detached processes (their own session, stdin from
/dev/null) that write to runs.db; the app only reads that database from worker threads and sends commands through it.
Reopening the app reattaches to whatever is still running, and a run whose process is gone is reaped as crashed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterable

from textual import work
from textual.app import App, ComposeResult
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from difftui.engine.store import ACTIVE_STATUSES, Store
from difftui.tui import bindings
from difftui.tui.messages import DatabaseReady, RunActionDone
from difftui.tui.screens.base import one_line

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
        self.processes: dict[int, subprocess.Popen] = {}       # engines this app started (reaped, never killed)
        self.sub_title = str(self.db_path)

    def compose(self) -> ComposeResult:
        yield Static(f"opening {self.db_path} ...", id="splash", markup=False)

    def on_mount(self) -> None:
        self.open_database()

    # -- the database ---------------------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="open-db", exit_on_error=False)
    def open_database(self) -> None:
        """Create runs.db when it is missing, reap runs whose engine died, count the runs."""
        with Store(self.db_path) as store:
            store.reap_dead_runs()
            count = len(store.list_runs())
        self.post_message(DatabaseReady(count))

    def on_database_ready(self, message: DatabaseReady) -> None:
        from difftui.tui.screens.history import HistoryScreen
        self.push_screen(HistoryScreen())
        if message.run_count == 0:
            self.action_new_run()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.report_worker_error(event.worker, event.worker.error)

    def report_worker_error(self, worker: Worker, error: BaseException | None) -> None:
        """The one place a failed worker becomes a message for the user (screens forward theirs here)."""
        text = one_line(error)
        if worker.group == "open-db":
            self.query_one("#splash", Static).update(f"cannot open {self.db_path}: {text}\nctrl+q quits")
        self.notify(text, title=worker.group, severity="error", timeout=10)

    # -- navigation -----------------------------------------------------------------------------------------------

    def action_new_run(self, choices: dict[str, str] | None = None) -> None:
        from difftui.tui.screens.new_run import PresetPickerScreen
        self.push_screen(PresetPickerScreen("datasets", dict(choices or {})))

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

    # -- run actions: the engine's launch API, called from workers ------------------------------------------------

    def track(self, run_id: int, proc: subprocess.Popen) -> None:
        self.processes[run_id] = proc

    def reap_children(self) -> None:
        """Collect the exit status of engines this app started, so none lingers as a zombie (never kills)."""
        for run_id, proc in list(self.processes.items()):
            if proc.poll() is not None:
                self.processes.pop(run_id, None)

    @work(thread=True, group="run-action", exit_on_error=False)
    def stop_run(self, run_id: int) -> None:
        from difftui.engine.launch import request_stop
        with Store(self.db_path) as store:
            run = store.get_run(run_id)
        if run is None or run["status"] not in ACTIVE_STATUSES:
            status = run["status"] if run else "deleted"
            self.post_message(RunActionDone(run_id, "stop", f"run {run_id} is not running ({status})"))
            return
        request_stop(self.db_path, run_id)
        self.post_message(RunActionDone(run_id, "stop", f"stop requested for run {run_id}"))

    @work(thread=True, group="run-action", exit_on_error=False)
    def resume_run(self, run_id: int) -> None:
        from difftui.engine.launch import resume
        proc = resume(self.db_path, run_id)          # RuntimeError (one line) while the run is alive
        self.track(run_id, proc)
        self.post_message(RunActionDone(run_id, "resume", f"run {run_id} resumed from its newest checkpoint"))

    @work(thread=True, group="run-action", exit_on_error=False)
    def evaluate_run(self, run_id: int) -> None:
        """A live engine evaluates its panel between two steps; any other run is evaluated by the evaluator process
        (`python -m difftui.engine eval`, own session, progress in runs.db; `t` on the dashboard shows it): the panel,
        the held-out NLL and, when the Inception weights are found, FID and precision/recall at the quick count.
        No torch in this process."""
        from difftui.engine.eval_jobs import spawn_evaluator
        from difftui.engine.metrics.weights import InceptionWeightsMissing, locate_inception
        with Store(self.db_path) as store:
            store.reap_dead_runs()
            run = store.get_run(run_id)
            if run is not None and store.is_alive(run):
                store.send_command(run_id, "evaluate")
                self.post_message(RunActionDone(run_id, "evaluate", f"evaluate requested for run {run_id}"))
                return
            busy = [j for j in store.jobs_for(run_id, active=True)]
        if busy:
            self.post_message(RunActionDone(run_id, "evaluate", f"run {run_id} is already being evaluated "
                                            f"(job {busy[-1]['id']}); t shows its progress"))
            return
        args, note = ["--quick"], ""
        try:
            found = locate_inception()
        except InceptionWeightsMissing as e:
            found, note = None, str(e)
        if found is not None:
            args.append("--fid")
        elif not note:
            from difftui.engine.metrics.weights import missing_message
            note = missing_message()
        job_id, proc = spawn_evaluator(self.db_path, run_id, args)
        self.track_job(job_id, proc)
        text = f"evaluating run {run_id} (job {job_id}); t shows its progress"
        if note:
            text += f". FID skipped: {note}"
        self.post_message(RunActionDone(run_id, "evaluate", text))

    def track_job(self, job_id: int, proc: subprocess.Popen) -> None:
        """Evaluator processes this app started: reaped with the engines by `reap_children`, never killed."""
        self.processes[("eval", job_id)] = proc  # type: ignore[index]

    @work(thread=True, group="run-action", exit_on_error=False)
    def delete_run(self, run_id: int) -> None:
        with Store(self.db_path) as store:
            store.reap_dead_runs()
            run = store.get_run(run_id)
            if run is None:
                return
            if run["status"] in ACTIVE_STATUSES:
                self.post_message(RunActionDone(run_id, "delete", f"run {run_id} is {run['status']}: stop it first"))
                return
            store.delete_run(run_id)
        self.post_message(RunActionDone(run_id, "delete", f"run {run_id} deleted"))

    def on_run_action_done(self, message: RunActionDone) -> None:
        self.notify(message.text, title=message.action)
        refresh = getattr(self.screen, "refresh_now", None)
        if refresh is not None:
            refresh()
