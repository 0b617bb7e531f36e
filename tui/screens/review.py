"""The last step of the new-run flow: the resolved config, what the model costs, where it runs; then launch.

Every edit of batch size, max steps, `--set` overrides or the off-tier switch re-resolves the config in a worker
(PresetError comes back as one line under the form, never a crash). The engine resolves the form
(`difftui.engine.launch.request.LaunchRequest`) and gives the facts (`review_facts`: parameters and MACs from the tier cache,
the device from the cached device probe) without importing torch into this process; launching runs the engine's
launch checks first (`difftui.engine.launch.checks.launch_checks`), so a launch that would fail creates no run.
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
from textual.widgets import Button, Checkbox, Footer, Input, Label, Select, Static
from textual.widgets._select import SelectOverlay
from textual.worker import Worker

from difftui.engine.launch.request import LaunchRequest
from difftui.engine.numbers import format_number
from difftui.engine.text import one_line
from difftui.tui import bindings
from difftui.tui.advice import in_tui_words
from difftui.tui.messages import ConfigMeasured, ConfigRejected, ConfigResolved, LaunchFailed, RunLaunched
from difftui.tui.screens.new_run import NewRunStep
from difftui.tui.widgets.tickbox import TickBox
from difftui.tui.widgets.where_select import WhereSelect

__all__ = ["ReviewScreen", "LaunchRequest", "measure_config", "grid_nfe", "config_yaml"]

DEBOUNCE_S = 0.3


def _form_values(spec: Any) -> dict[str, Any]:
    """A RunSpec as the form's fields: batch size and steps in their own fields, the other overrides as text."""
    sets = list(spec.overrides)
    batch = next((s.split("=", 1)[1] for s in sets if s.startswith("recipe.batch_size=")), "")
    rest = [s for s in sets if not s.startswith("recipe.batch_size=")]
    return {"batch-size": batch, "max-steps": str(spec.max_steps or ""),
            "overrides": " ".join(shlex.quote(s) for s in rest), "off-tier": spec.off_tier}


def config_yaml(data: dict[str, Any]) -> str:
    """Block YAML, except that lists of plain values stay on one line (channel_mult: [1, 2, 2, 2])."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def represent_list(dumper: yaml.SafeDumper, value: list) -> yaml.Node:
        flat = all(not isinstance(v, (dict, list, tuple)) for v in value)
        return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flat)

    Dumper.add_representer(list, represent_list)
    Dumper.add_representer(tuple, represent_list)
    return yaml.dump(data, Dumper=Dumper, sort_keys=False, default_flow_style=False, width=100)


def grid_nfe(spec: Any) -> int:
    """Network evaluations per grid sample (the config model's rule, `sampler_nfe`; playbook 5.3)."""
    from difftui.engine.config.model import sampler_nfe
    return sampler_nfe(spec.kind, spec.steps)


def measure_config(config: Any, cache: dict | None = None) -> dict[str, Any]:
    """The engine's review facts (difftui.engine.launch.request.review_facts); `cache` is unused (the tier cache is)."""
    from difftui.engine.launch.request import review_facts
    return review_facts(config)


def resolve_request(request: LaunchRequest, preset_dirs: list) -> tuple[Any, Any]:
    """The form's RunConfig and LaunchPlan, refused (PresetError, one line) when they do not compose or the batch
    does not split over the plan's processes (engine/config/batch.py, the CLI's and the engine's rule too)."""
    from difftui.engine.config.batch import batch_split_error
    from difftui.engine.config.model import PresetError
    config = request.resolve(preset_dirs)
    plan = request.plan()
    problem = batch_split_error(config.recipe.batch_size, plan.processes)
    if problem is not None:
        raise PresetError(problem)
    return config, plan


def remember(request: LaunchRequest) -> None:
    """Keep this launch's presets and form for the next new run (tui/prefs.py); a file that cannot be written
    only costs the convenience."""
    from difftui.tui.prefs import save_choices
    try:
        save_choices({**dict(request.choices), "batch_size": request.batch_size, "max_steps": request.max_steps,
                      "overrides": request.overrides, "off_tier": request.off_tier})
    except OSError:
        pass


def describe_slurm(slurm: dict[str, Any]) -> str:
    from difftui.engine.config.model import PresetError
    from difftui.engine.launch.slurm.options import options_from_mapping
    try:
        return options_from_mapping(slurm, "the profile").describe()
    except PresetError as e:
        return str(e)


def _count(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:g}"


def form_defaults(choices: dict[str, str], entries: dict[str, list] | None,
                  remembered: dict[str, Any]) -> dict[str, Any]:
    """The review form's first values, known before anything is resolved, so that nothing a worker finds later is
    ever written into a field the user may be typing in: the last launch's form when it used the same four presets,
    else the recipe preset's batch size and an empty max-steps field. An empty max-steps field means "the default":
    the resolve fills it in (the engine's device-fitting default where it has one) and the screen shows it as the
    field's placeholder. `note` says where the values came from."""
    same = all(remembered.get(k) == choices.get(k) for k in ("datasets", "backbones", "samplers", "recipes"))
    if same and remembered.get("batch_size") is not None:
        return {"batch_size": remembered.get("batch_size", ""), "max_steps": remembered.get("max_steps", ""),
                "overrides": remembered.get("overrides", ""), "off_tier": bool(remembered.get("off_tier")),
                "note": "your last launch with these presets"}
    recipe = next((p for name, p, _ in (entries or {}).get("recipes", []) if name == choices.get("recipes")), None)
    if recipe is None:
        return {"batch_size": "", "max_steps": "", "overrides": "", "off_tier": False, "note": ""}
    return {"batch_size": str(recipe.batch_size), "max_steps": "", "overrides": "", "off_tier": False,
            "note": f"the {recipe.name} recipe"}


class ReviewScreen(NewRunStep):
    HELP_TITLE = "new run: review and launch"
    BINDINGS = [*bindings.REVIEW, *bindings.REVIEW_DATA]
    AUTO_FOCUS = "#batch-size"

    def __init__(self, choices: dict[str, str], *, clone_of: int | None = None, spec: Any = None) -> None:
        """`clone_of`: the run being cloned (the new run records it as its parent); `spec`: its options (a RunSpec),
        which fill the form."""
        super().__init__(choices)
        self.clone_of = clone_of
        self.prefill = _form_values(spec) if spec is not None else None
        self.generation = 0
        self.config: Any = None
        self.facts: dict[str, Any] | None = None
        self.error = ""
        self.launching = False
        self._debounce: Timer | None = None
        self.defaults: dict[str, Any] = {}

    def compose(self) -> ComposeResult:
        if self.prefill is not None:                # a clone: the cloned run's options fill the form
            self.defaults = {"batch_size": self.prefill["batch-size"], "max_steps": self.prefill["max-steps"],
                             "overrides": self.prefill["overrides"], "off_tier": self.prefill["off-tier"],
                             "note": f"run {self.clone_of}"}
        else:
            self.defaults = form_defaults(self.choices, self.app.preset_entries, self.app.remembered)
        crumb = self.breadcrumb("review")
        if self.clone_of is not None:
            crumb = Text.assemble((f"clone of run {self.clone_of}  ", "bold yellow"), crumb)
        yield Static(crumb, id="breadcrumb")
        with Horizontal(id="review"):
            with VerticalScroll(id="config-box"):
                yield Static("resolving ...", id="config-yaml")
            with Vertical(id="review-side"):
                yield Static("", id="facts")
                with Vertical(classes="field"):
                    yield Label("batch size")
                    yield Input(self.defaults["batch_size"], id="batch-size", type="integer", compact=True)
                with Vertical(classes="field"):
                    yield Label("max steps")
                    yield Input(self.defaults["max_steps"], id="max-steps", compact=True,
                                placeholder="default (resolving ...)")
                with Vertical(classes="field"):
                    yield Label("overrides (key=value ...)")
                    yield Input(self.defaults["overrides"], id="overrides", compact=True,
                                placeholder="e.g. recipe.grid_every=100 backbone.arch.dropout=0.1")
                with Vertical(classes="field"):
                    yield Label("GPUs (one process each, DDP)")
                    yield Input("", id="gpus", compact=True, placeholder="e.g. 0,1 (empty: one device)")
                with Vertical(classes="field"):
                    yield Label("where (this machine, or a Slurm profile)")
                    yield WhereSelect(id="where")
                yield TickBox("off-tier (explicit)", self.defaults["off_tier"], id="off-tier", compact=True)
                yield Static(Text(f"form values from {self.defaults['note']}" if self.defaults["note"] else "",
                                  style="dim"), id="review-note")
                yield Static("", id="review-error", markup=False)
                yield Button("Launch (ctrl+l)", id="launch", variant="primary", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#config-box").border_title = "resolved config"
        self.query_one("#facts").border_title = "cost and device"
        self._render_facts()
        self.start_resolve()

    # -- the form -> a config, in a worker ------------------------------------------------------------------------

    def request(self) -> LaunchRequest:
        gpus = self.query_one("#gpus", Input).value.strip()
        slurm = self.query_one("#where", WhereSelect).slurm()
        if slurm is not None:                       # the nodes' device: CUDA when the profile asks for GPUs
            return LaunchRequest(
                choices=tuple(sorted(self.choices.items())),
                batch_size=self.query_one("#batch-size", Input).value,
                max_steps=self.query_one("#max-steps", Input).value,
                overrides=self.query_one("#overrides", Input).value,
                off_tier=self.query_one("#off-tier", Checkbox).value,
                device="cuda" if slurm.get("gpus_per_node") else "cpu", gpus=gpus, slurm=slurm)
        return LaunchRequest(
            choices=tuple(sorted(self.choices.items())),
            batch_size=self.query_one("#batch-size", Input).value,
            max_steps=self.query_one("#max-steps", Input).value,
            overrides=self.query_one("#overrides", Input).value,
            off_tier=self.query_one("#off-tier", Checkbox).value,
            device="cuda" if gpus else "auto",      # GPUs named: never fall back to the CPU silently
            gpus=gpus,
        )

    @on(Input.Changed)
    @on(Checkbox.Changed)
    @on(Select.Changed, "#where")
    def _form_changed(self) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(DEBOUNCE_S, self.start_resolve)

    def action_next_field(self) -> None:
        """Enter: on to the next field (resolving what was typed at once); on the Launch button, launch; on the
        "where" list, open it, or take the highlighted choice (this binding comes first, so it does what the list's
        own Enter would)."""
        if isinstance(self.focused, Button):
            self.action_launch()
            return
        if isinstance(self.focused, SelectOverlay):
            self.focused.action_select()
            return
        if isinstance(self.focused, Select):
            self.focused.action_show_overlay()
            return
        if isinstance(self.focused, Input):
            self.start_resolve()
        self.focus_next()

    def start_resolve(self) -> None:
        if self._debounce is not None:
            self._debounce.stop()
            self._debounce = None
        self.generation += 1
        self.resolve_config(self.generation, self.request())

    @work(thread=True, exclusive=True, group="resolve", exit_on_error=False)
    def resolve_config(self, generation: int, request: LaunchRequest) -> None:
        from difftui.engine.config.catalog import config_to_dict
        from difftui.engine.config.model import PresetError
        try:
            config, _ = resolve_request(request, self.app.preset_dirs)
        except PresetError as e:
            self.post_message(ConfigRejected(generation, one_line(e)))
            return
        text = config_yaml(config_to_dict(config))
        self.post_message(ConfigResolved(generation, config, text))
        from difftui.engine.launch.request import review_facts
        try:
            facts = review_facts(config)
        except Exception as e:                  # a network that does not build: shown in the facts panel
            facts = {"error": one_line(e)}
        self.post_message(ConfigMeasured(generation, facts))

    def on_config_resolved(self, message: ConfigResolved) -> None:
        if message.generation != self.generation:
            return
        self.config = message.config
        self.facts = None                       # the measurement of this config follows in ConfigMeasured
        self.error = ""
        self.query_one("#config-yaml", Static).update(
            Syntax(message.yaml_text, "yaml", theme="ansi_dark", background_color="default"))
        self._show_error("")
        # The steps an empty field stands for, shown as its placeholder: never written into the field itself.
        self.query_one("#max-steps", Input).placeholder = f"default: {self.config.recipe.total_steps:,} steps"
        self._render_facts()

    def on_config_rejected(self, message: ConfigRejected) -> None:
        if message.generation != self.generation:
            return
        self.config = None
        self.facts = None
        self.error = message.error
        self._show_error(message.error)
        self._render_facts()

    def on_config_measured(self, message: ConfigMeasured) -> None:
        if message.generation != self.generation:
            return
        self.facts = message.facts
        self._render_facts()

    def _show_error(self, text: str) -> None:
        widget = self.query_one("#review-error", Static)
        widget.update(Text(in_tui_words(text), style="bold red") if text else "")
        widget.set_class(bool(text), "error")

    def _render_facts(self) -> None:
        config, facts = self.config, self.facts
        table = Table.grid(padding=(0, 1))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        table.add_row("presets", " / ".join(self.choices.get(k, "default") for k in
                                            ("datasets", "backbones", "samplers", "recipes")))
        if config is None:
            table.add_row("", Text("resolving ..." if not self.error else "config does not resolve", style="dim"))
            self.query_one("#facts", Static).update(table)
            return
        if facts is None:
            table.add_row("parameters", Text("measuring on the meta device ...", style="dim"))
        elif "error" in facts:
            table.add_row("parameters", Text(f"n/a: {facts['error']}", style="red"))
        else:
            anchor = config.backbone.anchor
            params = Text(f"{_count(facts['params'])} ({facts['params']:,})")
            if anchor is not None and anchor.params_m:
                params.append(f"  paper {anchor.params_m:g} M", style="dim")
            table.add_row("parameters", params)
            gmacs = facts["macs"] / 1e9
            nfe = grid_nfe(config.sampler.grid)
            table.add_row("GMACs/forward", f"{format_number(gmacs)}  (= {format_number(2 * gmacs)} GFLOPs, batch 1)")
            table.add_row("GMACs/sample", f"{format_number(gmacs * nfe)}  (grid sampler, NFE {nfe})")
            tier = facts["tier"]
            table.add_row("tier", Text(tier, style="bold yellow" if "off" in tier else ""))
        lr = config.learning_rate
        rule = ("P1 rule 1e-4/sqrt(C/128)" if config.backbone.lr_rule == "p1_sqrt" else "recipe")
        table.add_row("learning rate", f"{format_number(lr, 3)}  ({rule})")
        r = config.recipe
        table.add_row("training", f"{r.total_steps:,} steps x batch {r.batch_size} = "
                                  f"{r.total_steps * r.batch_size / 1e3:,.1f} kimg")
        table.add_row("loss", f"{r.loss}, {r.schedule} schedule, T={r.diffusion_steps}")
        table.add_row("grid", f"{config.sampler.grid.describe()}, every {r.grid_every} steps")
        where = self.query_one("#where", WhereSelect)
        slurm = where.slurm()
        if slurm is not None:                   # this machine's device does not matter: the nodes' does
            name = where.profile_name()
            table.add_row("where", f"Slurm ({f'profile {name}' if name else 'the cluster defaults'}): "
                                   f"{describe_slurm(slurm)}, device {config.device}")
        elif facts and "device_error" in facts:
            table.add_row("device", Text(facts["device_error"], style="bold red"))
        else:
            table.add_row("device", facts["device"] if facts and "device" in facts else Text("...", style="dim"))
        if where.error:
            table.add_row("slurm.yaml", Text(where.error, style="red"))
        for warning in (facts or {}).get("warnings", []):              # shown, not refused (launch checks)
            table.add_row("warning", Text(in_tui_words(warning), style="yellow"))
        self.query_one("#facts", Static).update(table)

    # -- launch ---------------------------------------------------------------------------------------------------

    @on(Button.Pressed, "#launch")
    def _launch_pressed(self) -> None:
        self.action_launch()

    def action_launch(self) -> None:
        if self.launching:
            return
        self.launching = True
        self.query_one("#launch", Button).disabled = True
        self._show_error("")
        self.launch_run(self.request())

    @work(thread=True, exclusive=True, group="launch", exit_on_error=False)
    def launch_run(self, request: LaunchRequest) -> None:
        from difftui.engine.config.model import PresetError
        from difftui.engine.launch.checks import launch_checks
        from difftui.engine.launch.runs import new_run
        try:
            config, plan = resolve_request(request, self.app.preset_dirs)
        except PresetError as e:
            self.post_message(LaunchFailed(one_line(e)))
            return
        if plan.slurm is not None:              # issue 17 item 7: Slurm's checks (and the data here)
            from difftui.engine.launch.slurm.checks import check_submission
            report = check_submission(self.app.db_path, config, plan.slurm_options())
        else:
            report = launch_checks(config)      # issue 11 item 6: nothing is created when one fails
        if not report.ok:
            self.post_message(LaunchFailed(report.errors[0]))
            return
        for warning in report.warnings:
            self.app.call_from_thread(self.app.notify, in_tui_words(warning), severity="warning", timeout=8)
        started = new_run(self.app.db_path, config, plan=plan, parent_id=self.clone_of)   # the CLI's `run` call
        if started.proc is not None:            # a Slurm job has no process here
            self.app.track(started.run_id, started.proc)
        remember(request)
        self.post_message(RunLaunched(started.run_id))

    def action_sweep_config(self) -> None:
        """Sweep this config: the grid picker, with this form's options as the base of every member."""
        from difftui.engine.config.model import PresetError
        try:
            spec = self.request().spec()
        except PresetError as e:
            self._show_error(str(e))
            return
        self.app.open_sweep_grid(spec=spec)

    def on_launch_failed(self, message: LaunchFailed) -> None:
        self.launching = False
        self.query_one("#launch", Button).disabled = False
        self._show_error(message.error)

    def on_run_launched(self, message: RunLaunched) -> None:
        self.app.notify(f"run {message.run_id} launched")
        self.app.open_dashboard(message.run_id)

    # -- the data card (issue 10; tui/screens/data_card.py) ----------------------------------------------------------

    def action_data_card(self) -> None:
        """ctrl+o: the data card this run will be saved with (runs/<id>/datacard.md; playbook 1.5)."""
        if self.config is None:
            self.app.notify("the config does not resolve yet", severity="warning")
            return
        from difftui.tui.screens.data_card import DataCardScreen
        self.app.push_screen(DataCardScreen(self.config))

    def worker_failed(self, worker: Worker, error: BaseException | None) -> None:
        if worker.group == "launch":
            self.post_message(LaunchFailed(one_line(error)))
        elif worker.group == "resolve":
            self._show_error(one_line(error))
        else:
            super().worker_failed(worker, error)
