"""The TUI shows a failed worker as the engine's one line (engine/text.py), the same line the CLI prints after
`difftui: error:`: the whole message with its white space folded, the type named only when it says something."""

from __future__ import annotations

from types import SimpleNamespace

from tui_helpers import pilot_wait

from difftui.engine.config.model import PresetError
from difftui.engine.text import one_line
from difftui.tui.app import DifftuiApp


async def test_a_failed_worker_is_one_toast_line_with_its_whole_message(tmp_path):
    app = DifftuiApp(db_path=tmp_path / "runs.db")
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot_wait(pilot, lambda: not app.opening, 60, "the database opened")
        for error, shown in ((OSError("disk full\nwhile writing runs.db-wal"),
                              "OSError: disk full while writing runs.db-wal"),
                             (PresetError("recipe 'p1':\n  key 'lr': expected a number"),
                              "recipe 'p1': key 'lr': expected a number")):
            app.report_worker_error(SimpleNamespace(group="poll"), error)
            await pilot.pause()
            assert str(list(app._notifications)[-1].message) == one_line(error) == shown
