"""Issue 15 item 5: the TUI and the CLI make one engine call per use case, so on the same states they give the same
answer. Before, the TUI refused to delete a queued sweep member that the CLI deleted.

Five states, built alike in two databases (one per front end; one process holds both live runs' locks, so even the
owner they name is the same): a live run, a stopped run, a member waiting in the queue of a running sweep, a member
of a completed sweep, and a member waiting in a stopped sweep. Each front end evaluates the live run, then stops and
deletes each run; the answers (allowed or refused, and the line shown) must be equal, and must be the rule's
(launch.runs, eval.start)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from tui_helpers import config_dict, pilot_wait
from typer.testing import CliRunner

from difftui.engine.launch.lock import process_start_time
from difftui.engine.store import Store
from difftui.tui.app import DifftuiApp
from difftui.tui.cli import app as cli
from difftui.tui.messages import RunActionDone
from difftui.tui.screens.history import HistoryScreen
from difftui.tui.widgets.run_table import RunTable

STATES = ("live", "stopped", "waiting in a running sweep", "member of a completed sweep",
          "waiting in a stopped sweep")

HOLD_LOCKS = ("import sys, time\n"
              "from difftui.engine.launch.lock import OwnerLock\n"
              "locks = [OwnerLock(p).acquire('run') for p in sys.argv[1:]]\n"
              "print('locked', flush=True)\n"
              "time.sleep(120)\n")


def _config():
    return config_dict()                            # a whole resolved config: evaluate prices the run from it


def _sweep(store: Store) -> int:
    return store.create_sweep(name="s", preset="p1-dropout", base_config={}, grid={}, spec={}, runs_per_device=1,
                              devices=["cpu"])


def make_states(db: Path) -> dict[str, int]:
    """The five states in a new database (the live run still needs its lock held); {state: run id}."""
    with Store(db) as store:
        ids = {}
        ids["live"] = store.create_run(_config(), name="live", total_steps=10)
        ids["stopped"] = store.create_run(_config(), name="stopped", total_steps=10)
        store.finish_run(ids["stopped"], "stopped")
        running = _sweep(store)                                   # status running, its supervisor not started yet
        ids["waiting in a running sweep"] = store.create_run(_config(), name="w", total_steps=10, sweep_id=running)
        done = _sweep(store)
        ids["member of a completed sweep"] = store.create_run(_config(), name="d", total_steps=10, sweep_id=done)
        store.finish_run(ids["member of a completed sweep"], "completed")
        store.end_sweep(done, "completed")
        held = _sweep(store)
        ids["waiting in a stopped sweep"] = store.create_run(_config(), name="h", total_steps=10, sweep_id=held)
        store.end_sweep(held, "stopped")
    return ids


def hold_live_runs(dbs: list[Path], run_id: int) -> subprocess.Popen:
    """One process that owns the live run of every database (as its engine would), marked running."""
    paths = []
    for db in dbs:
        with Store(db) as store:
            paths.append(str(Path(store.get_run(run_id)["run_dir"]) / "lock"))
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCKS, *paths], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    for db in dbs:
        with Store(db) as store:
            store.mark_running(run_id, pid=proc.pid, pid_start=process_start_time(proc.pid),
                               host=socket.gethostname(), started=1.0)
    return proc


def cli_answer(db: Path, *args: str) -> tuple[bool, str]:
    result = CliRunner().invoke(cli, ["--db", str(db), *args])
    assert "Traceback" not in result.stdout + result.stderr
    if result.exit_code == 0:
        return True, " ".join(result.stdout.split())            # as one line (rich folds it at the console width)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    (line,) = result.stderr.splitlines()
    return False, line.removeprefix("difftui: error: ")


async def tui_answers(db: Path, ids: dict[str, int]) -> tuple[dict, dict]:
    """Evaluate the live run, then stop and delete each run, through the app's own actions; also what the history's
    delete key would say."""
    done: list[RunActionDone] = []

    def hook(message) -> None:
        if isinstance(message, RunActionDone):
            done.append(message)

    app = DifftuiApp(db_path=db)
    answers: dict[str, dict[str, tuple[bool, str]]] = {"evaluate": {}, "stop": {}, "delete": {}}
    async with app.run_test(size=(140, 36), message_hook=hook) as pilot:
        history = await pilot_wait(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded
                                 and app.screen, 30, "the history screen")
        precheck = {state: next(r for r in history.query_one(RunTable).runs if r["id"] == run_id)["delete_refused"]
                    for state, run_id in ids.items()}
        for action, states in (("evaluate", ["live"]), ("stop", list(ids)), ("delete", list(ids))):
            for state in states:
                run_id = ids[state]
                before = len(done)
                getattr(app, f"{action}_run")(run_id)
                await pilot_wait(pilot, lambda n=before: len(done) > n, 30, f"the TUI's {action} of the {state} run")
                message = done[-1]
                assert (message.run_id, message.action) == (run_id, action)
                answers[action][state] = (not message.refused, message.text)
    return answers, precheck


async def test_the_tui_and_the_cli_give_the_same_answers_to_evaluate_stop_and_delete(tmp_path):
    cli_db, tui_db = tmp_path / "cli" / "runs.db", tmp_path / "tui" / "runs.db"
    ids = make_states(cli_db)
    assert make_states(tui_db) == ids
    holder = hold_live_runs([cli_db, tui_db], ids["live"])
    try:
        ok, said = cli_answer(cli_db, "eval", str(ids["live"]))
        estimate, _, outcome = said.partition(" evaluate requested")   # the CLI prices it first (issue 16 item 5)
        cli_evaluate = {"live": (ok, "evaluate requested" + outcome)}
        cli_stop = {state: cli_answer(cli_db, "stop", str(run_id)) for state, run_id in ids.items()}
        cli_delete = {state: cli_answer(cli_db, "delete", str(run_id), "--yes") for state, run_id in ids.items()}
        tui, precheck = await tui_answers(tui_db, ids)
    finally:
        holder.kill()
        holder.wait()
    assert tui["evaluate"] == cli_evaluate
    assert tui["stop"] == cli_stop
    assert tui["delete"] == cli_delete
    # The history's `d` refuses before asking with the very line the engine gives (None: it asks, then deletes); it
    # was read before the stop, while the live run was still running rather than stopping.
    expected = {state: None if allowed else line for state, (allowed, line) in cli_delete.items()}
    expected["live"] = expected["live"].replace("is stopping", "is running")
    assert precheck == expected

    # And the answers are the rule's.
    live, waiting, held = ids["live"], ids["waiting in a running sweep"], ids["waiting in a stopped sweep"]
    assert cli_evaluate["live"][0] and cli_evaluate["live"][1].startswith(f"evaluate requested for run {live}; ")
    assert estimate.startswith("estimate: 11,520 image-forwards (panel: 4 samplers x 64 images, NFE 180)")
    for db in (cli_db, tui_db):                 # a live engine evaluates its panel itself: no evaluator was started
        with Store(db) as store:
            assert store.jobs_for(live) == []
            assert [c["command"] for c in store.take_commands(live)] == ["evaluate", "stop"]
    assert cli_stop["live"] == (True, f"stop requested for run {live}; it checkpoints, then exits")
    assert cli_stop["stopped"] == (False, f"run {ids['stopped']} is not running (status stopped)")
    assert cli_stop["waiting in a running sweep"][1].startswith(f"run {waiting} is not running: it waits in the queue")
    assert cli_stop["member of a completed sweep"][0] is False
    assert cli_stop["waiting in a stopped sweep"][1].startswith(f"run {held} is not running: it waits in the queue")
    owner = f"pid {holder.pid} on {socket.gethostname()}"
    allowed = {state: ok for state, (ok, _) in cli_delete.items()}
    assert allowed == {"live": False, "stopped": True, "waiting in a running sweep": False,
                       "member of a completed sweep": True, "waiting in a stopped sweep": True}
    assert cli_delete["live"][1].startswith(f"run {live} is stopping ({owner}") and "stop it first" in cli_delete["live"][1]
    assert cli_delete["waiting in a running sweep"][1] == (
        f"run {waiting} waits in the queue of sweep 1 (running), whose supervisor starts it; stop the sweep first "
        f"(sweep stop 1)")
    assert cli_delete["stopped"][1] == f"run {ids['stopped']} deleted"
    for db in (cli_db, tui_db):
        with Store(db) as store:
            assert sorted(r["id"] for r in store.list_runs()) == sorted([live, waiting])
