"""Issue 16 item 5: `v` shows what the evaluation will cost before it starts and lets the user choose the counts
(held-out NLL images, FID samples), the estimate repriced as they change; the CLI's defaults."""

from __future__ import annotations

from tui_helpers import make_prepared_db, no_blink, pilot_wait

from difftui.engine.eval.start import EvalRequest
from difftui.engine.store import Store
from difftui.tui.app import DifftuiApp
from difftui.tui.screens.dashboard import DashboardScreen
from difftui.tui.screens.evaluate import EvaluateScreen, parse_count
from difftui.tui.screens.history import HistoryScreen

SIZE = (160, 45)


def priced_db(tmp_path):
    """The prepared runs; run 1 (digits, unet-demo, DDIM panel N=10/20/50/100, T=1000) logged 100 img/s
    last (as a CPU would)."""
    db = make_prepared_db(tmp_path)
    with Store(db) as store:
        store.write_batch(1, metrics=[(s, 0.0, "img_per_s", 100.0, 0.0) for s in range(1001, 1006)])
    return db


async def open_dialog(pilot, run_id: int = 1) -> EvaluateScreen:
    app = pilot.app
    await pilot_wait(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded, 30, "history")
    app.open_dashboard(run_id)
    await pilot_wait(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.polls, 30, "the dashboard")
    await pilot.press("v")
    dialog = await pilot_wait(pilot, lambda: isinstance(app.screen, EvaluateScreen) and app.screen.pricing is not None
                            and app.screen, 30, "the priced dialog")
    no_blink(app)
    for field in dialog.query("Input"):
        field.cursor_blink = False
    await pilot.pause()
    return dialog


def cost_text(dialog) -> str:
    return str(dialog.query_one("#evaluate-cost").render())


def test_counts_are_whole_numbers_and_fid_needs_two_samples_or_none():
    assert parse_count("1,000", "NLL images", zero=False) == (1000, "")
    assert parse_count("0", "FID samples", zero=True) == (0, "")
    assert parse_count("0", "NLL images", zero=False)[1] == "NLL images: '0' is not a whole number above 0"
    assert parse_count("1", "FID samples", zero=True)[1] == "FID samples: FID needs at least 2 samples (or 0: no FID)"
    assert parse_count("ten", "FID samples", zero=True)[1] == "FID samples: 'ten' is not a whole number"


async def test_v_shows_the_estimate_reprices_it_as_the_counts_change_and_returns_the_counts(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFTUI_CACHE", str(tmp_path / "cache"))          # no Inception weights
    monkeypatch.delenv("DIFFTUI_INCEPTION", raising=False)
    db = priced_db(tmp_path)
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_dialog(pilot)
        # The CLI's defaults: 8 NLL images, no FID. 300 image-forwards/s (100 img/s x 3): the panel's
        # 64 x (50 + 10 + 20 + 100) = 11,520 forwards take 38 s, 8 x 1,000 chain steps 27 s.
        assert dialog.query_one("#evaluate-nll").value == "8" and dialog.query_one("#evaluate-fid").value == "0"
        text = cost_text(dialog)
        assert text.splitlines()[0] == "estimate: about 65 s"
        assert "  panel: 4 samplers x 64 images, NFE 180: 38 s" in text
        assert "  held-out NLL: 8 images x 1,000 steps: 27 s" in text
        assert "at 300 image-forwards/s, from run 1's training speed on " in text
        dialog.query_one("#evaluate-nll").value = "16"
        await pilot.pause()
        assert "  held-out NLL: 16 images x 1,000 steps: 53 s" in cost_text(dialog)
        assert cost_text(dialog).splitlines()[0] == "estimate: about 2 min"        # 92 s, said in minutes
        dialog.query_one("#evaluate-fid").value = "1"
        await pilot.pause()
        assert str(dialog.query_one("#evaluate-error").render()) == \
            "FID samples: FID needs at least 2 samples (or 0: no FID)"
        await pilot.press("enter")                      # refused in the dialog: it stays open
        assert app.screen is dialog
        dialog.query_one("#evaluate-fid").value = "1000"
        await pilot.pause()
        text = cost_text(dialog)
        assert str(dialog.query_one("#evaluate-error").render()) == ""
        assert "  FID: " not in text                  # without the weights FID is skipped, and not priced
        assert text.splitlines()[-1] == "no FID: the Inception weights are missing (? says where to put them)"
        dialog.query_one("#evaluate-fid").value = "0"
        await pilot.pause()
        chosen = []
        app.pop_screen()
        app.push_screen(EvaluateScreen(db, 1), chosen.append)
        dialog = await pilot_wait(pilot, lambda: isinstance(app.screen, EvaluateScreen) and app.screen.pricing
                                is not None and app.screen, 30, "the dialog again")
        dialog.query_one("#evaluate-nll").value = "16"
        await pilot.press("enter")
        await pilot_wait(pilot, lambda: chosen, 10, "the dialog's answer")
        assert chosen == [EvalRequest(nll_images=16, samples=None, fid_if_found=False)]
        app.push_screen(EvaluateScreen(db, 1), chosen.append)
        await pilot_wait(pilot, lambda: isinstance(app.screen, EvaluateScreen), 10, "the dialog")
        await pilot.press("escape")
        await pilot_wait(pilot, lambda: len(chosen) == 2, 10, "the cancel")
        assert chosen[1] is None
    with Store(db) as store:
        assert store.jobs_for(1) == []                  # nothing was started by the dialog itself
