"""The run's event log (engine events: started, checkpoint written, resumed, errors)."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.widgets import RichLog

from difftui.tui.advice import in_tui_words

__all__ = ["EventLog", "LEVEL_STYLES"]

LEVEL_STYLES = {"debug": "dim", "info": "", "warning": "yellow", "error": "bold red"}


class EventLog(RichLog):
    """Appends event rows (time, level, message) as they arrive; keeps the last thousand lines."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, max_lines=1000, min_width=20, wrap=True, markup=False, highlight=False,
                         auto_scroll=True)
        self.count = 0

    def add_events(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            level = str(row["level"]).lower()
            line = Text()
            line.append(time.strftime("%H:%M:%S ", time.localtime(row["time"])), style="dim")
            line.append(f"{level:<7} ", style=LEVEL_STYLES.get(level, ""))
            line.append(in_tui_words(str(row["message"])), style="red" if level == "error" else "")
            self.write(line)
            self.count += 1
