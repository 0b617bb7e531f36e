"""The new-run screens under the keyboard: keys typed faster than the screens appear all land where they were typed,
every key is in the footer and the help screen, q quits, an invalid preset says why, and the last choices come
back next time. No engine is started here (test_tui_new_run.py launches one)."""

from __future__ import annotations

import json

import pytest
from textual import events
from tui_helpers import no_blink, pilot_wait

from difftui.tui import bindings
from difftui.tui.app import DifftuiApp
from difftui.tui.prefs import load_choices, prefs_path, save_choices
from difftui.tui.screens.help import HelpScreen
from difftui.tui.screens.new_run import PresetPickerScreen
from difftui.tui.screens.review import ReviewScreen, form_defaults
from difftui.tui.widgets.tickbox import TickBox

SIZE = (140, 40)


@pytest.fixture
def config_home(tmp_path):
    """Where tests/tui/conftest.py points XDG_CONFIG_HOME (a throwaway folder, never the user's)."""
    return tmp_path / "xdg-config"


def type_fast(app, *keys: str) -> None:
    """Keys as a terminal delivers a burst: all queued at once, with no pause for the app to catch up in between
    (Pilot.press waits for the app to go idle after every key, which would hide the problem)."""
    names = {".": "full_stop", "=": "equals_sign", "_": "underscore", " ": "space", "-": "minus"}
    for key in keys:
        char = key if len(key) == 1 else {"space": " "}.get(key)
        event = events.Key(names.get(key, key), char)
        event.set_sender(app)
        app._driver.send_message(event)


def footer(screen) -> dict[str, str]:
    """The keys the footer shows, as the user reads them (key -> description), less Textual's command palette."""
    from textual.widgets._footer import FooterKey
    return {k.key: k.description for k in screen.query(FooterKey) if k.key != "ctrl+p"}


def values(review: ReviewScreen) -> list[str]:
    return [review.query_one(f"#{i}").value for i in ("batch-size", "max-steps", "overrides")]


async def test_fast_typing_through_the_new_run_screens_loses_nothing(tmp_path):
    app = DifftuiApp(db_path=tmp_path / "runs.db")
    async with app.run_test(size=SIZE) as pilot:
        # Four Enters at once, as soon as the app starts (before the presets are even read): four steps.
        type_fast(app, "enter", "enter", "enter")
        await pilot_wait(pilot, lambda: isinstance(app.screen, PresetPickerScreen) and app.screen.kind == "recipes"
                       and app.screen.loaded, 60, lambda: f"the recipes picker (at {app.screen})")
        # Then Enter into the review screen and the whole form typed in one burst, editing keys included: the
        # review screen is not even composed when the first of these keys arrives.
        type_fast(app, "enter",
                  "backspace", "backspace", "backspace", "3", "2",          # batch size 128 -> 32
                  "tab", "home", "ctrl+k", "2", "0", "0",                     # max steps -> 200
                  "tab", *"recipe.log_every=5", "left", "left", "backspace", "7")   # a typo made on the way
        review = await pilot_wait(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen, 30, "review")
        await pilot_wait(pilot, lambda: values(review) == ["32", "200", "recipe.log_ever7=5"], 30,
                       lambda: f"every key typed, in order (have {values(review)})")
        assert app.focused is review.query_one("#overrides")
        # The resolved config is what was typed (the worker's resolve never rewrites a field).
        await pilot_wait(pilot, lambda: review.config is not None or review.error, 60, "a resolve")
        type_fast(app, "backspace", "y")                            # ... and fixed
        await pilot_wait(pilot, lambda: values(review)[2] == "recipe.log_every=5", 30, "the edit")
        await pilot_wait(pilot, lambda: review.config is not None and review.config.recipe.log_every == 5
                       and review.config.recipe.batch_size == 32 and review.config.recipe.total_steps == 200, 60,
                       lambda: f"the typed config (error: {review.error})")
        assert values(review) == ["32", "200", "recipe.log_every=5"]


async def test_picker_and_review_footers_name_every_key_and_q_quits(tmp_path):
    app = DifftuiApp(db_path=tmp_path / "runs.db")
    async with app.run_test(size=(100, 30)) as pilot:
        picker = await pilot_wait(pilot, lambda: isinstance(app.screen, PresetPickerScreen) and app.screen.loaded
                                and app.screen, 60, "the dataset picker")
        expected = {"enter": "Next", "escape": "Back", "q": "Quit", "question_mark": "Help", "c": "Check data"}
        await pilot_wait(pilot, lambda: footer(picker) == expected, 10, lambda: f"the picker footer {footer(picker)}")
        await pilot.press("enter", "enter", "enter", "enter")
        review = await pilot_wait(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen, 30, "review")
        no_blink(app)
        # Focus is in the batch-size field, where q and ? are typed: the footer offers ctrl+q and F1 instead.
        await pilot_wait(pilot, lambda: footer(review) == {"enter": "Next", "ctrl+l": "Launch", "escape": "Back",
                                                         "ctrl+q": "Quit", "f1": "Help", "ctrl+g": "Sweep this config",
                                                         "ctrl+o": "Data card"}, 10,
                       lambda: f"the review footer {footer(review)}")
        await pilot.press("q")
        assert values(review)[0].endswith("q") is False          # an integer field refuses the letter...
        # An empty max-steps field stands for the default, which the resolve shows as its placeholder.
        await pilot_wait(pilot, lambda: review.config is not None, 60, "the resolved config")
        assert values(review)[1] == "" and review.query_one("#max-steps").placeholder == (
            f"default: {review.config.recipe.total_steps:,} steps")
        assert app.is_running                                     # ...and does not quit
        review.query_one(TickBox).focus()
        await pilot_wait(pilot, lambda: footer(review) == {"enter": "Next", "ctrl+l": "Launch", "escape": "Back",
                                                         "q": "Quit", "question_mark": "Help",
                                                         "ctrl+g": "Sweep this config", "ctrl+o": "Data card"}, 10,
                       lambda: f"the review footer with the checkbox focused {footer(review)}")
        await pilot.press("q")
        await pilot_wait(pilot, lambda: not app.is_running, 10, "q to quit")


async def test_the_checkbox_reads_as_one_and_the_placeholder_as_a_hint(tmp_path):
    app = DifftuiApp(db_path=tmp_path / "runs.db")
    async with app.run_test(size=SIZE) as pilot:
        await pilot_wait(pilot, lambda: isinstance(app.screen, PresetPickerScreen) and app.screen.loaded, 60, "picker")
        await pilot.press("enter", "enter", "enter", "enter")
        review = await pilot_wait(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen, 30, "review")
        box = review.query_one(TickBox)
        assert str(box._button) == "[ ]"
        box.focus()
        await pilot.press("space")
        assert box.value and str(box._button) == "[x]"
        overrides = review.query_one("#overrides")
        assert overrides.value == "" and overrides.placeholder.startswith("e.g. ")
        # The placeholder is drawn in the disabled text colour, in italics: it does not look like a value.
        style = overrides.get_component_rich_style("input--placeholder")
        assert style.italic


async def test_an_invalid_user_preset_shows_its_reason_and_cannot_be_picked(tmp_path):
    presets = tmp_path / "mine"
    (presets / "datasets").mkdir(parents=True)
    (presets / "datasets" / "broken.yaml").write_text("name: broken\nresolution: eight\n")
    app = DifftuiApp(db_path=tmp_path / "runs.db", preset_dirs=[presets])
    async with app.run_test(size=SIZE) as pilot:
        picker = await pilot_wait(pilot, lambda: isinstance(app.screen, PresetPickerScreen) and app.screen.loaded
                                and app.screen, 60, "the dataset picker")
        preset, error = picker.entries["broken"]
        assert preset is None and "broken.yaml" in error and "\n" not in error
        options = picker.query_one("#presets")
        names = [options.get_option_at_index(i).id for i in range(options.option_count)]
        options.highlighted = names.index("broken")
        await pilot.pause()
        detail = str(picker.query_one("#preset-detail").render())
        assert error in detail                                     # the loader's one-line PresetError
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is picker                                # not picked
        assert any(error in str(n.message) for n in app._notifications)


async def test_help_lists_the_keys_of_the_screen_it_was_opened_on(tmp_path):
    app = DifftuiApp(db_path=tmp_path / "runs.db")
    app.set_keymap({"picker.quit": "x"})
    async with app.run_test(size=SIZE) as pilot:
        await pilot_wait(pilot, lambda: isinstance(app.screen, PresetPickerScreen) and app.screen.loaded, 60, "picker")
        await pilot.press("question_mark")
        help_screen = await pilot_wait(pilot, lambda: isinstance(app.screen, HelpScreen) and app.screen, 10, "help")
        listed = {k.description: k.keys for k in help_screen.keys if k.where == "screen"}
        declared = {b.description for b in bindings.PICKER}
        assert declared <= set(listed)                             # from the bindings: never stale
        assert listed["Quit"] == "x"                               # a remapped key is shown remapped
        assert listed["Next"] == "⏎" and listed["Focus Next"] == "tab"        # as the footer draws them
        await pilot.press("escape")
        assert isinstance(app.screen, PresetPickerScreen)


async def test_the_last_choices_come_back_on_the_next_new_run(tmp_path, config_home):
    save_choices({"datasets": "cifar10", "backbones": "unet-cifar10", "samplers": "ddim", "recipes": "p1-default",
                  "batch_size": "16", "max_steps": "300", "overrides": "recipe.log_every=3", "off_tier": False})
    assert prefs_path() == config_home / "difftui" / "new-run.json"
    app = DifftuiApp(db_path=tmp_path / "runs.db")
    async with app.run_test(size=SIZE) as pilot:
        for kind, remembered in (("datasets", "cifar10"), ("backbones", "unet-cifar10"), ("samplers", "ddim"),
                                 ("recipes", "p1-default")):
            picker = await pilot_wait(pilot, lambda kind=kind: isinstance(app.screen, PresetPickerScreen)
                                    and app.screen.kind == kind and app.screen.loaded and app.screen, 60, kind)
            options = picker.query_one("#presets")
            assert options.get_option_at_index(options.highlighted).id == remembered
            await pilot.press("enter")
        review = await pilot_wait(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen, 30, "review")
        assert values(review) == ["16", "300", "recipe.log_every=3"]
        assert "last launch" in str(review.query_one("#review-note").render())


async def test_the_sampler_step_defaults_to_the_sampler_of_the_flows_recipe(tmp_path, config_home):
    """Issue 16 item 11, as in the CLI: the last recipe was P3's EDM one, so the sampler step offers EDM Heun (not
    DDIM, which an EDM model cannot sample), and the review resolves it."""
    save_choices({"datasets": "cifar10", "backbones": "ddpmpp-cifar10", "recipes": "p3-cifar10"})
    app = DifftuiApp(db_path=tmp_path / "runs.db")
    async with app.run_test(size=SIZE) as pilot:
        for kind, name in (("datasets", "cifar10"), ("backbones", "ddpmpp-cifar10")):
            picker = await pilot_wait(pilot, lambda kind=kind: isinstance(app.screen, PresetPickerScreen)
                                    and app.screen.kind == kind and app.screen.loaded and app.screen, 60, kind)
            options = picker.query_one("#presets")
            options.highlighted = [options.get_option_at_index(i).id for i in range(options.option_count)].index(name)
            await pilot.press("enter")
        picker = await pilot_wait(pilot, lambda: isinstance(app.screen, PresetPickerScreen)
                                and app.screen.kind == "samplers" and app.screen.loaded and app.screen, 60, "samplers")
        options = picker.query_one("#presets")
        assert options.get_option_at_index(options.highlighted).id == "edm-heun"
        await pilot.press("enter")
        await pilot_wait(pilot, lambda: isinstance(app.screen, PresetPickerScreen) and app.screen.kind == "recipes"
                       and app.screen.loaded, 60, "recipes")
        await pilot.press("enter")
        review = await pilot_wait(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen, 30, "review")
        assert review.choices["samplers"] == "edm-heun" and review.choices["recipes"] == "p3-cifar10"
        await pilot_wait(pilot, lambda: review.config is not None or review.error, 60, "the resolve")
        assert review.config is not None and review.config.sampler.grid.kind == "edm_heun", review.error


async def test_a_sampler_that_cannot_sample_the_picked_recipe_gives_way_to_the_recipes_own(tmp_path, config_home):
    """DDIM taken on the sampler step, then P3's EDM recipe: the review gets EDM Heun, and a toast says so."""
    app = DifftuiApp(db_path=tmp_path / "runs.db")
    async with app.run_test(size=SIZE) as pilot:
        for kind, name in (("datasets", "cifar10"), ("backbones", "ddpmpp-cifar10"), ("samplers", "ddim"),
                           ("recipes", "p3-cifar10")):
            picker = await pilot_wait(pilot, lambda kind=kind: isinstance(app.screen, PresetPickerScreen)
                                    and app.screen.kind == kind and app.screen.loaded and app.screen, 60, kind)
            options = picker.query_one("#presets")
            options.highlighted = [options.get_option_at_index(i).id for i in range(options.option_count)].index(name)
            await pilot.press("enter")
        review = await pilot_wait(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen, 30, "review")
        assert review.choices["samplers"] == "edm-heun"
        assert any("sampler edm-heun: ddim cannot sample the p3-cifar10 recipe's model" in n.message
                   for n in app._notifications)
        await pilot_wait(pilot, lambda: review.config is not None or review.error, 60, "the resolve")
        assert review.config is not None and review.config.sampler.name == "edm-heun", review.error


def test_remembered_choices_are_written_atomically_and_a_broken_file_is_ignored(config_home):
    path = save_choices({"datasets": "digits", "batch_size": "8", "off_tier": True, "secret": "not kept"})
    assert json.loads(path.read_text()) == {"datasets": "digits", "batch_size": "8", "off_tier": True}
    assert list(path.parent.iterdir()) == [path]               # no temporary file left beside it
    path.write_text("{ not json")
    assert load_choices() == {}
    # Other presets than the remembered ones: the recipe's own batch size and steps.
    save_choices({"datasets": "digits", "backbones": "unet-demo", "samplers": "ddim", "recipes": "p1-default",
                  "batch_size": "8", "max_steps": "50"})

    class Recipe:
        name, batch_size, total_steps = "p3-cifar10", 512, 200_000
    entries = {"recipes": [("p3-cifar10", Recipe(), "")]}
    choices = {"datasets": "digits", "backbones": "unet-demo", "samplers": "ddim", "recipes": "p3-cifar10"}
    got = form_defaults(choices, entries, load_choices())
    assert (got["batch_size"], got["max_steps"], got["note"]) == ("512", "", "the p3-cifar10 recipe")
