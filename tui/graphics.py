"""Which image protocol the terminal speaks (sixel, kitty graphics, else half-block characters), asked once, BEFORE
the app starts.

textual-image 0.12 asks the terminal when its renderable module is imported: a DA1 query (`ESC [ c`, whose answer
lists feature 4 on a sixel terminal) and, when there is no sixel, a kitty graphics query (an APC `ESC _ G ... ESC \\`
that kitty answers `OK`); its widget module then asks for the cell size (TIOCGWINSZ, else `ESC [ 16 t`). Once
Textual runs, its input thread takes those answers first, so the question always times out and the grid falls back
to half-blocks; worse, the answer is read as keystrokes (the `[` of `ESC [ ? 6 3 ; 4 c` is the grid scrubber's
"previous" key). The CLI therefore calls `detect_graphics()` before `App.run`.

textual-image draws kitty graphics through Unicode placeholders (a virtual placement, `U=1`), which kitty shows from
0.28 on: an older kitty answers the graphics query OK and then shows nothing where the grid should be. When the
terminal answered for kitty graphics, it is asked its name and version too (XTVERSION, `ESC [ > 0 q`, answered
`ESC P > | kitty(0.26.5) ESC \\`), and a kitty before 0.28 gets half-blocks, with the reason in the grid's caption.

`DIFFTUI_GRAPHICS` (sixel, kitty, halfcell, unicode) pins the renderer; the tests pin half-blocks.
"""

from __future__ import annotations

import os
import re
import sys

__all__ = ["detect_graphics", "detected", "preferred", "widget_class", "label", "kitty_shows_placeholders",
           "RENDERERS", "LABELS"]

RENDERERS = ("sixel", "kitty", "halfcell", "unicode")
LABELS = {"sixel": "sixel", "kitty": "kitty graphics", "halfcell": "half-blocks", "unicode": "unicode blocks"}

# The first kitty that shows Unicode placeholders (its 0.28.0 changelog: "display images inside programs that do not
# support the protocol").
KITTY_PLACEHOLDERS = (0, 28, 0)

_detected: str | None = None
_note = ""                              # why the terminal's own protocol is not used although it answered for it


def detect_graphics() -> str:
    """Ask the terminal (once per process) which protocol it draws images with; returns a name of RENDERERS."""
    global _detected, _note
    if _detected is None:
        # Importing these modules is what asks the terminal (textual-image 0.12): the renderable module sends the
        # sixel and kitty queries, the widget module fills its cell-size cache.
        import textual_image.renderable as renderable
        import textual_image.widget  # noqa: F401

        kind = {renderable.SixelImage: "sixel", renderable.TGPImage: "kitty",
                renderable.HalfcellImage: "halfcell"}.get(renderable.Image, "unicode")
        if kind == "kitty":
            version = terminal_version()
            if not kitty_shows_placeholders(version):
                kind, _note = "halfcell", "{} < 0.28".format(version.replace("(", " ").rstrip(")"))
        _detected = kind
    return _detected


def terminal_version() -> str | None:
    """The terminal's XTVERSION answer ("kitty(0.26.5)", "XTerm(379)"), or None when it stays silent for 0.1 s. Only
    before the app runs (Textual's input thread would take the answer)."""
    from textual_image._terminal import TerminalError, capture_terminal_response
    start, end = "\x1bP>|", "\x1b\\"
    try:
        with capture_terminal_response(start, end, timeout=0.1) as response:
            sys.__stdout__.write("\x1b[>0q")
            sys.__stdout__.flush()
    except (TerminalError, TimeoutError, OSError):
        return None
    return response.sequence[len(start):-len(end)] or None


def kitty_shows_placeholders(version: str | None) -> bool:
    """False only for a kitty known to be older than 0.28 (an unknown terminal or version is given the benefit)."""
    match = re.fullmatch(r"kitty\((\d+)\.(\d+)(?:\.(\d+))?\)", version or "")
    if match is None:
        return True
    return tuple(int(g or 0) for g in match.groups()) >= KITTY_PLACEHOLDERS


def label(kind: str) -> str:
    """The renderer's name for the grid caption, with the reason when half-blocks stand in for the terminal's own."""
    text = LABELS.get(kind, kind)
    return f"{text} ({_note})" if _note and kind == "halfcell" else text


def detected() -> str | None:
    """What `detect_graphics` found, or None when it has not run in this process."""
    return _detected


def preferred() -> str:
    """The renderer to start with: `DIFFTUI_GRAPHICS` when set, else what the terminal answered."""
    pinned = os.environ.get("DIFFTUI_GRAPHICS", "auto").strip().lower()
    if pinned in RENDERERS:
        return pinned
    return detect_graphics()


def widget_class(kind: str) -> type:
    """textual-image's widget class for a renderer name (sixel: ours, widgets/sixel_image.py, which fixes XTerm's
    grey bar and the characters left on the image's last row)."""
    from textual_image import widget

    from difftui.tui.widgets.sixel_image import SixelImage
    return {"sixel": SixelImage, "kitty": widget.TGPImage, "halfcell": widget.HalfcellImage,
            "unicode": widget.UnicodeImage}[kind]
