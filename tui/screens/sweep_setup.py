"""The second sweep screen: toggle the grid's values (space), add a custom value, choose how many runs go at once and
on which devices, read the review (runs, total steps, slots, an estimate of the wall time from the backbone's
measured throughput, or "unknown"), launch.

Every edit re-plans the sweep in a worker: each member is resolved and validated exactly as it will be run, so an
off-grid value without the explicit switch, or a value the config refuses, comes back as one line under the form.
Launching creates the sweep in runs.db and starts its detached supervisor (or, with a Slurm profile as "where",
submits its members as one job array); the sweep view then follows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import Button, Checkbox, Footer, Input, Label, Select, SelectionList, Static
from textual.widgets.selection_list import Selection
from textual.worker import Worker

from difftui.engine.numbers import format_duration, format_setting
from difftui.engine.text import one_line
from difftui.tui import bindings
from difftui.tui.advice import in_tui_words
from difftui.tui.messages import LaunchFailed, SweepLaunched, SweepPlanned, SweepPlanRejected
from difftui.tui.screens.sweep_grid import SweepStep, base_words, sweep_breadcrumb
from difftui.tui.widgets.tickbox import TickBox, TickList
from difftui.tui.widgets.where_select import WhereSelect

__all__ = ["SweepSetupScreen", "SweepRequest"]

DEBOUNCE_S = 0.3
MEMBERS_SHOWN = 12


@dataclass(frozen=True)
class SweepRequest:
    """What the form says, read on the UI thread and handed to a worker."""
    values: tuple[tuple[str, tuple[Any, ...]], ...]     # (axis, chosen values) in the grid's axis order
    off_grid: bool
    per_device: str
    gpus: str
    slurm: dict[str, Any] | None = None                 # a Slurm profile's options: one job array, per_device at once

    def slurm_options(self) -> Any:
        from difftui.engine.launch.slurm.options import options_from_mapping
        return options_from_mapping(self.slurm, "the Slurm profile") if self.slurm is not None else None

    def slots(self, device: str) -> Any:
        from difftui.engine.config.model import PresetError
        from difftui.engine.sweeps import Slots
        text = self.per_device.strip()
        if not text.isdigit() or int(text) < 1:
            raise PresetError(f"runs at once per device: expected a whole number >= 1, got {text!r}")
        if self.slurm is not None:
            if self.gpus.strip():
                raise PresetError("GPUs names this machine's GPUs; on Slurm the profile's gpus_per_node says how many")
            return Slots(("slurm",), int(text))
        from difftui.engine.launch.plan import parse_gpus
        try:
            gpus = parse_gpus(self.gpus, option="GPUs")
        except ValueError as e:
            raise PresetError(str(e)) from None
        return Slots.choose(device=device, gpus=gpus, runs_per_device=int(text))

    def plan(self, catalog: Any, grid: Any, spec: Any) -> tuple[Any, Any]:
        from difftui.engine.config.model import PresetError
        from difftui.engine.sweeps import plan_sweep
        empty = [axis for axis, values in self.values if not values]
        if empty:
            raise PresetError(f"no value chosen for {empty[0]} (space toggles a value)")
        options = self.slurm_options()
        if options is not None:                         # the nodes' device, CUDA when the profile asks for GPUs
            import dataclasses
            spec = dataclasses.replace(spec, device=options.device)
        slots = self.slots(spec.device)
        plan = plan_sweep(catalog, grid, spec, values=dict(self.values), off_grid=self.off_grid,
                          device=spec.device if options is not None else slots.member_device)
        if options is not None and plan.members and plan.members[0].config.recipe.batch_size % options.processes:
            raise PresetError(f"batch size {plan.members[0].config.recipe.batch_size} does not split over "
                              f"{options.processes} processes (the recipe's batch is the global batch)")
        return plan, slots


class SweepSetupScreen(SweepStep):
    HELP_TITLE = "new sweep: values and slots"
    BINDINGS = bindings.SWEEP_SETUP
    AUTO_FOCUS = "#sweep-values"

    def __init__(self, spec: Any, grid: Any) -> None:
        super().__init__()
        self.spec = spec
        self.grid = grid
        # Every value the list offers: (axis, value, custom); the SelectionList's values are indices into it.
        self.choices: list[tuple[str, Any, bool]] = [(k, v, False) for k, vs in grid.axes.items() for v in vs]
        self.generation = 0
        self.plan: Any = None
        self.slots: Any = None
        self.estimate: Any = None
        self.error = ""
        self.launching = False
        self._debounce: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Static(sweep_breadcrumb(self.spec, "setup", self.grid.name), id="breadcrumb")
        with Horizontal(id="sweep-setup"):
            with Vertical(id="sweep-form"):
                yield Label("values (space toggles)")
                yield TickList(*[self._selection(i) for i in range(len(self.choices))], id="sweep-values")
                yield Label("add a value")
                hint = "0.4" if len(self.grid.axes) == 1 else f"{list(self.grid.axes)[-1]}=0.4"
                yield Input(id="sweep-value", placeholder=f"e.g. {hint}, enter adds it", compact=True)
                yield TickBox("off-grid values (explicit)", id="sweep-off-grid", compact=True)
                yield Label("runs at once per device")
                yield Input("1", id="sweep-per-device", type="integer", compact=True)
                yield Label("GPUs (e.g. 0,1; empty: every GPU, else the CPU)")
                yield Input(id="sweep-gpus", compact=True)
                yield Label("where (this machine, or a Slurm profile: one job array)")
                yield WhereSelect(id="sweep-where")
                yield Static("", id="sweep-error", markup=False)
                yield Button("Launch sweep (ctrl+l)", id="sweep-launch", variant="primary", compact=True)
            with VerticalScroll(id="sweep-review-box"):
                yield Static("planning ...", id="sweep-review")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#sweep-values").border_title = f"{self.grid.name} (playbook {self.grid.playbook})"
        self.query_one("#sweep-review-box").border_title = "review"
        self.start_plan()

    def _selection(self, index: int) -> Selection[int]:
        axis, value, custom = self.choices[index]
        label = Text(f"{axis.split('.')[-1]} = {format_setting(value)}")
        if custom:
            on_grid = any(self._same(value, v) for v in self.grid.axes[axis])
            label.append("  (added" + ("" if on_grid else ", off-grid") + ")", style="yellow" if not on_grid else "dim")
        return Selection(label, index, True)

    @staticmethod
    def _same(a: Any, b: Any) -> bool:
        from difftui.engine.config.model import same_value
        return same_value(a, b)

    # -- the form -> a plan, in a worker --------------------------------------------------------------------------

    def request(self) -> SweepRequest:
        selected = set(self.query_one("#sweep-values", SelectionList).selected)
        values = tuple((axis, tuple(v for i, (a, v, _c) in enumerate(self.choices) if a == axis and i in selected))
                       for axis in self.grid.axes)
        return SweepRequest(values=values, off_grid=self.query_one("#sweep-off-grid", Checkbox).value,
                            per_device=self.query_one("#sweep-per-device", Input).value,
                            gpus=self.query_one("#sweep-gpus", Input).value,
                            slurm=self.query_one("#sweep-where", WhereSelect).slurm())

    @on(SelectionList.SelectedChanged)
    @on(Checkbox.Changed)
    @on(Input.Changed, "#sweep-per-device, #sweep-gpus")
    @on(Select.Changed, "#sweep-where")
    def _form_changed(self) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(DEBOUNCE_S, self.start_plan)

    def start_plan(self) -> None:
        if self._debounce is not None:
            self._debounce.stop()
            self._debounce = None
        self.generation += 1
        self.plan_worker(self.generation, self.request())

    @work(thread=True, exclusive=True, group="sweep-plan", exit_on_error=False)
    def plan_worker(self, generation: int, request: SweepRequest) -> None:
        from difftui.engine.config.catalog import Catalog
        from difftui.engine.config.model import PresetError
        from difftui.engine.store import Store
        from difftui.engine.sweeps import SweepError, estimate_sweep
        try:
            plan, slots = request.plan(Catalog(self.app.preset_dirs), self.grid, self.spec)
        except (PresetError, SweepError) as e:
            self.post_message(SweepPlanRejected(generation, one_line(e)))
            return
        with Store(self.app.db_path) as store:
            estimate = estimate_sweep(store, [m.config for m in plan.members], slots)
        self.post_message(SweepPlanned(generation, plan, slots, estimate))

    def on_sweep_planned(self, message: SweepPlanned) -> None:
        if message.generation != self.generation:
            return
        self.plan, self.slots, self.estimate, self.error = message.plan, message.slots, message.estimate, ""
        self._show_error("")
        self._render_review()

    def on_sweep_plan_rejected(self, message: SweepPlanRejected) -> None:
        if message.generation != self.generation:
            return
        self.plan = None
        self.error = message.error
        self._show_error(message.error)
        self._render_review()

    # -- a custom value -------------------------------------------------------------------------------------------

    @on(Input.Submitted, "#sweep-value")
    def _add_value(self, event: Input.Submitted) -> None:
        from difftui.engine.config.model import PresetError
        from difftui.engine.sweeps.plan import parse_value
        text = event.value.strip()
        if not text:
            return
        axes = list(self.grid.axes)
        key, sep, rest = text.partition("=")
        if sep and key.strip() in axes:
            axis, text = key.strip(), rest
        elif len(axes) == 1:
            axis = axes[0]
        else:
            self._show_error(f"this grid has {len(axes)} axes: write key=value, e.g. {axes[-1]}=0.4")
            return
        try:
            value = parse_value(text)
        except PresetError as e:
            self._show_error(one_line(e))
            return
        if any(a == axis and self._same(v, value) for a, v, _c in self.choices):
            self._show_error(f"{axis}={format_setting(value)} is already in the list")
            return
        self.choices.append((axis, value, True))
        self.query_one("#sweep-values", SelectionList).add_option(self._selection(len(self.choices) - 1))
        event.input.value = ""
        self._form_changed()

    # -- the review -----------------------------------------------------------------------------------------------

    def _show_error(self, text: str) -> None:
        text = in_tui_words(text)
        widget = self.query_one("#sweep-error", Static)
        widget.update(Text(text, style="bold red") if text else "")
        widget.set_class(bool(text), "error")

    def _render_review(self) -> None:
        table = Table.grid(padding=(0, 1))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")                   # a long override wraps, never cut
        g = self.grid
        table.add_row("grid", f"{g.name} (playbook {g.playbook}): {g.description}")
        table.add_row("base", base_words(self.spec))
        plan, est = self.plan, self.estimate
        if plan is None:
            table.add_row("", Text(f"the sweep does not plan: {in_tui_words(self.error)}" if self.error
                                   else "planning ...", style="red" if self.error else "dim"))
            self.query_one("#sweep-review", Static).update(table)
            return
        axes = "  x  ".join(f"{k.split('.')[-1]} {{{', '.join(format_setting(v) for v in vs)}}}"
                            for k, vs in plan.axes.items())
        table.add_row("runs", f"{len(plan.members)} = {axes}")
        for i, m in enumerate(plan.members[:MEMBERS_SHOWN]):
            from difftui.engine.sweeps import member_label
            line = Text(f"  {member_label(m.axis_values)}")
            if m.off_grid:
                line.append("  off-grid", style="bold yellow")
            table.add_row("" if i else "members", line)
        if len(plan.members) > MEMBERS_SHOWN:
            table.add_row("", Text(f"  ... and {len(plan.members) - MEMBERS_SHOWN} more", style="dim"))
        batch = {m.config.recipe.batch_size for m in plan.members}
        table.add_row("steps", f"{plan.total_steps:,} in all ({est.total_kimg:,.1f} kimg; batch "
                               f"{', '.join(map(str, sorted(batch)))})")
        table.add_row("slots", self.slots.describe())
        for t in est.throughput:
            table.add_row("throughput", Text(t.describe(), style="dim" if t.img_per_s is None else ""))
        if est.wall_s is None:
            table.add_row("wall time", Text("unknown (no measured throughput for this network yet)", style="yellow"))
        else:
            table.add_row("wall time", Text(f"about {format_duration(est.wall_s)} of training (members sharing a "
                                            f"device share its measured throughput; each member's start-up comes on "
                                            f"top)"))
        self.query_one("#sweep-review", Static).update(table)

    # -- launch ---------------------------------------------------------------------------------------------------

    @on(Button.Pressed, "#sweep-launch")
    def _launch_pressed(self) -> None:
        self.action_launch()

    def action_launch(self) -> None:
        if self.launching:
            return
        self.launching = True
        self.query_one("#sweep-launch", Button).disabled = True
        self._show_error("")
        self.launch_worker(self.request())

    @work(thread=True, exclusive=True, group="sweep-launch", exit_on_error=False)
    def launch_worker(self, request: SweepRequest) -> None:
        from difftui.engine.config.catalog import Catalog
        from difftui.engine.config.model import PresetError
        from difftui.engine.sweeps import SweepError, launch_sweep
        try:
            plan, slots = request.plan(Catalog(self.app.preset_dirs), self.grid, self.spec)
            sweep_id, proc = launch_sweep(self.app.db_path, plan, slots,       # the launch checks first
                                          slurm=request.slurm_options())
        except (PresetError, SweepError) as e:
            self.post_message(LaunchFailed(one_line(e)))
            return
        if not isinstance(proc, str):                   # a Slurm sweep gives its array's job id, no supervisor
            self.app.track_supervisor(sweep_id, proc)
        self.post_message(SweepLaunched(sweep_id))

    def on_launch_failed(self, message: LaunchFailed) -> None:
        self.launching = False
        self.query_one("#sweep-launch", Button).disabled = False
        self._show_error(message.error)

    def on_sweep_launched(self, message: SweepLaunched) -> None:
        self.app.notify(f"sweep {message.sweep_id} launched")
        self.app.open_sweep(message.sweep_id)

    def worker_failed(self, worker: Worker, error: BaseException | None) -> None:
        if worker.group == "sweep-launch":
            self.post_message(LaunchFailed(one_line(error)))
        elif worker.group == "sweep-plan":
            self._show_error(one_line(error))
        else:
            super().worker_failed(worker, error)
