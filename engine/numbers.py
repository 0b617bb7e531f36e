"""How difftui writes a number for a reader: the one formatter of the dashboard, the CLI, the sweep table, compare
and the report, so that a value reads the same wherever it is shown (issue 15: 12345 was '12,345' on the dashboard
and '1.234e+04' in the CLI).

    format_number(v, digits=4)  a measured value: `digits` significant digits, thousands separators from 1,000,
                                scientific notation below 1e-4 and from 1e7; an int is a count, written exactly
    format_fixed(v, decimals)   a value in a column that lines up on the point (FID 3 decimals, NLL 4)
    format_setting(v)           a config value as it is typed back (`--set recipe.dropout=0.1`, a sweep axis, a
                                config difference): no separators, floats in %g
    format_duration(seconds)    an ETA or a span: H:MM:SS, days from 48 hours

Non-finite numbers are data (DESIGN.md): NaN, inf and -inf are spelled out, never hidden; None (nothing measured)
is '-'. Anything that is not a number (a word such as 'recipe') is returned as str(value). No torch, no Textual.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

__all__ = ["format_number", "format_fixed", "format_setting", "format_duration", "MISSING"]

MISSING = "-"                                       # no value (not measured, not logged)
SMALL = 1e-4                                        # below: scientific notation (1.234e-05), as %g does
LARGE = 1e7                                         # from here: scientific notation (1.235e+07)


def _special(value: Any) -> str | None:
    """The words for what is not a finite real number, or None for a finite one."""
    if value is None:
        return MISSING
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    v = float(value)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return None


def format_number(value: Any, digits: int = 4) -> str:
    """A measured value: 12345 -> '12,345', 0.123456 -> '0.1235', 1e-5 -> '1e-05', 1.23456e7 -> '1.235e+07'.

    Between 1e-4 and 1e7 the value is rounded to `digits` significant digits (never fewer than its integer digits,
    so 12345.6 is '12,346') and trailing zeros are dropped; outside that range it is `%.{digits}g`. A Python int
    (a count: steps, images) is written exactly with separators."""
    special = _special(value)
    if special is not None:
        return special
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    v = float(value)
    if v == 0:
        return "0"
    if not SMALL <= abs(v) < LARGE:
        return f"{v:.{digits}g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(v))))
    text = f"{v:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def format_fixed(value: Any, decimals: int) -> str:
    """A value with `decimals` digits after the point, for columns that line up (3.172, 12.346, 1,234.500);
    the same words as `format_number` for None and the non-finite."""
    special = _special(value)
    if special is not None:
        return special
    text = f"{float(value):,.{decimals}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.,") else text        # '-0.000' is '0.000'


def format_setting(value: Any) -> str:
    """A config value as the user types it back: 0.1 -> '0.1', 1e-4 -> '0.0001', 3e-5 -> '3e-05', 128 -> '128',
    'cosine', [1, 2, 2]; None (not set) -> '-'."""
    if value is None:
        return MISSING
    if isinstance(value, float):
        return _special(value) or f"{value:g}"
    return str(value)


def format_duration(seconds: float | None) -> str:
    """An ETA or elapsed time: '0:04:05', '27:46:40', '3d 4h' from 48 hours; '-' when unknown (None, NaN, < 0)."""
    if seconds is None or seconds != seconds or seconds < 0 or math.isinf(seconds):
        return MISSING
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    if h >= 48:
        return f"{h // 24}d {h % 24}h"
    return f"{h}:{m:02d}:{s:02d}"
