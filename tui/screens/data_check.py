"""The data-quality table of one dataset profile (playbook 1.2, 1.5), reached with `c` from the new-run dataset step.

The check runs in a worker thread (it decodes the sample in a process pool and can take minutes on a large data set);
progress comes back as coalesced messages to a progress bar, the table as markdown. An unchanged data set's table comes
from the cache at once; `r` measures again.
"""

from __future__ import annotations

import time
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Markdown, ProgressBar, Static
from textual.worker import Worker

from difftui.engine.text import one_line
from difftui.tui import bindings
from difftui.tui.advice import in_tui_words
from difftui.tui.screens.base import DifftuiScreen

__all__ = ["DataCheckScreen", "DataCheckProgress", "DataCheckDone", "DataCheckFailed"]

PROGRESS_EVERY_S = 0.1


class DataCheckProgress(Message):
    """How far the check is; a newer one replaces an unhandled older one."""

    def __init__(self, done: int, total: int, what: str) -> None:
        super().__init__()
        self.done, self.total, self.what = done, total, what

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, DataCheckProgress)


class DataCheckDone(Message):
    def __init__(self, table: dict[str, Any], markdown: str) -> None:
        super().__init__()
        self.table, self.markdown = table, markdown


class DataCheckFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class DataCheckScreen(DifftuiScreen):
    HELP_TITLE = "data check"
    BINDINGS = bindings.DATA_CHECK

    def __init__(self, dataset: str) -> None:
        super().__init__()
        self.dataset = dataset
        self.table: dict[str, Any] | None = None
        self.running = False

    def compose(self) -> ComposeResult:
        yield Static(f"data check  [b]{self.dataset}[/b]  (playbook 1.2, 1.5)", id="data-check-title")
        yield ProgressBar(id="data-check-progress", show_eta=True)
        yield Static("reading the profile ...", id="data-check-status", markup=False)
        with VerticalScroll(id="data-check-box"):
            yield Markdown("", id="data-check-table")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#data-check-box").border_title = "data-quality table"
        self.start(recheck=False)

    def start(self, recheck: bool) -> None:
        if self.running:
            return
        self.running = True
        self.query_one("#data-check-progress", ProgressBar).update(total=None, progress=0)
        self.query_one("#data-check-progress").display = True
        self.run_check(recheck)

    @work(thread=True, exclusive=True, group="data-check", exit_on_error=False)
    def run_check(self, recheck: bool) -> None:
        from difftui.engine.config.catalog import Catalog
        from difftui.engine.config.model import PresetError
        from difftui.engine.data import DataError
        from difftui.engine.data.quality import check_dataset, quality_markdown
        last = [0.0]

        def progress(done: int, total: int, what: str) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY_S or done >= total:
                last[0] = now
                self.post_message(DataCheckProgress(done, total, what))

        try:
            profile = Catalog(self.app.preset_dirs).get("datasets", self.dataset)
            table = check_dataset(profile, progress=progress, use_cache=not recheck)
        except (PresetError, DataError) as e:
            self.post_message(DataCheckFailed(one_line(e)))
            return
        self.post_message(DataCheckDone(table, quality_markdown(table, heading="##")))

    def on_data_check_progress(self, message: DataCheckProgress) -> None:
        self.query_one("#data-check-progress", ProgressBar).update(total=message.total or None,
                                                                   progress=message.done)
        self.query_one("#data-check-status", Static).update(f"{message.what}: {message.done:,} / {message.total:,}")

    def on_data_check_done(self, message: DataCheckDone) -> None:
        self.running = False
        self.table = message.table
        self.query_one("#data-check-progress").display = False
        t = message.table
        how = "cached (files unchanged; r checks again)" if t.get("from_cache") else \
            f"measured in {t['seconds']:.1f} s"
        self.query_one("#data-check-status", Static).update(
            f"K = {t['sample']['K']:,}, {t['corrupt']['count']:,} unreadable, "
            f"{t['exact_duplicates']['redundant']:,} exact and {t['near_duplicates']['redundant']:,} near duplicates; "
            f"{how}")
        self.query_one("#data-check-table", Markdown).update(message.markdown)

    def on_data_check_failed(self, message: DataCheckFailed) -> None:
        self.running = False
        self.query_one("#data-check-progress").display = False
        status = self.query_one("#data-check-status", Static)
        status.update(in_tui_words(message.error))
        status.add_class("error")

    def worker_failed(self, worker: Worker, error: BaseException | None) -> None:
        if worker.group == "data-check":
            self.post_message(DataCheckFailed(one_line(error)))
        else:
            super().worker_failed(worker, error)

    def action_recheck(self) -> None:
        self.query_one("#data-check-status", Static).remove_class("error")
        self.start(recheck=True)

    def action_back(self) -> None:
        self.app.pop_screen()
