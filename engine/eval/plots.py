"""Line charts as PNG bytes, drawn with PIL (the report's loss curves and metric curves; no plotting library).

One chart: a frame, nice tick values on both axes (log10 on y when asked), one polyline per series in a fixed colour
order, a legend in the top-right corner. Series with no finite point are left out of the axes and the legend.
"""

from __future__ import annotations

import io
import math
from typing import Sequence

from difftui.engine.numbers import format_number

__all__ = ["line_chart_png", "nice_ticks"]

COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
          (227, 119, 194), (127, 127, 127)]
MARGIN = dict(left=72, right=16, top=34, bottom=46)


def nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """About `count` round tick values covering [lo, hi] (steps of 1, 2 or 5 times a power of ten)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(count - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    ticks = []
    v = start
    while v <= hi + 1e-9 * step:
        ticks.append(round(v, 12))
        v += step
    return ticks


def line_chart_png(series: dict[str, tuple[Sequence[float], Sequence[float]]], *, title: str = "",
                   xlabel: str = "", ylabel: str = "", log_y: bool = False, markers: bool = False,
                   width: int = 900, height: int = 420) -> bytes:
    """PNG bytes of a line chart of `series` ({name: (xs, ys)})."""
    from PIL import Image, ImageDraw, ImageFont
    font = ImageFont.load_default()
    clean = {}
    for name, (xs, ys) in series.items():
        pts = [(float(x), float(y)) for x, y in zip(xs, ys, strict=False)
               if math.isfinite(float(x)) and math.isfinite(float(y)) and (not log_y or float(y) > 0)]
        if pts:
            clean[name] = [(x, math.log10(y) if log_y else y) for x, y in pts]
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    L, R, T, B = MARGIN["left"], width - MARGIN["right"], MARGIN["top"], height - MARGIN["bottom"]
    d.text((L, 10), title, fill="black", font=font)
    d.rectangle([L, T, R, B], outline=(90, 90, 90))
    if not clean:
        d.text((L + 10, T + 10), "no data", fill=(120, 120, 120), font=font)
        return _png(img)
    xs = [x for pts in clean.values() for x, _ in pts]
    ys = [y for pts in clean.values() for _, y in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    pad = (y1 - y0) * 0.05 or abs(y0) * 0.05 or 1.0
    y0, y1 = y0 - pad, y1 + pad

    def px(x: float) -> float:
        return L + (x - x0) / (x1 - x0) * (R - L)

    def py(y: float) -> float:
        return B - (y - y0) / (y1 - y0) * (B - T)

    for t in nice_ticks(x0, x1):
        if x0 <= t <= x1:
            d.line([px(t), B, px(t), B + 4], fill="black")
            d.text((px(t) - 12, B + 7), format_number(t), fill="black", font=font)
    if log_y:
        yt = [float(e) for e in range(math.floor(y0), math.ceil(y1) + 1)]
        if len([t for t in yt if y0 <= t <= y1]) < 2:
            yt = nice_ticks(y0, y1)
    else:
        yt = nice_ticks(y0, y1)
    for t in yt:
        if y0 <= t <= y1:
            d.line([L - 4, py(t), L, py(t)], fill="black")
            d.line([L + 1, py(t), R - 1, py(t)], fill=(235, 235, 235))
            d.text((4, py(t) - 6), format_number(10 ** t if log_y else t), fill="black", font=font)
    d.text(((L + R) // 2 - 3 * len(xlabel), height - 16), xlabel, fill="black", font=font)
    d.text((4, 16), ylabel + (" (log)" if log_y else ""), fill="black", font=font)
    for i, (name, pts) in enumerate(clean.items()):
        color = COLORS[i % len(COLORS)]
        line = [(px(x), py(y)) for x, y in pts]
        if len(line) > 1:
            d.line(line, fill=color, width=2)
        if markers or len(line) == 1:
            for x, y in line:
                d.ellipse([x - 3, y - 3, x + 3, y + 3], fill=color)
        ly = T + 8 + 14 * i
        d.line([R - 150, ly + 6, R - 130, ly + 6], fill=color, width=3)
        d.text((R - 125, ly), name[:24], fill="black", font=font)
    return _png(img)


def _png(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
