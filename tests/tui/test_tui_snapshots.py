"""SVG snapshots of every screen at a fixed terminal size (pytest-textual-snapshot; `--snapshot-update` to accept).

Deterministic by construction: the runs come from a prepared database with fixed times (UTC), the grid is drawn
from a formula and shown with half-blocks, input cursors do not blink, and each snapshot waits until its workers
have delivered (presets read, config resolved and measured, dashboard polled).
"""

from __future__ import annotations

from tui_helpers import make_dydit_db, no_blink, pilot_wait

from difftui.tui.app import DifftuiApp
from difftui.tui.screens.confirm import ConfirmScreen
from difftui.tui.screens.dashboard import DashboardScreen
from difftui.tui.screens.data_card import DataCardScreen
from difftui.tui.screens.data_check import DataCheckScreen
from difftui.tui.screens.grid_view import GridViewScreen
from difftui.tui.screens.help import HelpScreen
from difftui.tui.screens.history import HistoryScreen
from difftui.tui.screens.new_run import PresetPickerScreen
from difftui.tui.screens.review import ReviewScreen

SIZE = (140, 40)
NARROW = (100, 30)
WIDE = (160, 45)


async def _history(pilot) -> None:
    app = pilot.app
    await pilot_wait(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.settled, 30,
                   "history (its findings column judged)")
    no_blink(app)
    await pilot.pause()


async def _picker(pilot, kind: str) -> None:
    app = pilot.app
    await pilot_wait(pilot, lambda: isinstance(app.screen, PresetPickerScreen) and app.screen.kind == kind
                   and app.screen.entries, 30, f"the {kind} picker")
    no_blink(app)
    await pilot.pause()


def test_snapshot_history(snap_compare, prepared_db):
    assert snap_compare(DifftuiApp(db_path=prepared_db), terminal_size=SIZE, run_before=_history)


def test_snapshot_delete_confirm(snap_compare, prepared_db):
    async def before(pilot):
        await _history(pilot)
        await pilot.press("down", "d")
        await pilot_wait(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), 10, "the confirm dialog")
        await pilot.pause()

    assert snap_compare(DifftuiApp(db_path=prepared_db), terminal_size=SIZE, run_before=before)


def test_snapshot_dataset_picker(snap_compare, tmp_path):
    async def before(pilot):
        await _picker(pilot, "datasets")          # an empty database opens the new-run flow

    assert snap_compare(DifftuiApp(db_path=tmp_path / "runs.db"), terminal_size=SIZE, run_before=before)


def test_snapshot_backbone_picker(snap_compare, tmp_path):
    async def before(pilot):
        await _picker(pilot, "datasets")
        await pilot.press("enter")
        await _picker(pilot, "backbones")

    assert snap_compare(DifftuiApp(db_path=tmp_path / "runs.db"), terminal_size=SIZE, run_before=before)


async def _review(pilot) -> None:
    """Through the four pickers with their defaults, to the review screen."""
    for kind in ("datasets", "backbones", "samplers", "recipes"):
        await _picker(pilot, kind)
        await pilot.press("enter")


def test_snapshot_review(snap_compare, tmp_path):
    async def before(pilot):
        app = pilot.app
        await _review(pilot)
        await pilot_wait(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen.facts, 60,
                       "the measured config")
        no_blink(app)
        await pilot.pause()

    assert snap_compare(DifftuiApp(db_path=tmp_path / "runs.db"), terminal_size=SIZE, run_before=before)


def test_snapshot_dashboard(snap_compare, prepared_db):
    async def before(pilot):
        app = pilot.app
        await _history(pilot)
        await pilot.press("down", "down", "down", "enter")
        await pilot_wait(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.polls >= 2
                       and app.screen.query_one("#grid").shown_id is not None, 30, "the dashboard (judged)")
        await pilot.pause()

    assert snap_compare(DifftuiApp(db_path=prepared_db), terminal_size=SIZE, run_before=before)


async def _dashboard(pilot, run_id: int) -> None:
    app = pilot.app
    await _history(pilot)
    app.open_dashboard(run_id)
    await pilot_wait(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.polls >= 2
                   and app.screen.query_one("#grid").shown_id is not None, 30, "the dashboard (judged)")
    no_blink(app)
    await pilot.pause()


def test_snapshot_dashboard_dydit_flops_panel_and_metric_grid(snap_compare, tmp_path):
    """A DyDiT run on a GPU: the metric grid (L_simple, F_dyn/F_static with its target and band, ...), the FLOPs
    panel with its verdict, the GPU panel with a failed reading, the grid with its sampler and renderer."""
    db = make_dydit_db(tmp_path)

    async def before(pilot):
        await _dashboard(pilot, 1)

    assert snap_compare(DifftuiApp(db_path=db), terminal_size=WIDE, run_before=before)


def test_snapshot_dashboard_at_100x30(snap_compare, tmp_path):
    db = make_dydit_db(tmp_path)

    async def before(pilot):
        await _dashboard(pilot, 1)

    assert snap_compare(DifftuiApp(db_path=db), terminal_size=NARROW, run_before=before)


def test_snapshot_help_on_the_dashboard(snap_compare, prepared_db):
    async def before(pilot):
        await _dashboard(pilot, 1)
        await pilot.press("question_mark")
        await pilot_wait(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), 10, "the help screen")
        await pilot.pause()

    assert snap_compare(DifftuiApp(db_path=prepared_db), terminal_size=SIZE, run_before=before)


def test_snapshot_history_at_100x30(snap_compare, prepared_db):
    assert snap_compare(DifftuiApp(db_path=prepared_db), terminal_size=NARROW, run_before=_history)


COMPACT = (80, 24)


def test_snapshot_dashboard_compact_at_80x24(snap_compare, tmp_path):
    """Issue 16 item 9: below 120x30 the dashboard is the metric grid and one side panel (here the grid, its samples
    at one pixel per half-block pixel, as many as fit, said in the panel's subtitle); `p` in the footer."""
    db = make_dydit_db(tmp_path)

    async def before(pilot):
        await _dashboard(pilot, 1)

    assert snap_compare(DifftuiApp(db_path=db), terminal_size=COMPACT, run_before=before)


def test_snapshot_dashboard_compact_side_panel_switched_to_flops(snap_compare, tmp_path):
    db = make_dydit_db(tmp_path)

    async def before(pilot):
        await _dashboard(pilot, 1)
        await pilot.press("p", "p", "p")                  # grid -> GPU -> events -> FLOPs budget
        await pilot.pause()

    assert snap_compare(DifftuiApp(db_path=db), terminal_size=COMPACT, run_before=before)


def test_snapshot_compare_ten_runs_in_rows(snap_compare, tmp_path):
    """Issue 16 item 9: ten runs compared at 160x45 are the rows of the tables (each with its colour in the chart,
    which draws no legend over the curves), every value and header whole."""
    from test_tui_layout import make_compare_db

    from difftui.tui.screens.compare import CompareScreen
    db = make_compare_db(tmp_path, 10)

    async def before(pilot):
        app = pilot.app
        await _history(pilot)
        app.open_compare(list(range(1, 11)))
        await pilot_wait(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.polls
                       and app.screen.summaries, 30, "compare")
        await pilot.pause()

    assert snap_compare(DifftuiApp(db_path=db), terminal_size=WIDE, run_before=before)


def test_snapshot_compare_two_runs_at_80x24(snap_compare, tmp_path):
    """Two runs in a narrow terminal: no room for them as columns, so they are rows as well."""
    from test_tui_layout import make_compare_db

    from difftui.tui.screens.compare import CompareScreen
    db = make_compare_db(tmp_path, 2)

    async def before(pilot):
        app = pilot.app
        await _history(pilot)
        app.open_compare([1, 2])
        await pilot_wait(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.polls
                       and app.screen.summaries, 30, "compare")
        await pilot.pause()

    assert snap_compare(DifftuiApp(db_path=db), terminal_size=COMPACT, run_before=before)


def test_snapshot_compare_grids_at_80x24(snap_compare, tmp_path):
    """g in the narrow compare: the grids in place of the chart and the tables."""
    from test_tui_layout import make_compare_db
    from tui_helpers import grid_png

    from difftui.engine.store import Store
    from difftui.tui.screens.compare import CompareScreen
    db = make_compare_db(tmp_path, 2)
    with Store(db) as store:
        for run_id in (1, 2):
            store.add_sample(run_id, step=1000, kind="grid", sampler="DDIM eta=0 N=50 linear", nfe=50,
                             png=grid_png(1000 + 300 * run_id))

    async def before(pilot):
        app = pilot.app
        await _history(pilot)
        app.open_compare([1, 2])
        await pilot_wait(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.polls
                       and len(app.screen.shown) == 2, 30, "compare")
        await pilot.press("g")
        await pilot.pause()

    assert snap_compare(DifftuiApp(db_path=db), terminal_size=COMPACT, run_before=before)


def test_snapshot_evaluations_with_a_long_sampler_at_160x45(snap_compare, tmp_path):
    """The evaluation view at the README's size: a long sampler name wraps in its cell."""
    from difftui.engine.store import Store
    from difftui.tui.widgets.eval_table import EvalTable
    db = make_dydit_db(tmp_path)
    with Store(db) as store:
        for step, sampler, fid in ((1000, "DDIM eta=0 N=50 linear", 14.25),
                                   (2000, "EDM stochastic ImageNet-64 S_churn=40 (P3 T5, ours) N=40", 12.5)):
            store.add_eval_results(1, [dict(step=step, snapshot=step, sampler=sampler, nfe=50, kind="fid", job_id=1,
                                            samples=10_000, repeats=1, protocol={"quick": True}, metric=m, value=v)
                                       for m, v in (("fid", fid), ("seconds", 61.0))])

    async def before(pilot):
        await _dashboard(pilot, 1)
        await pilot.press("t")
        await pilot_wait(pilot, lambda: pilot.app.screen.query_one(EvalTable).row_count == 2, 30, "the evaluations")
        await pilot.pause()

    assert snap_compare(DifftuiApp(db_path=db), terminal_size=WIDE, run_before=before)


def test_snapshot_train_further_at_80x24(snap_compare, prepared_db):
    """r on a run that completed all its steps: how far to train it (the TUI's way, not the CLI's --max-steps)."""
    from difftui.tui.screens.train_further import TrainFurtherScreen

    async def before(pilot):
        await _history(pilot)
        pilot.app.push_screen(TrainFurtherScreen(1, 1000, 1000))
        await pilot_wait(pilot, lambda: isinstance(pilot.app.screen, TrainFurtherScreen), 10, "the question")
        no_blink(pilot.app)
        for widget in pilot.app.screen.query("Input"):
            widget.cursor_blink = False
        await pilot.pause()

    assert snap_compare(DifftuiApp(db_path=prepared_db), terminal_size=COMPACT, run_before=before)


def test_snapshot_grid_view(snap_compare, tmp_path):
    """Enter on the dashboard: the whole fixed-x_T grid at an integer scale, centred, with its caption."""
    db = make_dydit_db(tmp_path)

    async def before(pilot):
        app = pilot.app
        await _dashboard(pilot, 1)
        await pilot.press("enter")
        await pilot_wait(pilot, lambda: isinstance(app.screen, GridViewScreen), 10, "the full grid")
        await pilot.pause()

    assert snap_compare(DifftuiApp(db_path=db), terminal_size=SIZE, run_before=before)


def test_snapshot_data_check(snap_compare, tmp_path, monkeypatch):
    """`c` on the dataset step: the built-in digits' data-quality table (playbook 1.2-1.5). The time the check took
    is the one value that differs between runs: fixed here, after the real check."""
    from difftui.engine.data import quality
    real = quality.check_dataset

    def timed_alike(*args, **kwargs):
        return {**real(*args, **kwargs), "seconds": 12.0, "images_per_s": 150.0}

    monkeypatch.setattr(quality, "check_dataset", timed_alike)
    monkeypatch.setenv("DIFFTUI_DATA_CACHE", str(tmp_path / "data-cache"))   # its table is cached here, not for
                                                                             # the session (the doctor reads it)

    async def before(pilot):
        app = pilot.app
        await _picker(pilot, "datasets")
        await pilot.press("c")
        await pilot_wait(pilot, lambda: isinstance(app.screen, DataCheckScreen) and app.screen.table is not None,
                         120, "the data-quality table")
        await pilot.pause()

    assert snap_compare(DifftuiApp(db_path=tmp_path / "runs.db"), terminal_size=SIZE, run_before=before)


def test_snapshot_data_card(snap_compare, tmp_path, monkeypatch):
    """ctrl+o on the review: the run's data card (source, splits, licence, what the profile vouches for)."""
    monkeypatch.setenv("DIFFTUI_DATA_CACHE", str(tmp_path / "data-cache"))   # without another test's check table
    async def before(pilot):
        app = pilot.app
        await _review(pilot)
        await pilot_wait(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen.config, 60, "the review")
        await pilot.press("ctrl+o")
        await pilot_wait(pilot, lambda: isinstance(app.screen, DataCardScreen)
                         and "Data card" in app.screen.query_one("#data-card").source, 60, "the data card")
        await pilot.pause()

    assert snap_compare(DifftuiApp(db_path=tmp_path / "runs.db"), terminal_size=SIZE, run_before=before)
def _evaluate_dialog_db(tmp_path):
    from tui_helpers import make_prepared_db

    from difftui.engine.store import Store
    db = make_prepared_db(tmp_path)
    with Store(db) as store:
        store.write_batch(1, metrics=[(s, 0.0, "img_per_s", 100.0, 0.0) for s in range(1001, 1006)])
    return db


async def _evaluate_dialog(pilot) -> None:
    """v on run 1's dashboard: the counts and the estimate (issue 16 item 5)."""
    from difftui.tui.screens.evaluate import EvaluateScreen
    await _dashboard(pilot, 1)
    await pilot.press("v")
    await pilot_wait(pilot, lambda: isinstance(pilot.app.screen, EvaluateScreen) and pilot.app.screen.pricing
                   is not None, 30, "the priced dialog")
    no_blink(pilot.app)
    for widget in pilot.app.screen.query("Input"):
        widget.cursor_blink = False
    await pilot.pause()


def test_snapshot_evaluate_dialog_at_160x45(snap_compare, tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFTUI_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DIFFTUI_INCEPTION", raising=False)
    assert snap_compare(DifftuiApp(db_path=_evaluate_dialog_db(tmp_path)), terminal_size=WIDE,
                        run_before=_evaluate_dialog)


def test_snapshot_evaluate_dialog_at_80x24(snap_compare, tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFTUI_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DIFFTUI_INCEPTION", raising=False)
    assert snap_compare(DifftuiApp(db_path=_evaluate_dialog_db(tmp_path)), terminal_size=COMPACT,
                        run_before=_evaluate_dialog)
