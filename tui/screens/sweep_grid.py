"""The first sweep screen: pick a grid preset for a base run (the highlighted run of the history, the review screen's
config, or the defaults).

A worker reads every grid preset and tries each on the base (the members are resolved exactly as they would be run),
so a grid that does not apply (a lambda grid on a static tier, a dropout grid on DiT) is listed greyed out with the
one line that says why (picking it repeats that line); picking an applicable one opens the values-and-slots screen.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from difftui.engine.numbers import format_setting
from difftui.engine.text import one_line
from difftui.tui import bindings
from difftui.tui.advice import in_tui_words
from difftui.tui.messages import GridsLoaded
from difftui.tui.screens.base import unless_closing
from difftui.tui.screens.sweep_step import SweepStep, base_words, sweep_breadcrumb

__all__ = ["SweepStep", "SweepGridScreen", "grid_detail", "sweep_breadcrumb", "base_words"]


def grid_detail(name: str, grid: Any, error: str, refusal: str | None, base: str = "") -> Table | Text:
    if grid is None:
        return Text(f"{name}: {error}", style="red")
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    table.add_row(Text(name, style="bold cyan"), Text(grid.description))
    table.add_row("", "")
    table.add_row("playbook", grid.playbook)
    n = 1
    for key, values in grid.axes.items():
        table.add_row(key, ", ".join(format_setting(v) for v in values))
        n *= len(values)
    table.add_row("runs", f"{n} (the cartesian product of the axes)")
    table.add_row("applies to", grid.applies_to.describe())
    if grid.applies_to.reason:
        table.add_row("", Text(grid.applies_to.reason, style="dim"))
    if base:
        table.add_row("base run", base)
    if refusal:
        table.add_row("", "")
        table.add_row(Text("not here", style="bold red"), Text(in_tui_words(refusal), style="red"))
    return table


class SweepGridScreen(SweepStep):
    HELP_TITLE = "new sweep: pick a grid"
    BINDINGS = bindings.SWEEP_GRID
    AUTO_FOCUS = "#grids"

    def __init__(self, *, spec: Any = None, run_id: int | None = None) -> None:
        """The base run: `spec` (a RunSpec), or the config of run `run_id`, or the defaults when both are None."""
        super().__init__()
        self.spec = spec
        self.run_id = run_id
        self.entries: dict[str, tuple[Any, str, str | None]] = {}

    def compose(self) -> ComposeResult:
        yield Static(sweep_breadcrumb(self.spec, "grid"), id="breadcrumb")
        with Horizontal(id="picker"):
            yield OptionList(id="grids")
            with VerticalScroll(id="preset-detail-box"):
                yield Static("reading the grid presets ...", id="grid-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#grids", OptionList).border_title = "sweep grid"
        self.load_grids(self.spec, self.run_id)

    @work(thread=True, exclusive=True, group="grids", exit_on_error=False)
    def load_grids(self, spec: Any, run_id: int | None) -> None:
        from difftui.engine.config.catalog import Catalog, load_preset
        from difftui.engine.config.model import PresetError
        from difftui.engine.store import Store
        from difftui.engine.sweeps import RunSpec, plan_sweep
        catalog = Catalog(self.app.preset_dirs)
        if spec is None and run_id is not None:
            import json
            with Store(self.app.db_path) as store:
                run = store.get_run(run_id)
            if run is None:
                raise PresetError(f"run {run_id} is gone")
            spec = RunSpec.from_config(json.loads(run["config"]), catalog)
        spec = spec or RunSpec()
        entries = []
        for name, path in catalog.files("sweeps").items():
            try:
                grid = load_preset("sweeps", path)
            except PresetError as e:
                entries.append((name, None, one_line(e), None))
                continue
            try:
                plan_sweep(catalog, grid, spec)
                refusal = None
            except Exception as e:                  # PresetError, or a member that does not even build: this grid only
                refusal = one_line(e)
            entries.append((name, grid, "", refusal))
        self.post_message(GridsLoaded(spec, entries))

    @unless_closing
    def on_grids_loaded(self, message: GridsLoaded) -> None:
        self.spec = message.spec
        self.query_one("#breadcrumb", Static).update(sweep_breadcrumb(self.spec, "grid"))
        self.entries = {name: (grid, error, refusal) for name, grid, error, refusal in message.entries}
        options = self.query_one("#grids", OptionList)
        options.clear_options()
        first = None
        for i, (name, grid, _error, refusal) in enumerate(message.entries):
            if grid is None:
                label = Text(f"{name} (invalid)", style="red")
            elif refusal:
                label = Text(f"{name}  (n/a)", style="dim")
            else:
                label = Text(name)
                first = i if first is None else first
            options.add_option(Option(label, id=name, disabled=grid is None))
        if first is not None:
            options.highlighted = first
        if not message.entries:
            self.query_one("#grid-detail", Static).update("no grid presets found (presets/sweeps/*.yaml)")
        elif first is None:
            name, grid, error, refusal = message.entries[0]
            self.query_one("#grid-detail", Static).update(grid_detail(name, grid, error, refusal,
                                                                      base_words(self.spec)))

    @on(OptionList.OptionHighlighted, "#grids")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        name = event.option.id
        grid, error, refusal = self.entries.get(name, (None, "not loaded", None))
        detail = grid_detail(name, grid, error, refusal, base_words(self.spec))
        self.query_one("#grid-detail", Static).update(detail)

    def action_pick_grid(self) -> None:
        """Enter: take the highlighted grid (the list's own Enter is hidden behind this one)."""
        options = self.query_one("#grids", OptionList)
        if options.highlighted is not None:
            self._pick(options.get_option_at_index(options.highlighted).id)

    @on(OptionList.OptionSelected, "#grids")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self._pick(event.option.id)                     # a mouse click

    def _pick(self, name: str) -> None:
        from difftui.tui.screens.sweep_setup import SweepSetupScreen
        if name not in self.entries:
            return
        grid, error, refusal = self.entries[name]
        if grid is None:
            self.notify(f"{name}: {error}", title="invalid grid preset", severity="error", timeout=8)
            return
        if refusal:
            self.notify(in_tui_words(refusal), title="grid does not apply", severity="warning", timeout=8)
            return
        self.app.push_screen(SweepSetupScreen(self.spec, grid))
