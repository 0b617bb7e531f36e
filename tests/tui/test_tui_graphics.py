"""Which image protocol difftui picks, from a real terminal's recorded answers, and that it asks before the app runs.

`detect_graphics()` runs in a child process on a pseudo-terminal; this side plays the terminal: it reads the child's
queries from the pty and answers each one with what xterm (as a VT340), kitty or a plain xterm answered when they
were asked the same (tests/tui/data/terminal_answers.json), with the same window size in pixels. So the whole of
textual-image's detection runs for real: its DA1 query, its kitty graphics query, its cell-size probe; and difftui's
XTVERSION query when the terminal answered for kitty graphics (textual-image's placeholders need kitty 0.28+).
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

ANSWERS = json.loads((Path(__file__).parent / "data" / "terminal_answers.json").read_text())

CHILD = r"""
import json, sys
from difftui.tui import graphics
kind = graphics.detect_graphics()
from textual_image._terminal import get_cell_size
cell = get_cell_size()
sys.stdout.write("\nRESULT " + json.dumps({"kind": kind, "cell": [cell.width, cell.height],
                                           "label": graphics.label("halfcell")}) + "\n")
sys.stdout.flush()
"""


def play_terminal(recorded: dict, timeout: float = 60.0) -> tuple[dict, list[str]]:
    """Run detect_graphics() on a pty whose other end answers as `recorded`; returns (result, queries seen)."""
    master, slave = pty.openpty()
    rows, cols, xpix, ypix = recorded["winsize"]
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, xpix, ypix))
    env = {**os.environ, "TERM": recorded["TERM"]}
    env.pop("DIFFTUI_GRAPHICS", None)
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdin=slave, stdout=slave, stderr=subprocess.PIPE,
                            env=env, start_new_session=True)
    os.close(slave)
    seen: list[str] = []
    buffer = ""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 4096).decode("latin-1")
            except OSError:
                break
            buffer += chunk
            # Answer each complete query once, as the recorded terminal did (silence where it was silent).
            while True:
                da1 = buffer.find("\x1b[c")
                tgp = re.search(r"\x1b_G([^\x1b]*)\x1b\\", buffer)
                cell = buffer.find("\x1b[16t")
                version = buffer.find("\x1b[>0q")
                found = [(i, name) for i, name in ((da1, "da1"), (tgp.start() if tgp else -1, "kitty"),
                                                    (cell, "cell"), (version, "xtversion")) if i >= 0]
                if not found:
                    break
                i, name = min(found)
                seen.append(name)
                if name == "da1":
                    answer, buffer = recorded["da1"], buffer[i + 3:]
                elif name == "kitty":
                    query_id = re.search(r"i=(\d+)", tgp.group(1)).group(1)
                    answer = re.sub(r"i=\d+", f"i={query_id}", recorded["kitty"])
                    buffer = buffer[tgp.end():]
                elif name == "cell":
                    answer, buffer = recorded["cell"], buffer[i + 5:]
                else:
                    answer, buffer = recorded["xtversion"], buffer[i + 6:]
                if answer:
                    os.write(master, answer.encode("latin-1"))
            if "RESULT " in buffer and buffer.rstrip().endswith("}"):
                break
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    match = re.search(r"RESULT (\{.*\})", buffer)
    assert match, f"no result from the child; stderr: {proc.stderr.read().decode()[-2000:]}; output: {buffer!r}"
    return json.loads(match.group(1)), seen


@pytest.mark.parametrize("terminal, kind, cell, queries", [
    # xterm as a VT340 lists feature 4 (sixel) in its DA1 answer: no kitty query follows.
    ("xterm-vt340", "sixel", [6, 13], ["da1"]),
    # kitty 0.26.5 has no sixel and answers the graphics query OK, but shows no Unicode placeholders (0.28+): asked
    # its version, it gets half-blocks (checked by hand: its kitty graphics stayed blank in the grid panel).
    ("kitty", "halfcell", [9, 20], ["da1", "kitty", "xtversion"]),
    # A plain xterm (a VT420 id) has neither: half-blocks, after both queries go unanswered or negative.
    ("xterm", "halfcell", [6, 13], ["da1", "kitty"]),
])
def test_detection_from_a_terminals_recorded_answers(terminal, kind, cell, queries):
    result, seen = play_terminal(ANSWERS[terminal])
    assert result["kind"] == kind
    assert result["cell"] == cell                      # the window's pixel size over its cells (TIOCGWINSZ)
    assert seen == queries
    if terminal == "kitty":
        assert result["label"] == "half-blocks (kitty 0.26.5 < 0.28)"


@pytest.mark.parametrize("version, kind", [("kitty(0.28.0)", "kitty"), ("kitty(0.35.2)", "kitty"),
                                           ("kitty(0.27.1)", "halfcell"), ("", "kitty")])
def test_a_kitty_that_shows_placeholders_keeps_kitty_graphics(version, kind):
    # kitty's recorded answers with another version in its XTVERSION answer (not recorded: no newer kitty here);
    # a terminal that does not answer XTVERSION at all keeps what the graphics query said.
    recorded = {**ANSWERS["kitty"], "xtversion": f"\x1bP>|{version}\x1b\\" if version else ""}
    result, seen = play_terminal(recorded)
    assert result["kind"] == kind and seen == ["da1", "kitty", "xtversion"]
    assert result["label"] == ("half-blocks" if kind == "kitty" else "half-blocks (kitty 0.27.1 < 0.28)")


def test_cell_size_falls_back_to_the_terminals_answer_without_pixel_sizes():
    # A pty that reports no pixel size: textual-image asks with CSI 16 t, and kitty answers 20x9 cells.
    recorded = {**ANSWERS["kitty"], "winsize": [25, 88, 0, 0]}
    result, seen = play_terminal(recorded)
    assert (result["kind"], result["cell"]) == ("halfcell", [9, 20])
    assert seen == ["da1", "kitty", "cell", "xtversion"]


def test_the_cli_asks_the_terminal_before_the_app_runs(monkeypatch, tmp_path):
    """Once Textual runs, its input thread takes the terminal's answers (and reads `ESC [ ? 63;4 c` as keys, the `[`
    among them scrubbing the grid back): `open_tui` must have asked before `App.run`."""
    from difftui.tui import graphics
    from difftui.tui.app import DifftuiApp
    from difftui.tui.cli import common, root

    monkeypatch.setattr(graphics, "_detected", None)
    seen = {}

    def fake_run(self, *args, **kwargs):
        seen["detected at run"] = graphics.detected()

    monkeypatch.setattr(DifftuiApp, "run", fake_run)
    root.open_tui(common.Context(tmp_path / "runs.db", []))
    assert seen["detected at run"] in ("sixel", "kitty", "halfcell", "unicode")
