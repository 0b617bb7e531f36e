"""The data side in the real app: `c` on the dataset step opens the data-quality table, the backbone step puts the
data set's paper-anchor tiers first, and ctrl+o on the review screen shows the run's data card."""


from textual.widgets import Markdown
from waiting import pilot_wait

from difftui.tui.app import DifftuiApp
from difftui.tui.screens.data_card import DataCardScreen
from difftui.tui.screens.data_check import DataCheckScreen
from difftui.tui.screens.new_run import PresetPickerScreen
from difftui.tui.screens.review import ReviewScreen

SIZE = (140, 44)


def picker(app, kind):
    return isinstance(app.screen, PresetPickerScreen) and app.screen.kind == kind and app.screen.entries


async def choose(pilot, app, kind, name):
    await pilot_wait(pilot, lambda: picker(app, kind), what=f"the {kind} picker")
    options = app.screen.query_one("#presets")
    options.highlighted = [options.get_option_at_index(i).id for i in range(options.option_count)].index(name)
    await pilot.press("enter")


async def test_c_on_the_dataset_step_opens_the_quality_table_and_escape_returns(tmp_path):
    app = DifftuiApp(db_path=tmp_path / "runs.db")
    async with app.run_test(size=SIZE) as pilot:
        await pilot_wait(pilot, lambda: picker(app, "datasets"), what="the dataset picker")
        assert app.screen.query_one("#presets").get_option_at_index(app.screen.query_one("#presets").highlighted).id \
            == "digits"
        await pilot.press("c")
        screen = await pilot_wait(pilot, lambda: isinstance(app.screen, DataCheckScreen) and app.screen)
        await pilot_wait(pilot, lambda: screen.table is not None, 120, "the table")
        assert screen.table["items"]["train"] + screen.table["items"]["test"] == 1797
        assert "Data-quality table: digits" in screen.query_one("#data-check-table", Markdown).source
        await pilot.press("escape")
        await pilot_wait(pilot, lambda: picker(app, "datasets"), what="back on the dataset picker")


async def test_backbone_step_suggests_the_anchor_tiers_first_and_review_shows_the_data_card(tmp_path):
    app = DifftuiApp(db_path=tmp_path / "runs.db")
    async with app.run_test(size=SIZE) as pilot:
        await choose(pilot, app, "datasets", "cifar10")
        await pilot_wait(pilot, lambda: picker(app, "backbones"), what="the backbone picker")
        options = app.screen.query_one("#presets")
        first = [options.get_option_at_index(i) for i in range(3)]
        assert [o.id for o in first] == ["unet-cifar10", "ddpmpp-cifar10", "ncsnpp-cifar10"]
        assert all("anchor" in str(o.prompt) for o in first)
        assert "anchor" not in str(options.get_option_at_index(3).prompt)
        assert options.get_option_at_index(options.highlighted).id == "unet-cifar10"
        await pilot.press("c")                                      # the data check belongs to the dataset step
        await pilot.pause(0.2)
        assert picker(app, "backbones") and not app.screen.check_action("check_data", ())
        await pilot.press("enter")                                  # unet-cifar10
        await choose(pilot, app, "samplers", "ddim")
        await choose(pilot, app, "recipes", "p1-default")
        review = await pilot_wait(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen.config
                                and app.screen, what="the review")
        assert review.config.dataset.name == "cifar10"
        await pilot.press("ctrl+o")
        card = await pilot_wait(pilot, lambda: isinstance(app.screen, DataCardScreen) and app.screen)
        await pilot_wait(pilot, lambda: "Data card: cifar10" in card.query_one("#data-card", Markdown).source,
                       what="the card")
        source = card.query_one("#data-card", Markdown).source
        assert "## Preprocessing protocol" in source and "CIFAR-10 32x32" in source
        await pilot.press("escape")
        await pilot_wait(pilot, lambda: isinstance(app.screen, ReviewScreen), what="back on the review")
