"""What every difftui screen shares: the one place where a failed worker is turned into a message for the user."""

from __future__ import annotations

import functools
import time
from typing import Any, Callable

from textual.screen import Screen
from textual.timer import Timer
from textual.worker import Worker, WorkerState

__all__ = ["DifftuiScreen", "PollingScreen", "unless_closing"]


def unless_closing(handler: Callable[..., Any]) -> Callable[..., Any]:
    """For a handler that reads a screen's widgets when a worker's result or a mount arrives: skipped once the app
    has begun to shut down (q pressed while a screen mounts or a poll is on its way), when Textual is taking the
    widgets down and a query would end the app with a traceback instead of a clean exit."""
    @functools.wraps(handler)
    def guarded(self, *args: Any) -> Any:
        if not self.app.is_running:
            return None
        return handler(self, *args)
    return guarded


class DifftuiScreen(Screen):
    """Workers are started by screens (they read runs.db, import torch, spawn engines). Worker.StateChanged does not
    bubble, so every screen catches it here and hands it on; a screen that shows an error in place (the review
    screen's error line) or must recover (a poll re-arming) overrides `worker_failed` for its groups, and everything
    else ends in the app's `report_worker_error`."""

    FOCUS_GRACE_S = 0.3                             # a screen with nothing to focus takes keys after this

    _composed_at: float | None = None

    def on_mount(self) -> None:
        self._composed_at = time.monotonic()

    @property
    def ready_for_keys(self) -> bool:
        """Composed and focused, so a key reaches the widget it was typed for. Until then the app holds keys back
        (DifftuiApp.on_event): Textual sends a key to whatever has focus when the key is read, and a screen still
        being composed has none, so keys typed ahead of it were lost."""
        if self._composed_at is None:
            return False
        return self.focused is not None or time.monotonic() - self._composed_at > self.FOCUS_GRACE_S

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.worker_failed(event.worker, event.worker.error)

    def worker_failed(self, worker: Worker, error: BaseException | None) -> None:
        self.app.report_worker_error(worker, error)



class PollingScreen(DifftuiScreen):
    """A screen that reads runs.db in a worker and re-arms its timer only after the handler has drawn the result, so
    polls never pile up (dolphie's way). Subclasses start their worker in `start_poll` (its group is `poll_group`)
    and call `poll_done(delay)` from the message handler. A screen hidden under another one stays quiet until it is
    shown again."""

    poll_group = ""
    retry_after_s = 3.0                             # the next poll after a failed one

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._timer: Timer | None = None
        self._polling = False

    def start_poll(self) -> None:
        raise NotImplementedError                   # each subclass starts its own worker

    def refresh_now(self) -> None:
        """Poll at once (unless a poll is in flight), cancelling the pending timer."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if not self._polling and self.app.is_running:
            self._polling = True
            self.start_poll()

    def poll_done(self, delay: float) -> None:
        self._polling = False
        if self.is_attached and self._timer is None:
            self._timer = self.set_timer(delay, self._tick)

    def _tick(self) -> None:
        self._timer = None
        # The top screen only: Textual's `is_current` is also true for the screen just beneath it (a "background"
        # screen), so the history went on polling and redrawing under the dashboard.
        if self.app.screen is self:
            self.refresh_now()

    def on_screen_resume(self) -> None:
        self.refresh_now()

    def worker_failed(self, worker: Worker, error: BaseException | None) -> None:
        super().worker_failed(worker, error)
        if worker.group == self.poll_group:
            self.poll_done(self.retry_after_s)
