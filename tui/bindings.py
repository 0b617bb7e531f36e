"""Every key binding of the app, in one place, each with an id so that a user keymap can remap it.

`App.set_keymap({"dashboard.stop": "x"})` rebinds by these ids (posting does the same). Screens take their
`BINDINGS` from here and never declare keys of their own.
"""

from __future__ import annotations

from textual.binding import Binding

__all__ = ["APP", "HISTORY", "PICKER", "REVIEW", "DASHBOARD", "CONFIRM"]

APP = [
    Binding("ctrl+q", "quit", "Quit", show=False, id="app.quit", priority=True),
]

HISTORY = [
    Binding("enter", "open_run", "Open", id="history.open"),
    Binding("n", "new_run", "New run", id="history.new"),
    Binding("r", "resume_run", "Resume", id="history.resume"),
    Binding("s", "stop_run", "Stop", id="history.stop"),
    Binding("d", "delete_run", "Delete", id="history.delete"),
    Binding("slash", "focus_filter", "Filter", id="history.filter"),
    Binding("escape", "clear_filter", "Clear filter", show=False, id="history.clear_filter"),
    Binding("q", "app.quit", "Quit", id="history.quit"),
]

PICKER = [
    Binding("escape", "back", "Back", id="picker.back"),
]

REVIEW = [
    Binding("ctrl+l", "launch", "Launch", id="review.launch", priority=True),
    Binding("escape", "back", "Back", id="review.back"),
]

DASHBOARD = [
    Binding("s", "stop_run", "Stop", id="dashboard.stop"),
    Binding("r", "resume_run", "Resume", id="dashboard.resume"),
    Binding("v", "evaluate_run", "Evaluate", id="dashboard.evaluate"),
    Binding("t", "toggle_evaluations", "Evaluations", id="dashboard.evaluations"),
    Binding("left_square_bracket", "grid_prev", "Prev grid", id="dashboard.grid_prev"),
    Binding("right_square_bracket", "grid_next", "Next grid", id="dashboard.grid_next"),
    Binding("end", "grid_latest", "Latest grid", show=False, id="dashboard.grid_latest"),
    Binding("e", "toggle_smoothing", "Smoothing", id="dashboard.smoothing"),
    Binding("l", "toggle_log", "Log scale", id="dashboard.log_scale"),
    Binding("escape", "back", "History", id="dashboard.back"),
    Binding("q", "app.quit", "Quit", id="dashboard.quit"),
]

CONFIRM = [
    Binding("y", "confirm", "Yes", id="confirm.yes"),
    Binding("n,escape", "cancel", "No", id="confirm.no"),
]
