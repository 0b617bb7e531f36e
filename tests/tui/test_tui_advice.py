"""Issue 16 item 8: the TUI gives the TUI's advice, not the CLI's. The engine's lines name flags (`--set`,
`--off-tier`, `--max-steps`, `--inception PATH`, `difftui data check`) that do not exist in the TUI; the TUI puts them
in its own terms (a field, a key), keeps its toasts short and puts the details behind `?`.

The engine lines checked here are produced by the engine itself (its refusals, its missing-data messages), so a
reworded engine message that the TUI no longer translates fails this test rather than reaching a user.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path

import pytest
from tui_helpers import engine_log, kill_engines, pilot_wait

from difftui.engine.config.catalog import Catalog
from difftui.engine.config.model import PresetError
from difftui.engine.data import DataError
from difftui.engine.eval.metrics.weights import INCEPTION_FILE
from difftui.engine.launch.runs import StepsExhausted, new_run, resume
from difftui.engine.store import Store
from difftui.tui.advice import FID_TOPIC, in_tui_words
from difftui.tui.app import DifftuiApp
from difftui.tui.screens.dashboard import DashboardScreen
from difftui.tui.screens.evaluate import EvaluateScreen
from difftui.tui.screens.help import HelpScreen
from difftui.tui.screens.history import HistoryScreen
from difftui.tui.screens.train_further import TrainFurtherScreen, parse_steps

SIZE = (140, 40)
# A flag, or a difftui command to type.
CLI = re.compile(r"--[a-z]|\bdifftui (?:run|ls|show|stop|resume|eval|data|sweep|report|presets|delete|sample)\b")


def _raised(fn, *errors) -> str:
    try:
        fn()
    except errors as e:
        return str(e)
    raise AssertionError(f"{fn} raised nothing")


def engine_lines(tmp_path: Path) -> dict[str, str]:
    """Lines the engine really says, each with a flag the TUI does not have."""
    from difftui.engine.data import cifar, folder, imagenet64
    from difftui.engine.eval.metrics.weights import missing_message
    from difftui.engine.sweeps.plan import choose_values
    catalog = Catalog()
    cifar10 = replace(catalog.get("datasets", "cifar10"), root=str(tmp_path / "nowhere"))
    images = replace(catalog.get("datasets", "image-folder"), root=str(tmp_path / "none"))
    return {
        "cifar10 missing": cifar._missing_message(cifar10),
        "imagenet64 missing": imagenet64._missing_message(cifar10, [tmp_path / "val_data.npz"]),
        "image folder missing": _raised(lambda: folder.find_images(images), DataError),
        "off-tier": _raised(lambda: catalog.resolve(dataset="digits", backbone="unet-cifar10", device="cpu"),
                            PresetError),
        "bad override": _raised(lambda: catalog.resolve(overrides=["recipe.batch_size"], device="cpu"),
                                PresetError),
        "flops lambda": _raised(lambda: catalog.resolve(recipe="p5-dydit-finetune", device="cpu"), PresetError),
        "off-grid": _raised(lambda: choose_values(catalog.get("sweeps", "p1-dropout"), {"recipe.dropout": [0.15]},
                                                  False), PresetError),
        "inception": missing_message(),
        "completed": str(StepsExhausted("run 3 already completed all 1000 steps (resume with a larger --max-steps "
                                        "to train further)", run_id=3, step=1000, total_steps=1000)),
    }


def test_every_engine_hint_reaches_the_tui_in_its_own_words(tmp_path):
    lines = engine_lines(tmp_path)
    for what, line in lines.items():
        assert CLI.search(line), f"{what}: the engine's line changed; is this test still checking anything? {line}"
        said = in_tui_words(line)
        assert not CLI.search(said), f"{what}: {said}"
    assert in_tui_words(lines["cifar10 missing"]).endswith(
        "put the files there, or set dataset.root=DIR in the review's overrides, "
        "or set dataset.download=true in the review's overrides when online")
    assert in_tui_words(lines["off-tier"]).endswith("tick off-tier in the review to run it anyway")
    assert in_tui_words(lines["bad override"]).startswith("overrides 'recipe.batch_size': expected key=value")
    assert "choose off-grid (the off-grid box) to run it anyway" in in_tui_words(lines["off-grid"])
    # An engine event (engine/run/trainer.py's warning about skipped files), shown in the dashboard's event log.
    event = "3 unreadable file(s) of 'faces' skipped (difftui data check faces lists them with the reason)"
    assert in_tui_words(event) == ("3 unreadable file(s) of 'faces' skipped (the data check (c on the new run's "
                                   "dataset step) lists them with the reason)")


def test_train_further_accepts_only_a_number_past_the_runs_step():
    assert parse_steps("2,000", 1000) == (2000, "")
    assert parse_steps(" 1500 ", 1000) == (1500, "")
    assert parse_steps("1000", 1000) == (None, "the run is at step 1,000: enter more than that")
    assert parse_steps("lots", 1000) == (None, "'lots' is not a whole number of steps")


async def test_the_data_check_of_a_missing_data_set_names_the_review_field_not_a_flag(tmp_path, monkeypatch):
    from difftui.tui.screens.data_check import DataCheckScreen
    presets = tmp_path / "presets" / "datasets"
    presets.mkdir(parents=True)
    text = (Path(Catalog().files("datasets")["cifar10"]).read_text()
            .replace("name: cifar10", "name: my-cifar"))
    text = re.sub(r"(?m)^root:.*$", f"root: {tmp_path / 'nowhere'}", text)
    if "root:" not in text:
        text += f"\nroot: {tmp_path / 'nowhere'}\n"
    (presets / "my-cifar.yaml").write_text(text)
    app = DifftuiApp(db_path=tmp_path / "runs.db", preset_dirs=[tmp_path / "presets"])
    async with app.run_test(size=SIZE) as pilot:
        await pilot_wait(pilot, lambda: app.preset_entries is not None, 30, "the presets")
        app.push_screen(DataCheckScreen("my-cifar"))
        screen = await pilot_wait(pilot, lambda: isinstance(app.screen, DataCheckScreen) and app.screen.is_mounted
                                and app.screen.query("#data-check-status.error") and app.screen, 60, "the refusal")
        status = str(screen.query_one("#data-check-status").render())
        assert "CIFAR-10 not found" in status
        assert "set dataset.root=DIR in the review's overrides" in status
        assert not CLI.search(status)


TINY = ["recipe.batch_size=8", "backbone.arch.model_channels=16", "sampler.grid.steps=2", "recipe.log_every=2",
        "recipe.grid_every=100000", "recipe.snapshot_every=100000"]


def _finished(db: Path, run_id: int, step: int) -> bool:
    with Store(db) as store:
        run = store.get_run(run_id)
    return run is not None and run["status"] == "completed" and run["step"] == step


@pytest.mark.slow
@pytest.mark.usefixtures("engine_hygiene")
async def test_r_on_a_finished_run_asks_how_far_and_trains_it_further_and_v_says_no_fid_in_short(tmp_path):
    db = tmp_path / "runs.db"
    run_id = new_run(db, Catalog().resolve(overrides=TINY, max_steps=4, device="cpu")).run_id
    deadline = time.monotonic() + 180
    while not _finished(db, run_id, 4):
        assert time.monotonic() < deadline, engine_log(db, run_id)
        time.sleep(0.5)
    with pytest.raises(StepsExhausted) as refused:          # what the CLI gets: its own words
        resume(db, run_id)
    assert "--max-steps" in str(refused.value) and refused.value.step == 4
    try:
        app = DifftuiApp(db_path=db)
        async with app.run_test(size=SIZE) as pilot:
            await pilot_wait(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded, 30, "history")
            app.open_dashboard(run_id)
            await pilot_wait(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.polls, 30, "dash")
            await pilot.press("r")
            ask = await pilot_wait(pilot, lambda: isinstance(app.screen, TrainFurtherScreen) and app.screen, 30,
                                 "the train-further question")
            assert "completed all 4 steps" in str(ask.query_one("#further-title").render())
            assert not any(CLI.search(str(n.message)) for n in app._notifications)
            field = ask.query_one("#further-steps")
            field.value = "3"
            await pilot.press("enter")                        # not past the run's step: said in the dialog
            assert app.screen is ask and "enter more than that" in str(ask.query_one("#further-error").render())
            field.value = "8"
            await pilot.press("enter")
            await pilot_wait(pilot, lambda: isinstance(app.screen, DashboardScreen), 10, "the dashboard again")
            await pilot_wait(pilot, lambda: any("resuming from its newest checkpoint to train on to step 8"
                                              in str(n.message) for n in app._notifications), 30, "the resume")
            await pilot_wait(pilot, lambda: _finished(db, run_id, 8), 180,
                           lambda: f"the run to finish at step 8; engine.log:\n{engine_log(db, run_id)}")

            # v asking FID without the Inception weights: one short line, no flag; the details are behind ?.
            await pilot.press("v")
            ask_eval = await pilot_wait(pilot, lambda: isinstance(app.screen, EvaluateScreen) and app.screen.pricing
                                      and app.screen, 30, "the evaluate dialog")
            ask_eval.query_one("#evaluate-fid").value = "100"
            await pilot.pause()
            note = str(ask_eval.query_one("#evaluate-cost").render()).splitlines()[-1]
            assert note == "no FID: the Inception weights are missing (? says where to put them)"
            await pilot.press("enter")
            toast = await pilot_wait(pilot, lambda: next((str(n.message) for n in app._notifications
                                                        if "evaluating run" in str(n.message)), None), 30, "v's line")
            for job in [k for k in app.processes if isinstance(k, tuple)]:
                app.processes[job].terminate()                 # the evaluation itself is not what is tested here
            assert "no FID: the Inception weights are missing (? says where to put them)" in toast
            assert not CLI.search(toast) and len(toast) < 120
            await pilot.press("question_mark")
            help_screen = await pilot_wait(pilot, lambda: isinstance(app.screen, HelpScreen) and app.screen, 10, "help")
            details = str(help_screen.query_one("#help-messages").render())      # first, above the keys
            assert FID_TOPIC in details and INCEPTION_FILE in details
            assert str(Path(app.details[FID_TOPIC].split("Put the file in ")[1].split("/ ")[0])) in details
            assert "few-step curve" in str(help_screen.query_one("#help-details").render())   # the screen's note
    finally:
        kill_engines(db)
