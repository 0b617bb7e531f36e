"""The fork review (issue 18 item 3): a new run from another run's checkpoint with changed settings, reviewed before
it starts. Opened by `f` on a finding (the suggested edit filled in) and by nothing else yet; it is the TUI's face of
`difftui fork`: the plan is launch/fork.py's plan_fork, the launch its fork_run (the CLI's call), so the two cannot
disagree.

The form: the step to fork at (the parent's finished checkpoints, the newest preselected), the `--set` overrides, the
steps to train to. Every edit re-plans in a worker; a refusal (no checkpoint at or before the step, a shape change, a
value the config refuses) comes back as one line under the form, and nothing is created until ctrl+l.
"""

from __future__ import annotations

import shlex
from typing import Any

from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import Button, Footer, Input, Label, Select, Static
from textual.worker import Worker

from difftui.engine.text import one_line
from difftui.tui import bindings
from difftui.tui.advice import in_tui_words
from difftui.tui.messages import ConfigRejected, ForkPlanned, LaunchFailed, RunLaunched
from difftui.tui.screens.base import DifftuiScreen
from difftui.tui.widgets.tickbox import TickBox

__all__ = ["ForkReviewScreen"]

DEBOUNCE_S = 0.3
NEWEST = "newest"                                   # the step list's first entry: the newest checkpoint


class ForkReviewScreen(DifftuiScreen):
    HELP_TITLE = "fork a run: review and launch"
    BINDINGS = bindings.FORK_REVIEW
    AUTO_FOCUS = "#fork-sets"

    def __init__(self, parent_id: int, overrides: list[str], *, step: int | None = None, why: str = "") -> None:
        """`overrides`: the `--set KEY=VALUE` arguments to start with (a finding's first edit); `step`: the step to
        fork at (None: the newest checkpoint); `why`: what asked for the fork (the finding, in words)."""
        super().__init__()
        self.parent_id = parent_id
        self.overrides = list(overrides)
        self.step = step
        self.why = why
        self.generation = 0
        self.plan: Any = None
        self.points: list[int] = []
        self.error = ""
        self.launching = False
        self._debounce: Timer | None = None

    def compose(self) -> ComposeResult:
        crumb = Text.assemble((f"fork of run {self.parent_id}", "bold yellow"),
                              (f"  {self.why}" if self.why else "", "dim"))
        yield Static(crumb, id="breadcrumb")
        with Horizontal(id="review"):
            with VerticalScroll(id="config-box"):
                yield Static("planning ...", id="config-yaml")
            with Vertical(id="review-side"):
                yield Static("", id="facts")
                with Vertical(classes="field"):
                    yield Label("fork at step (a finished checkpoint)")
                    yield Select([("newest checkpoint", NEWEST)], value=NEWEST, allow_blank=False,
                                 id="fork-step", compact=True)
                with Vertical(classes="field"):
                    yield Label("changes (key=value ...)")
                    yield Input(" ".join(shlex.quote(s) for s in self.overrides), id="fork-sets", compact=True,
                                placeholder="e.g. recipe.importance_sampling=true")
                with Vertical(classes="field"):
                    yield Label("train to step")
                    yield Input("", id="fork-max-steps", compact=True, placeholder="the parent's end")
                yield TickBox("start fresh from step 0 (a change of the network's shape)", False,
                              id="fork-fresh", compact=True)
                yield Static("", id="review-error", markup=False)
                yield Button("Launch fork (ctrl+l)", id="launch", variant="primary", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#config-box").border_title = "the fork's config"
        self.query_one("#facts").border_title = "where it starts, what changes"
        self.start_plan()

    # -- the form -> a ForkPlan, in a worker ----------------------------------------------------------------------

    def form(self) -> tuple[int | None, list[str], str, bool]:
        value = self.query_one("#fork-step", Select).value
        if value in (NEWEST, Select.BLANK):
            step = None if self.points else self.step           # the asked step until the checkpoints are listed
        else:
            step = int(value)
        try:
            sets = shlex.split(self.query_one("#fork-sets", Input).value)
        except ValueError as e:                     # an open quote: the plan says so in one line
            sets = [f"'{e}'"]
        return (step, sets, self.query_one("#fork-max-steps", Input).value.strip(),
                self.query_one("#fork-fresh", TickBox).value)

    @on(Input.Changed)
    @on(TickBox.Changed)
    @on(Select.Changed, "#fork-step")
    def _form_changed(self) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(DEBOUNCE_S, self.start_plan)

    def action_next_field(self) -> None:
        if isinstance(self.focused, Button):
            self.action_launch()
            return
        if isinstance(self.focused, Select):
            self.focused.action_show_overlay()
            return
        if isinstance(self.focused, Input):
            self.start_plan()
        self.focus_next()

    def start_plan(self) -> None:
        if self._debounce is not None:
            self._debounce.stop()
            self._debounce = None
        self.generation += 1
        self.plan_fork(self.generation, *self.form())

    @work(thread=True, exclusive=True, group="resolve", exit_on_error=False)
    def plan_fork(self, generation: int, step: int | None, sets: list[str], max_steps: str, fresh: bool) -> None:
        from difftui.engine.config.catalog import config_to_dict
        from difftui.engine.config.model import PresetError
        from difftui.engine.launch.fork import fork_points, plan_fork
        from difftui.engine.launch.outcome import LaunchError
        from difftui.tui.screens.review import config_yaml
        try:
            points = fork_points(self.app.db_path, self.parent_id)
            plan = plan_fork(self.app.db_path, self.parent_id, step, sets, max_steps=max_steps or None, fresh=fresh)
        except (PresetError, LaunchError) as e:
            self.post_message(ConfigRejected(generation, one_line(e).replace("fork --fresh", "'start fresh'")))
            return
        self.post_message(ForkPlanned(generation, plan, points, config_yaml(config_to_dict(plan.config))))

    def on_fork_planned(self, message: ForkPlanned) -> None:
        if message.generation != self.generation:
            return
        self.plan, self.error = message.plan, ""
        self._set_points(message.points, message.plan.step)
        self.query_one("#config-yaml", Static).update(
            Syntax(message.yaml_text, "yaml", theme="ansi_dark", background_color="default"))
        self.query_one("#fork-max-steps", Input).placeholder = (
            f"the parent's end: {message.plan.config.recipe.total_steps:,}")
        self._show_error("")
        self._render_facts()

    def on_config_rejected(self, message: ConfigRejected) -> None:
        if message.generation != self.generation:
            return
        self.plan, self.error = None, message.error
        self._show_error(message.error)
        self._render_facts()

    def _set_points(self, points: list[int], chosen: int | None) -> None:
        """The step list: the parent's checkpoints, newest first; the plan's step selected (once)."""
        if points == self.points:
            return
        self.points = points
        select = self.query_one("#fork-step", Select)
        with self.prevent(Select.Changed):
            select.set_options([(f"newest checkpoint ({points[-1]:,})" if points else "newest checkpoint",
                                 NEWEST)] + [(f"{p:,}", str(p)) for p in reversed(points)])
            select.value = str(chosen) if self.step is not None and chosen is not None else NEWEST

    def _show_error(self, text: str) -> None:
        widget = self.query_one("#review-error", Static)
        widget.update(Text(in_tui_words(text), style="bold red") if text else "")
        widget.set_class(bool(text), "error")

    def _render_facts(self) -> None:
        table = Table.grid(padding=(0, 1))
        table.add_column(style="bold", no_wrap=True, min_width=8)
        table.add_column()
        table.add_row("parent", f"run {self.parent_id}")
        plan = self.plan
        if plan is None:
            table.add_row("", Text("planning ..." if not self.error else "the fork cannot start", style="dim"))
        else:
            table.add_row("starts", plan.where())
            table.add_row("ends", f"at step {plan.config.recipe.total_steps:,}")
            table.add_row("changes", Text(plan.describe_changes(), style="yellow" if plan.changes else "dim"))
            table.add_row("carries", "weights, EMA, optimizer moments, data position, RNG, x_T (copied)")
        self.query_one("#facts", Static).update(table)

    # -- launch: launch/fork.py's fork_run, the CLI's call ---------------------------------------------------------

    @on(Button.Pressed, "#launch")
    def _launch_pressed(self) -> None:
        self.action_launch()

    def action_launch(self) -> None:
        if self.launching:
            return
        self.launching = True
        self.query_one("#launch", Button).disabled = True
        self._show_error("")
        self.launch_fork(*self.form())

    @work(thread=True, exclusive=True, group="launch", exit_on_error=False)
    def launch_fork(self, step: int | None, sets: list[str], max_steps: str, fresh: bool) -> None:
        from difftui.engine.config.model import PresetError
        from difftui.engine.launch.fork import fork_run
        from difftui.engine.launch.outcome import LaunchError
        try:
            done = fork_run(self.app.db_path, self.parent_id, step, sets, max_steps=max_steps or None, fresh=fresh)
        except (PresetError, LaunchError) as e:
            self.post_message(LaunchFailed(one_line(e)))
            return
        if done.proc is not None:                   # a Slurm job has no process here
            self.app.track(done.run_id, done.proc)
        self.app.call_from_thread(self.app.notify, in_tui_words(done.message), timeout=8)
        self.post_message(RunLaunched(done.run_id))

    def on_launch_failed(self, message: LaunchFailed) -> None:
        self.launching = False
        self.query_one("#launch", Button).disabled = False
        self._show_error(message.error)

    def on_run_launched(self, message: RunLaunched) -> None:
        self.app.pop_screen()
        self.app.open_dashboard(message.run_id)

    def worker_failed(self, worker: Worker, error: BaseException | None) -> None:
        if worker.group == "launch":
            self.post_message(LaunchFailed(one_line(error)))
        elif worker.group == "resolve":
            self._show_error(one_line(error))
        else:
            super().worker_failed(worker, error)
