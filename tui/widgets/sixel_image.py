"""textual-image's sixel widget with two fixes from our side (issue 16 item 12; site-packages is never patched).

1. The light-grey bar over the top rows of every sixel image in XTerm 379. textual-image's encoder defines each
   colour register where it first uses it, and its first pass over each six-pixel band paints whole spans with a
   solid fill (`!300~`) that later passes overwrite. In XTerm 379 the pixels of the opening bands, painted before
   the other registers were defined, come out light grey (checked under Xvfb with `xterm -ti vt340`: the top two
   bands of a grid; without those fills, or with every register defined before the first pixel, the bar is gone).
   `hoist_registers` moves every register definition into the image's header, ahead of the first pixel, and leaves a
   plain select (`#N`) where it was: the same image, pixel for pixel (a test decodes both).

2. Dashboard characters left on the image's last text row (the full-size view showed `│` of the panels beneath).
   textual-image writes the sixel data in the widget's last row and then moves the cursor to the row *below* the
   widget; Textual goes on writing the rest of that row (what lies right of the image) from there, so those cells
   were never redrawn. Here the cursor goes back to the end of the widget's own last row.
"""

from __future__ import annotations

import re
from typing import Iterable

from rich.control import Control
from rich.segment import Segment
from textual.app import ComposeResult
from textual_image.widget.sixel import Image as _SixelImage
from textual_image.widget.sixel import _ImageSixelImpl, _NoopRenderable

__all__ = ["SixelImage", "hoist_registers"]

# A colour register definition: #Pc;Pu;Px;Py;Pz (Pu 1 = HLS, 2 = RGB).
_DEFINE = re.compile(r"#(\d+);([12]);(\d+);(\d+);(\d+)")
# The start of the sixel data: DCS ... q, then the optional raster attributes "Pan;Pad;Ph;Pv.
_HEADER = re.compile(r'\x1bP[0-9;]*q(?:"[0-9;]*)?')


def hoist_registers(sixel: str) -> str:
    """The same sixel image with every colour register defined in its header, before the first pixel. Unchanged
    when it cannot be done without changing the image (a register defined twice with different colours)."""
    header = _HEADER.match(sixel)
    if header is None:
        return sixel
    defined: dict[str, str] = {}
    for match in _DEFINE.finditer(sixel, header.end()):
        register, colour = match.group(1), match.group(0)[len(match.group(1)) + 1:]
        if defined.setdefault(register, colour) != colour:
            return sixel
    if not defined:
        return sixel
    body = _DEFINE.sub(lambda m: f"#{m.group(1)}", sixel[header.end():])
    definitions = "".join(f"#{register}{colour}" for register, colour in defined.items())
    return sixel[:header.end()] + definitions + body


class _Impl(_ImageSixelImpl):
    DEFAULT_CSS = _ImageSixelImpl.DEFAULT_CSS

    def _image_to_sixels(self, image, sixel_options=None, background=None) -> str:
        return hoist_registers(super()._image_to_sixels(image, sixel_options, background))

    def _get_sixel_segments(self, sixel_data: str) -> Iterable[Segment]:
        region = self.screen.find_widget(self).visible_region
        segments = list(super()._get_sixel_segments(sixel_data))
        # Back to the end of the widget's last row (not the row below it), where Textual writes on.
        segments[-1] = Segment(Control.move_to(region.right, region.bottom - 1).segment.text, style=segments[-1].style)
        return segments


class SixelImage(_SixelImage, Renderable=_NoopRenderable):
    """textual_image.widget.SixelImage, drawn by `_Impl` (both fixes above)."""

    def compose(self) -> ComposeResult:
        yield _Impl(self.image, self._sixel_options)
