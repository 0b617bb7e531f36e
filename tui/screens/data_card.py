"""The data card of the run being reviewed (playbook 1.5, 1.6), opened with ctrl+o from the review screen: the card
that will be saved as runs/<id>/datacard.md, built by the engine (engine/data/card.py) in a worker."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Markdown, Static
from textual.worker import Worker

from difftui.engine.text import one_line
from difftui.tui import bindings
from difftui.tui.screens.base import DifftuiScreen

__all__ = ["DataCardScreen", "DataCardReady"]


class DataCardReady(Message):
    def __init__(self, markdown: str) -> None:
        super().__init__()
        self.markdown = markdown


class DataCardScreen(DifftuiScreen):
    HELP_TITLE = "data card"
    BINDINGS = bindings.DATA_CARD

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    def compose(self) -> ComposeResult:
        yield Static(f"data card  [b]{self.config.dataset.name}[/b]  (saved with the run as datacard.md)",
                     id="data-card-title")
        with VerticalScroll(id="data-card-box"):
            yield Markdown("building the card ...", id="data-card")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#data-card-box").border_title = "data card"
        self.build_card()

    @work(thread=True, exclusive=True, group="data-card", exit_on_error=False)
    def build_card(self) -> None:
        from difftui.engine.data.card import data_card
        self.post_message(DataCardReady(data_card(self.config.dataset, self.config.recipe)))

    def on_data_card_ready(self, message: DataCardReady) -> None:
        self.query_one("#data-card", Markdown).update(message.markdown)

    def worker_failed(self, worker: Worker, error: BaseException | None) -> None:
        if worker.group == "data-card":
            self.query_one("#data-card", Markdown).update(f"The card could not be built: {one_line(error)}")
        else:
            super().worker_failed(worker, error)

    def action_back(self) -> None:
        self.app.pop_screen()
