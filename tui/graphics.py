"""Which image protocol the terminal speaks (sixel, kitty graphics, else half-block characters), asked once, BEFORE
the app starts.

textual-image 0.12 asks the terminal when its renderable module is imported: a DA1 query (`ESC [ c`, whose answer
lists feature 4 on a sixel terminal) and, when there is no sixel, a kitty graphics query (an APC `ESC _ G ... ESC \\`
that kitty answers `OK`); its widget module then asks for the cell size (TIOCGWINSZ, else `ESC [ 16 t`). Once
Textual runs, its input thread takes those answers first, so the question always times out and the grid falls back
to half-blocks; worse, the answer is read as keystrokes (the `[` of `ESC [ ? 6 3 ; 4 c` is the grid scrubber's
"previous" key). The CLI therefore calls `detect_graphics()` before `App.run`.

`DIFFTUI_GRAPHICS` (sixel, kitty, halfcell, unicode) pins the renderer; the tests pin half-blocks.
"""

from __future__ import annotations

import os

__all__ = ["detect_graphics", "detected", "preferred", "widget_class", "RENDERERS", "LABELS"]

RENDERERS = ("sixel", "kitty", "halfcell", "unicode")
LABELS = {"sixel": "sixel", "kitty": "kitty graphics", "halfcell": "half-blocks", "unicode": "unicode blocks"}

_detected: str | None = None


def detect_graphics() -> str:
    """Ask the terminal (once per process) which protocol it draws images with; returns a name of RENDERERS."""
    global _detected
    if _detected is None:
        # Importing these modules is what asks the terminal (textual-image 0.12): the renderable module sends the
        # sixel and kitty queries, the widget module fills its cell-size cache.
        import textual_image.renderable as renderable
        import textual_image.widget  # noqa: F401

        _detected = {renderable.SixelImage: "sixel", renderable.TGPImage: "kitty",
                     renderable.HalfcellImage: "halfcell"}.get(renderable.Image, "unicode")
    return _detected


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
    """textual-image's widget class for a renderer name."""
    from textual_image import widget
    return {"sixel": widget.SixelImage, "kitty": widget.TGPImage, "halfcell": widget.HalfcellImage,
            "unicode": widget.UnicodeImage}[kind]
