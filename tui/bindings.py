"""Every key binding of the app, in one place, each with an id so that a user keymap can remap it.

`App.set_keymap({"dashboard.stop": "x"})` rebinds by these ids (posting does the same). Screens take their
`BINDINGS` from here and never declare keys of their own.
"""

from __future__ import annotations

from textual.binding import Binding

__all__ = ["APP", "HISTORY", "PICKER", "REVIEW", "DASHBOARD", "CONFIRM", "DATASET_PICKER", "DATA_CHECK", "DATA_CARD",
           "REVIEW_DATA"]

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
    Binding("v", "evaluate_run", "Evaluate panel", id="dashboard.evaluate"),
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

# -- the data side (issue 10): the data check from the dataset step, the data card from the review ---------------------

DATASET_PICKER = [
    Binding("c", "check_data", "Check data", id="picker.check_data"),
]

DATA_CHECK = [
    Binding("r", "recheck", "Check again", id="data_check.recheck"),
    Binding("escape", "back", "Back", id="data_check.back"),
]

DATA_CARD = [
    Binding("escape", "back", "Back", id="data_card.back"),
]

REVIEW_DATA = [
    Binding("ctrl+o", "data_card", "Data card", id="review.data_card", priority=True),
]
