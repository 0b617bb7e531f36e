"""Issue 15 item 4: `--gpus` has one parser (launch/plan.py). The CLI's `run` and `sweep start`, the review screen's
GPUs field and the sweep setup's GPUs field accept and refuse the same text with the same line (only the option's
name differs: `--gpus` on the command line, `GPUs` on a screen)."""

import pytest
from typer.testing import CliRunner

from difftui.engine.config.model import PresetError
from difftui.engine.launch.plan import LaunchPlan, parse_gpus, plan_from_options
from difftui.engine.launch.request import LaunchRequest
from difftui.tui.cli import app
from difftui.tui.screens.sweep_setup import SweepRequest


@pytest.mark.parametrize("text, gpus", [(None, None), ("", None), ("  ", None), ("0", (0,)), ("0,1", (0, 1)),
                                        (" 2, 3 ", (2, 3)), ("1,", (1,))])
def test_gpu_lists_that_parse(text, gpus):
    assert parse_gpus(text) == gpus


BAD = [("0,x", "'0,x': expected GPU numbers separated by commas, e.g. 0,1"),
       (",", "',': no GPU named"),
       ("-1", "'-1': GPU numbers start at 0"),
       ("1,1", ": a GPU is named twice (1,1)")]


@pytest.mark.parametrize("text, tail", BAD)
def test_every_front_end_refuses_a_bad_gpu_list_with_the_same_line(text, tail, tmp_path):
    with pytest.raises(ValueError) as cli_plan:
        plan_from_options(text)
    assert str(cli_plan.value) == f"--gpus {tail}".replace("--gpus :", "--gpus:")
    with pytest.raises(PresetError) as review:
        LaunchRequest(choices=(), batch_size="", max_steps="", overrides="", off_tier=False, gpus=text).plan()
    with pytest.raises(PresetError) as sweep_setup:
        SweepRequest(values=(), off_grid=False, per_device="1", gpus=text).slots("auto")
    screen_line = f"GPUs {tail}".replace("GPUs :", "GPUs:")
    assert str(review.value) == str(sweep_setup.value) == screen_line
    db = str(tmp_path / "runs.db")
    for command in (["run", "--max-steps", "5", "--detach"], ["sweep", "start", "p1-dropout", "--detach"]):
        result = CliRunner().invoke(app, ["--db", db, *command, "--gpus", text])
        assert result.exit_code == 2 and result.stderr.splitlines() == [f"difftui: error: {cli_plan.value}"], \
            (command, result.stderr)


def test_one_process_per_named_gpu():
    assert plan_from_options("0,1") == LaunchPlan(nproc_per_node=2, gpus=(0, 1))
    assert plan_from_options(None, 3) == LaunchPlan(nproc_per_node=3)
    with pytest.raises(ValueError, match=r"--gpus names 2 GPU\(s\) but --nproc-per-node is 3: one process per GPU"):
        plan_from_options("0,1", 3)
