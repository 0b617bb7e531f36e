"""Every key binding of the app, in one place, each with an id so that a user keymap can remap it.

`App.set_keymap({"dashboard.stop": "x"})` rebinds by these ids (posting does the same). Screens take their
`BINDINGS` from here and never declare keys of their own.
"""

from __future__ import annotations

from textual.binding import Binding

__all__ = ["APP", "HISTORY", "PICKER", "REVIEW", "DASHBOARD", "CONFIRM", "DATASET_PICKER", "DATA_CHECK", "DATA_CARD",
           "REVIEW_DATA", "SWEEP_GRID", "SWEEP_SETUP", "SWEEP_VIEW", "SWEEP_LIST", "COMPARE", "SWEEP_ADD"]

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
    # Sweeps, compare and clone (issue 8).
    Binding("space", "mark_run", "Mark", id="history.mark"),
    Binding("c", "compare_runs", "Compare", id="history.compare"),
    Binding("N", "clone_run", "Clone", id="history.clone"),
    Binding("w", "new_sweep", "Sweep", id="history.sweep"),
    Binding("g", "open_sweep", "Its sweep", id="history.open_sweep", show=False),
    Binding("W", "sweeps", "Sweeps", id="history.sweeps", show=False),
    Binding("escape", "clear_filter", "Clear filter", show=False, id="history.clear_filter"),
    Binding("q", "app.quit", "Quit", id="history.quit"),
]

PICKER = [
    Binding("escape", "back", "Back", id="picker.back"),
]

REVIEW = [
    Binding("ctrl+l", "launch", "Launch", id="review.launch", priority=True),
    Binding("ctrl+g", "sweep_config", "Sweep this config", id="review.sweep", priority=True),
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


# Sweeps, compare and clone (issue 8).

SWEEP_GRID = [
    Binding("escape", "back", "Back", id="sweep_grid.back"),
]

SWEEP_SETUP = [
    Binding("ctrl+l", "launch", "Launch sweep", id="sweep_setup.launch", priority=True),
    Binding("escape", "back", "Back", id="sweep_setup.back"),
]

SWEEP_VIEW = [
    Binding("enter", "open_member", "Dashboard", id="sweep_view.open"),
    Binding("s", "stop_member", "Stop run", id="sweep_view.stop_member"),
    Binding("r", "retry_member", "Retry run", id="sweep_view.retry_member"),
    Binding("S", "stop_sweep", "Stop sweep", id="sweep_view.stop"),
    Binding("R", "resume_sweep", "Resume sweep", id="sweep_view.resume"),
    Binding("a", "add_value", "Add value", id="sweep_view.add"),
    Binding("m", "next_metric", "Metric", id="sweep_view.metric"),
    Binding("x", "next_axis", "Axis", id="sweep_view.axis", show=False),
    Binding("o", "sort", "Sort", id="sweep_view.sort"),
    Binding("O", "reverse_sort", "Reverse", id="sweep_view.reverse", show=False),
    Binding("e", "toggle_smoothing", "Smoothing", id="sweep_view.smoothing", show=False),
    Binding("l", "toggle_log", "Log scale", id="sweep_view.log_scale", show=False),
    Binding("escape", "back", "Back", id="sweep_view.back"),
    Binding("q", "app.quit", "Quit", id="sweep_view.quit"),
]

SWEEP_LIST = [
    Binding("enter", "open_sweep", "Open", id="sweep_list.open"),
    Binding("escape", "back", "Back", id="sweep_list.back"),
    Binding("q", "app.quit", "Quit", id="sweep_list.quit"),
]

COMPARE = [
    Binding("m", "next_metric", "Metric", id="compare.metric"),
    Binding("k", "toggle_x", "Step/kimg", id="compare.x"),
    Binding("left_square_bracket", "grid_prev", "Prev grid", id="compare.grid_prev"),
    Binding("right_square_bracket", "grid_next", "Next grid", id="compare.grid_next"),
    Binding("end", "grid_latest", "Latest grid", show=False, id="compare.grid_latest"),
    Binding("e", "toggle_smoothing", "Smoothing", id="compare.smoothing", show=False),
    Binding("l", "toggle_log", "Log scale", id="compare.log_scale", show=False),
    Binding("escape", "back", "Back", id="compare.back"),
    Binding("q", "app.quit", "Quit", id="compare.quit"),
]

SWEEP_ADD = [
    Binding("escape", "cancel", "Cancel", id="sweep_add.cancel"),
]
