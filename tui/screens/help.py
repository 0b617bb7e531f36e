"""`?` (or F1) on any screen: the keys of the screen below, read from its bindings as Textual resolved them (so a
remapped key shows as remapped and a new binding shows without anyone editing this screen), then the details that
the short messages left out: the screen's own notes (`HELP_NOTES`) and what the app kept from recent messages
(`DifftuiApp.details`, e.g. where the Inception weights for FID go; issue 16 item 8)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static

from difftui.tui import bindings

__all__ = ["HelpScreen", "KeyHelp", "screen_keys", "help_title"]


def help_title(screen: Screen) -> str:
    """What the screen is called in its help (its `HELP_TITLE`; every difftui screen has one, a test checks it), never
    a class name: a title "keys: CompareScreen" told the user nothing."""
    title = getattr(screen, "HELP_TITLE", "")
    if title:
        return title
    words = "".join(f" {c.lower()}" if c.isupper() else c for c in type(screen).__name__.removesuffix("Screen"))
    return words.strip() or "this screen"


@dataclass(frozen=True)
class KeyHelp:
    keys: str            # as displayed ("[", "ctrl+l", "enter")
    description: str
    id: str | None
    where: str           # "screen" or "app"


def screen_keys(screen: Screen) -> list[KeyHelp]:
    """The screen's own bindings (ours first, with their ids; then Textual's, such as tab), then the app's; one entry
    per action, hidden ones too (the footer shows few), none without a description."""
    app = screen.app
    out: list[KeyHelp] = []
    for node, where in ((screen, "screen"), (app, "app")):
        # As Textual's Screen._binding_chain builds them: the node's bindings with the user's keymap applied.
        resolved = node._bindings.copy()
        if app._keymap:
            resolved.apply_keymap(app._keymap)
        by_action: dict[str, list] = {}
        for binding_list in resolved.key_to_bindings.values():
            for binding in binding_list:
                by_action.setdefault(binding.action, []).append(binding)
        entries = []
        for found in by_action.values():
            if not found[0].description:
                continue
            keys = " / ".join(dict.fromkeys(app.get_key_display(b) for b in found))
            entry = KeyHelp(keys, found[0].description, found[0].id, where)
            if not any((k.keys, k.description) == (entry.keys, entry.description) for k in out):
                entries.append(entry)
        out.extend(sorted(entries, key=lambda k: k.id is None))
    return out


class HelpScreen(ModalScreen[None]):
    BINDINGS = bindings.HELP

    def __init__(self, screen: Screen) -> None:
        super().__init__()
        self.title_text = help_title(screen)
        self.keys = screen_keys(screen)
        kept = getattr(screen.app, "details", {})
        self.messages: list[tuple[str, str]] = list(kept.items())          # what recent messages left out
        self.notes: list[tuple[str, str]] = list(getattr(screen, "HELP_NOTES", ()))
        self.details = [*self.messages, *self.notes]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            # A message that said "? says where" is why the user is here: its details come first, then the keys.
            if self.messages:
                yield Static(self._details("details of recent messages", self.messages), id="help-messages")
            yield Static(self._table(), id="help-keys")
            if self.notes:
                yield Static(self._details("details", self.notes), id="help-details")
            yield Static("esc, q or ? closes this help", id="help-close")
        yield Footer()

    @staticmethod
    def _details(title: str, details: list[tuple[str, str]]) -> Text:
        text = Text()
        text.append(title, style="bold")
        for topic, detail in details:
            text.append("\n\n")
            text.append(topic, style="bold cyan")
            text.append("\n")
            text.append(detail)
        return text

    def on_mount(self) -> None:
        self.query_one("#help-box").border_title = f"keys: {self.title_text}"

    def _table(self) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True, justify="right")
        table.add_column()
        where = None
        for k in self.keys:
            if k.where != where:
                where = k.where
                if where == "app":
                    table.add_row("", "")
                    table.add_row("", Text("everywhere", style="bold"))
            table.add_row(k.keys, k.description)
        return table

    def action_close(self) -> None:
        self.dismiss(None)
