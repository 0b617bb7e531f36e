"""The new-run flow: dataset profile -> backbone tier -> sampler panel -> recipe -> review.

One generic picker screen serves every preset kind: the presets on the left, the highlighted one's description and
key fields on the right. Picking pushes the next step on top, so escape walks back through the choices made; the
review screen (review.py) launches, and the app then closes the whole flow.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from difftui.engine.numbers import format_setting
from difftui.tui import bindings
from difftui.tui.advice import in_tui_words
from difftui.tui.screens.new_run_step import STEPS, TITLES, NewRunStep

__all__ = ["NewRunStep", "PresetPickerScreen", "STEPS", "preset_fields"]

def _fmt(value: Any) -> str:
    """A preset's value as it is written in its YAML (engine/numbers.format_setting), lists and maps included."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    return format_setting(value)


def preset_fields(kind: str, preset: Any) -> list[tuple[str, str]]:
    """The fields worth reading before choosing a preset of this kind."""
    p = preset
    if kind == "datasets":
        rows = [("source", p.source), ("resolution", f"{p.resolution}x{p.resolution}"), ("channels", p.channels),
                ("classes", p.num_classes or "unconditional"), ("anchor", p.anchor), ("crop", p.crop),
                ("x-flip", "yes" if p.x_flip else "no")]
        if p.root:
            rows.append(("root", p.root))
        return [(k, _fmt(v)) for k, v in rows]
    if kind == "backbones":
        anchor = p.anchor
        rows = [("family", p.family), ("resolution", p.resolution), ("tier group", p.tier_group or "-"),
                ("lr rule", "1e-4/sqrt(C/128) (playbook A.6)" if p.lr_rule == "p1_sqrt" else "the recipe's lr"),
                ("anchor", anchor.paper if anchor else "not a paper anchor")]
        if anchor is not None:
            if anchor.params_m is not None:
                rows.append(("anchor params", f"{anchor.params_m:g} M"))
            if anchor.gmacs is not None:
                rows.append(("anchor GMACs", f"{anchor.gmacs:g}"))
            if anchor.note:
                rows.append(("note", anchor.note))
        rows += [(f"arch.{k}", v) for k, v in p.arch.items()]
        return [(k, _fmt(v)) for k, v in rows]
    if kind == "samplers":
        rows = [("grid sampler", p.grid.describe())]
        rows += [(f"panel {i + 1}", s.describe()) for i, s in enumerate(p.sweep)]
        return rows
    if kind == "recipes":
        ema = f"half-life {p.ema_halflife_kimg:g} kimg" if p.ema_halflife_kimg else f"{p.ema_decay:g}"
        rows = [("optimizer", p.optimizer), ("lr", p.lr), ("batch size", p.batch_size),
                ("total steps", f"{p.total_steps:,}"), ("EMA", ema), ("loss", p.loss), ("variance", p.variance),
                ("schedule", f"{p.schedule}, T={p.diffusion_steps}"), ("dropout", p.dropout),
                ("log / grid / snapshot", f"{p.log_every} / {p.grid_every} / {p.snapshot_every} steps"),
                ("precision", p.precision)]
        if p.lr_rampup_kimg:
            rows.append(("lr ramp-up", f"{p.lr_rampup_kimg:g} kimg"))
        return [(k, _fmt(v)) for k, v in rows]
    return []


def preset_detail(kind: str, name: str, preset: Any, error: str) -> Table | Text:
    if preset is None:
        return Text(f"{name}: {in_tui_words(error)}", style="red")
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    table.add_row(Text(name, style="bold cyan"), Text(preset.description))
    table.add_row("", "")
    for key, value in preset_fields(kind, preset):
        table.add_row(key, value)
    return table


class PresetPickerScreen(NewRunStep):
    """Pick one preset of `kind`; shows the highlighted preset's description and key fields beside the list.

    The presets of every kind are read once per new-run flow by the app (`DifftuiApp.load_presets`), so the later
    steps open with their list already filled. An Enter pressed before the list is filled is kept and applied when
    it is, so keys typed ahead (three quick Enters) each take a step."""

    HELP_TITLE = "new run: pick a preset"
    BINDINGS = [*bindings.PICKER, *bindings.DATASET_PICKER]
    AUTO_FOCUS = "#presets"

    def __init__(self, kind: str, choices: dict[str, str], pending_picks: int = 0) -> None:
        super().__init__(choices)
        self.kind = kind
        self.HELP_TITLE = f"new run: pick a {TITLES[kind]}"
        self.entries: dict[str, tuple[Any, str]] = {}
        self.suggested: dict[str, str] = {}     # backbones: name -> the data set's nearest paper anchor (1.7)
        self.loaded = False
        self.composed = False
        self.pending_picks = pending_picks

    def compose(self) -> ComposeResult:
        yield Static(self.breadcrumb(self.kind), id="breadcrumb")
        with Horizontal(id="picker"):
            yield OptionList(id="presets")
            with VerticalScroll(id="preset-detail-box"):
                yield Static("reading presets ...", id="preset-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.composed = True
        self.query_one("#presets", OptionList).border_title = TITLES[self.kind]
        if self.app.preset_entries is not None:
            self.presets_ready()

    def _anchor_first(self, entries: list) -> list:
        """Playbook 1.7: the tiers of the data set's nearest paper anchor first, marked (the engine ranks them)."""
        from difftui.engine.data.anchors import nearest_anchor, rank_backbones
        profile = next((preset for name, preset, _ in self.app.preset_entries.get("datasets", [])
                        if name == self.choices["datasets"]), None)
        if profile is None:
            return entries
        anchor = nearest_anchor(profile)
        ranked = rank_backbones(profile, [(name, preset) for name, preset, _ in entries])
        by_name = {e[0]: e for e in entries}
        self.suggested = {name: anchor.task for name, suggested in ranked if suggested}
        return [by_name[name] for name, _ in ranked]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "check_data":
            return self.kind == "datasets"
        return True

    def action_check_data(self) -> None:
        """`c` on the dataset step: the highlighted profile's data-quality table (playbook 1.2, 1.5)."""
        options = self.query_one("#presets", OptionList)
        if options.highlighted is None:
            return
        from difftui.tui.screens.data_check import DataCheckScreen
        self.app.push_screen(DataCheckScreen(options.get_option_at_index(options.highlighted).id))

    def presets_ready(self) -> None:
        """Fill the list from the app's presets (called on mount, or by the app when its read finishes)."""
        from difftui.engine.config.catalog import DEFAULTS
        if self.loaded or not self.composed:
            return
        listed = self.app.preset_entries.get(self.kind, [])
        if self.kind == "backbones" and "datasets" in self.choices:
            listed = self._anchor_first(listed)
        self.entries = {name: (preset, error) for name, preset, error in listed}
        options = self.query_one("#presets", OptionList)
        options.clear_options()
        for name, preset, _error in listed:
            label = Text(name) if preset is not None else Text(f"{name} (invalid)", style="red")
            if name in self.suggested:
                label = Text.assemble(label, ("  * anchor", "bold green"))
            options.add_option(Option(label, id=name))
        remembered = self.app.remembered.get(self.kind)
        fallback = DEFAULTS.get(self.kind)
        if self.kind == "samplers":
            remembered, fallback = self._sampler_defaults(remembered)
        names = [e[0] for e in listed]
        # The explicit choice, then (on the backbone step) the data set's nearest paper anchor, then the last choice.
        for wanted in (self.choices.get(self.kind), next(iter(self.suggested), None), remembered, fallback):
            if wanted in names:
                options.highlighted = names.index(wanted)
                break
        else:
            if names:
                options.highlighted = 0
        if not names:
            self.query_one("#preset-detail", Static).update(f"no {self.kind} presets found")
        self.loaded = True
        if self.pending_picks:
            self.pending_picks -= 1
            self.action_pick()

    def _sampler_defaults(self, remembered: str | None) -> tuple[str | None, str]:
        """The sampler step's (remembered, default): the default follows the recipe this flow trains (its recipe,
        else the last one used, else the default recipe) as in the CLI (catalog.default_sampler: EDM Heun for an EDM
        recipe); the last sampler is offered only when it was used with that same recipe."""
        from difftui.engine.config.catalog import DEFAULTS, default_sampler
        from difftui.engine.config.model import to_dict
        last = self.app.remembered
        recipe_name = self.choices.get("recipes") or last.get("recipes") or DEFAULTS["recipes"]
        recipe = next((p for name, p, _ in self.app.preset_entries.get("recipes", []) if name == recipe_name), None)
        fallback = default_sampler(to_dict(recipe)) if recipe is not None else DEFAULTS["samplers"]
        return (remembered if last.get("recipes") == recipe_name else None), fallback

    def _sampler_for(self, choices: dict[str, str], recipe: Any) -> dict[str, str]:
        """The sampler step came first: a sampler that cannot sample the picked recipe's model (DDIM for an EDM
        recipe; the engine's sampler_error) gives way to the recipe's own (catalog.default_sampler), said in a toast;
        a sampler that can is kept."""
        from difftui.engine.config.catalog import default_sampler
        from difftui.engine.config.model import to_dict
        from difftui.engine.core_rules import sampler_error
        picked = choices.get("samplers")
        sampler = next((p for n, p, _ in self.app.preset_entries.get("samplers", []) if n == picked), None)
        if sampler is None:
            return choices
        objective = "edm" if recipe.loss == "edm" else "ddpm"
        if sampler_error(sampler.grid, objective=objective, variance=recipe.variance, T=recipe.diffusion_steps) is None:
            return choices
        wanted = default_sampler(to_dict(recipe))
        self.notify(f"sampler {wanted}: {picked} cannot sample the {choices['recipes']} recipe's model "
                    f"(esc twice to choose another)", title="sampler follows the recipe", timeout=8)
        return {**choices, "samplers": wanted}

    @on(OptionList.OptionHighlighted, "#presets")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        name = event.option.id
        preset, error = self.entries.get(name, (None, "not loaded"))
        detail = preset_detail(self.kind, name, preset, error)
        if name in self.suggested and isinstance(detail, Table):
            detail.add_row("suggested", Text(f"nearest paper anchor of the data set: {self.suggested[name]} "
                                             f"(playbook 1.7)", style="green"))
        self.query_one("#preset-detail", Static).update(detail)

    def action_pick(self) -> None:
        """Enter: take the highlighted preset (kept for later while the list is still being read)."""
        if not self.loaded:
            self.pending_picks += 1
            return
        options = self.query_one("#presets", OptionList)
        if options.highlighted is None:
            return
        self._picked(options.get_option_at_index(options.highlighted).id)

    @on(OptionList.OptionSelected, "#presets")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self._picked(event.option.id)                     # a mouse click

    def _picked(self, name: str) -> None:
        preset, error = self.entries.get(name, (None, "not loaded"))
        if preset is None:
            self.pending_picks = 0
            self.notify(f"{name}: {in_tui_words(error)}", title="invalid preset", severity="error", timeout=8)
            return
        choices = {**self.choices, self.kind: name}
        if self.kind == "recipes":
            choices = self._sampler_for(choices, preset)
        pending, self.pending_picks = self.pending_picks, 0
        i = STEPS.index(self.kind)
        if i + 1 < len(STEPS):
            self.app.push_screen(PresetPickerScreen(STEPS[i + 1], choices, pending_picks=pending))
        else:
            from difftui.tui.screens.review import ReviewScreen
            self.app.push_screen(ReviewScreen(choices))
