"""The one-line error in one home (issue 15 item 2): engine/text.py makes the line that the CLI prints
(`difftui: error: ...`), the TUI shows and the engine records."""

import pytest
import typer

from difftui.engine.config.model import PresetError
from difftui.engine.store import StoreError
from difftui.engine.text import error_line, one_line


class OutOfMemoryError(RuntimeError):
    """A foreign RuntimeError subclass (as torch's): its name says what happened."""


@pytest.mark.parametrize("error, line", [
    (PresetError("recipe 'p1':\n  key 'lr':   expected a number,\tgot 'x'"),
     "recipe 'p1': key 'lr': expected a number, got 'x'"),
    (StoreError("no run 7 in runs.db"), "no run 7 in runs.db"),                 # difftui's own: written for the user
    (RuntimeError("run 3 is not running (status completed)"), "run 3 is not running (status completed)"),
    (ValueError("--gpus: a GPU is named twice (0,0)"), "--gpus: a GPU is named twice (0,0)"),
    (KeyError("recipe"), "KeyError: 'recipe'"),                                 # foreign: the name says what went wrong
    (OutOfMemoryError("CUDA out of memory.\nTried to allocate 2 GiB"), "OutOfMemoryError: CUDA out of memory. Tried to "
                                                                       "allocate 2 GiB"),
    (ZeroDivisionError(), "ZeroDivisionError"),                                 # no message: the name alone
    (PresetError(""), "PresetError"),
    ("  two\nlines  ", "two lines"),
    (None, "unknown error"),
])
def test_an_error_is_one_line_named_only_when_its_message_needs_it(error, line):
    assert one_line(error) == line
    assert "\n" not in one_line(error)


def test_the_name_can_be_asked_for_or_refused_and_the_message_cut():
    assert one_line(PresetError("bad tier"), named=True) == "PresetError: bad tier"
    assert one_line(KeyError("x"), named=False) == "'x'"
    assert one_line(OSError("a" * 300), named=True, limit=10) == "OSError: " + "a" * 10


def test_the_command_line_is_the_programs_name_the_word_and_the_one_line():
    assert error_line(StoreError("no run 7\n in runs.db")) == "difftui: error: no run 7 in runs.db"
    assert error_line(KeyError("x"), "difftui eval", word="failed") == "difftui eval: failed: KeyError: 'x'"


def test_the_clis_fail_prints_the_one_line_and_exits_2(capsys):
    from difftui.tui.cli.common import fail
    error = PresetError("dataset 'x':\n  no such preset")
    with pytest.raises(typer.Exit) as exited:
        fail(error)
    assert exited.value.exit_code == 2
    assert capsys.readouterr().err == error_line(error) + "\n" == "difftui: error: dataset 'x': no such preset\n"
