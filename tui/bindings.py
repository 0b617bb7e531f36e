"""Every key binding of the app, in one place, each with an id so that a user keymap can remap it.

`App.set_keymap({"dashboard.stop": "x"})` rebinds by these ids (posting does the same). Screens take their
`BINDINGS` from here and never declare keys of their own. The help screen (`?` or F1, on every screen) lists the
bindings of the screen below it as Textual resolved them, so it shows remapped keys and never goes stale.

The footer shows a screen's keys in the order below, then the app's: `q` and `?` come early so that an 80-100
column terminal still shows them; keys that only refine a view are in the help screen, not the footer.
"""

from __future__ import annotations

from textual.binding import Binding

__all__ = ["APP", "HISTORY", "PICKER", "REVIEW", "DASHBOARD", "CONFIRM", "HELP", "GRID_VIEW", "DATASET_PICKER",
           "DATA_CHECK", "DATA_CARD", "REVIEW_DATA", "SWEEP_GRID", "SWEEP_SETUP", "SWEEP_VIEW", "SWEEP_LIST", "COMPARE",
           "SWEEP_ADD", "TRAIN_FURTHER", "EVALUATE", "FINDINGS", "FINDING_VIEW", "FORK_REVIEW"]


def _help() -> Binding:
    return Binding("question_mark,f1", "app.help", "Help", id="help")


APP = [
    Binding("ctrl+q", "quit", "Quit", show=False, id="app.quit", priority=True),
    Binding("question_mark,f1", "help", "Help", show=False, id="app.help"),
]

HISTORY = [
    Binding("enter", "open_run", "Open", id="history.open", priority=True),   # the table would hide it otherwise
    Binding("n", "new_run", "New run", id="history.new"),
    Binding("r", "resume_run", "Resume", id="history.resume"),
    Binding("s", "stop_run", "Stop", id="history.stop"),
    Binding("d", "delete_run", "Delete", id="history.delete"),
    Binding("slash", "focus_filter", "Filter", id="history.filter"),
    # Sweeps, compare and clone (issue 8).
    Binding("space", "mark_run", "Mark", id="history.mark", show=False),          # listed by ? (help)
    Binding("c", "compare_runs", "Compare", id="history.compare", show=False),  # mark with space first (help lists both)
    Binding("N", "clone_run", "Clone", id="history.clone", show=False),
    Binding("R", "recheck", "Re-check fork", id="history.recheck", show=False),     # issue 18
    Binding("w", "new_sweep", "Sweep", id="history.sweep"),
    Binding("g", "open_sweep", "Its sweep", id="history.open_sweep", show=False),
    Binding("W", "sweeps", "Sweeps", id="history.sweeps", show=False),
    Binding("escape", "clear_filter", "Clear filter", show=False, id="history.clear_filter"),
    Binding("q", "app.quit", "Quit", id="history.quit"),
    _help(),
]

# Enter is a priority binding on the new-run screens: the list and the inputs would otherwise take it (and hide it
# from the footer); the screen's action does what they did (pick the highlighted preset, go to the next field).
PICKER = [
    Binding("enter", "pick", "Next", id="picker.next", priority=True),
    Binding("escape", "back", "Back", id="picker.back"),
    Binding("q", "app.quit", "Quit", id="picker.quit"),
    _help(),
]

# Tab moves focus as a priority binding too: the app then moves focus before it routes the next key, so "tab 200"
# typed quickly lands in the next field.
REVIEW = [
    Binding("enter", "next_field", "Next", id="review.next", priority=True),
    Binding("tab", "app.focus_next", "Next field", show=False, id="review.tab", priority=True),
    Binding("shift+tab", "app.focus_previous", "Previous field", show=False, id="review.shift_tab", priority=True),
    Binding("ctrl+l", "launch", "Launch", id="review.launch", priority=True),
    Binding("ctrl+g", "sweep_config", "Sweep this config", id="review.sweep", priority=True),
    Binding("escape", "back", "Back", id="review.back"),
    # In a field, q and ? are typed into it: the footer then shows ctrl+q and F1 for the same actions.
    Binding("q", "app.quit", "Quit", id="review.quit"),
    Binding("ctrl+q", "app.quit", "Quit", id="review.quit_from_field", priority=True),
    _help(),
]

_GRID = Binding.Group("Grid")
_SMOOTH = Binding.Group("Smooth")

DASHBOARD = [
    Binding("q", "app.quit", "Quit", id="dashboard.quit"),
    _help(),
    Binding("escape", "back", "History", id="dashboard.back"),
    # The compact layout (below 120x30) shows one side panel: p switches it (hidden in the wide layout).
    Binding("p", "next_panel", "Panel", id="dashboard.panel"),
    Binding("s", "stop_run", "Stop", id="dashboard.stop"),
    Binding("r", "resume_run", "Resume", id="dashboard.resume"),
    Binding("v", "evaluate_run", "Evaluate", id="dashboard.evaluate"),
    Binding("t", "toggle_evaluations", "Evaluations", id="dashboard.evaluations"),
    Binding("left_square_bracket", "grid_prev", "Previous grid", id="dashboard.grid_prev", group=_GRID),
    Binding("right_square_bracket", "grid_next", "Next grid", id="dashboard.grid_next", group=_GRID),
    Binding("end", "grid_latest", "Newest grid (live)", show=False, id="dashboard.grid_latest"),
    Binding("enter", "grid_full", "Full grid", id="dashboard.grid_full"),
    Binding("i", "toggle_renderer", "Image: graphics / half-blocks", show=False, id="dashboard.renderer"),
    Binding("slash", "filter_metrics", "Filter", id="dashboard.filter"),
    Binding("l", "toggle_log", "Log scale", id="dashboard.log_scale", tooltip="the focused chart's y axis"),
    Binding("minus", "smoothing_less", "Less smoothing", id="dashboard.smoothing_less", group=_SMOOTH),
    Binding("plus,equals_sign", "smoothing_more", "More smoothing", id="dashboard.smoothing_more", group=_SMOOTH),
    Binding("e", "toggle_smoothing", "Smoothing on / off", show=False, id="dashboard.smoothing"),
    # Issue 18: the findings panel (p cycles to it in the compact layout), a fork's re-check against its parent.
    Binding("ctrl+f", "focus_findings", "Findings", show=False, id="dashboard.findings"),   # the badge names it
    Binding("R", "recheck", "Re-check vs parent", show=False, id="dashboard.recheck"),
]

# The findings list (a widget's bindings: they act on the highlighted finding while the list has focus).
FINDINGS = [
    Binding("question_mark", "details", "Finding in full", id="findings.details"),
    Binding("f", "fix", "Fix (fork / sweep)", id="findings.fix"),
    Binding("g", "grid", "Sweep its grid", id="findings.grid", show=False),
]

FINDING_VIEW = [
    Binding("escape,enter", "close", "Back", id="finding_view.close"),
    Binding("f", "fix", "Fix (fork / sweep)", id="finding_view.fix"),
    Binding("g", "grid", "Sweep its grid", id="finding_view.grid"),
]

FORK_REVIEW = [
    Binding("enter", "next_field", "Next", id="fork_review.next", priority=True),
    Binding("tab", "app.focus_next", "Next field", show=False, id="fork_review.tab", priority=True),
    Binding("shift+tab", "app.focus_previous", "Previous field", show=False, id="fork_review.shift_tab",
            priority=True),
    Binding("ctrl+l", "launch", "Launch fork", id="fork_review.launch", priority=True),
    Binding("escape", "app.pop_screen", "Back", id="fork_review.back"),
    Binding("ctrl+q", "app.quit", "Quit", id="fork_review.quit", priority=True),
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
    _help(),
    Binding("r", "recheck", "Check again", id="data_check.recheck"),
    Binding("escape", "back", "Back", id="data_check.back"),
]

DATA_CARD = [
    _help(),
    Binding("escape", "back", "Back", id="data_card.back"),
]

REVIEW_DATA = [
    Binding("ctrl+o", "data_card", "Data card", id="review.data_card", priority=True),
]


# Sweeps, compare and clone (issue 8).

# Enter is a priority binding on the lists below (as on the history): the list widget's own Enter (hidden from the
# footer) would otherwise hide it, and the footer never showed how to go on (issue 16 item 10).
SWEEP_GRID = [
    _help(),
    Binding("enter", "pick_grid", "Pick", id="sweep_grid.pick", priority=True),
    Binding("escape", "back", "Back", id="sweep_grid.back"),
]

SWEEP_SETUP = [
    _help(),
    Binding("ctrl+l", "launch", "Launch sweep", id="sweep_setup.launch", priority=True),
    Binding("escape", "back", "Back", id="sweep_setup.back"),
]

SWEEP_VIEW = [
    _help(),
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
    _help(),
    Binding("enter", "open_sweep", "Open", id="sweep_list.open", priority=True),
    Binding("escape", "back", "Back", id="sweep_list.back"),
    Binding("q", "app.quit", "Quit", id="sweep_list.quit"),
]

COMPARE = [
    _help(),
    Binding("m", "next_metric", "Metric", id="compare.metric"),
    Binding("k", "toggle_x", "Step/kimg", id="compare.x"),
    Binding("g", "toggle_grids", "Grids / chart", id="compare.grids"),         # compact layout only
    Binding("left_square_bracket", "grid_prev", "Prev grid", id="compare.grid_prev"),
    Binding("right_square_bracket", "grid_next", "Next grid", id="compare.grid_next"),
    Binding("end", "grid_latest", "Latest grid", show=False, id="compare.grid_latest"),
    Binding("e", "toggle_smoothing", "Smoothing", id="compare.smoothing", show=False),
    Binding("l", "toggle_log", "Log scale", id="compare.log_scale", show=False),
    Binding("v", "evaluate_recheck", "Evaluate both (re-check)", id="compare.recheck_eval", show=False),
    Binding("escape", "back", "Back", id="compare.back"),
    Binding("q", "app.quit", "Quit", id="compare.quit"),
]

SWEEP_ADD = [
    Binding("escape", "cancel", "Cancel", id="sweep_add.cancel"),
]

# r on a run that completed all its steps asks how far to train it (issue 16 item 8).
TRAIN_FURTHER = [
    Binding("escape", "cancel", "Cancel", id="train_further.cancel"),
]

EVALUATE = [
    Binding("enter", "submit", "Evaluate", id="evaluate.submit"),
    Binding("escape", "cancel", "Cancel", id="evaluate.cancel"),
]

HELP = [
    Binding("escape,q,question_mark,f1", "close", "Close", id="help.close"),
]

GRID_VIEW = [
    Binding("escape,enter", "close", "Back", id="grid_view.close"),
    Binding("i", "toggle_renderer", "Image: graphics / half-blocks", id="grid_view.renderer"),
    Binding("q", "app.quit", "Quit", id="grid_view.quit"),
]
