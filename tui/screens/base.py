"""What every difftui screen shares: the one place where a failed worker is turned into a message for the user."""

from __future__ import annotations

from textual.screen import Screen
from textual.worker import Worker, WorkerState

__all__ = ["DifftuiScreen", "one_line"]


def one_line(error: BaseException | None) -> str:
    """An exception as one readable line (PresetError and RuntimeError messages already are)."""
    if error is None:
        return "unknown error"
    text = str(error).strip().splitlines()
    first = text[0] if text else ""
    name = type(error).__name__
    if not first:
        return name
    return first if name in ("PresetError", "RuntimeError", "StoreError", "ValueError") else f"{name}: {first}"


class DifftuiScreen(Screen):
    """Workers are started by screens (they read runs.db, import torch, spawn engines). Worker.StateChanged does not
    bubble, so every screen catches it here and hands it on; a screen that shows an error in place (the review
    screen's error line) or must recover (a poll re-arming) overrides `worker_failed` for its groups, and everything
    else ends in the app's `report_worker_error`."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.worker_failed(event.worker, event.worker.error)

    def worker_failed(self, worker: Worker, error: BaseException | None) -> None:
        self.app.report_worker_error(worker, error)

