"""What the TUI says where the engine's words are the CLI's (issue 16 item 8).

The engine words its errors and hints for the command line ("pass --set dataset.root=DIR", "resume with a larger
--max-steps", "pass --inception PATH"), and `difftui ...` prints them as they are. In the TUI those flags do not
exist: every line the TUI shows names a key or a field of the TUI instead, and is short; details that do not fit a
line (which file, where it was looked for) go behind `?` (the help screen lists them under "details").

- `in_tui_words(text)`: the engine's CLI hints rewritten to the TUI's fields and keys (one table, PHRASES), applied
  wherever the TUI shows an engine line: errors of workers, the review's error line, the data check, sweep refusals,
  the status line, evaluation jobs, events.
- `steps_exhausted(error)`: `resume` refused a run with no step left; the TUI asks for a new end (TrainFurtherScreen).
- `fid_skipped(...)`: the evaluation started without FID; a short line, and the details for `?`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Advice", "PHRASES", "in_tui_words", "steps_exhausted", "fid_skipped", "FID_TOPIC"]

FID_TOPIC = "FID needs the Inception weights"


@dataclass(frozen=True)
class Advice:
    """A short line for a toast or a status line, and (optionally) the details the help screen (`?`) shows."""

    text: str
    detail: str = ""
    topic: str = ""


# (pattern, replacement), applied in order. The review screen has the overrides field (key=value ...), the off-tier
# box, the max steps and GPUs fields; the sweep setup has its values and the off-grid box; the dataset step has `c`
# (the data check).
PHRASES: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), r) for p, r in (
    # --set key=value (a hint) and --set 'text': ... (an error about an override)
    (r"(?:pass )?--set ([\w.]+=[^\s,;)]+)", r"set \1 in the review's overrides"),
    (r"--set (?=['\w])", "overrides "),
    (r"(?:pass )?--off-tier", "tick off-tier in the review"),
    (r"\s*\(--off-grid\)", " (the off-grid box)"),
    (r"--off-grid", "the off-grid box"),
    (r"use --device cpu or auto", "leave the GPUs field empty"),
    (r"--gpus", "the GPUs field"),
    (r"--values (?=\S)", "value "),
    (r"--values", "the values"),
    (r"--max-steps", "max steps"),
    (r"`?difftui data check(?: [\w.-]+)?`?", "the data check (c on the new run's dataset step)"),
    (r",? or pass --inception PATH or set DIFFTUI_INCEPTION=PATH", ", or start difftui with DIFFTUI_INCEPTION=PATH"),
))


def in_tui_words(text: str) -> str:
    """The engine's line with its command-line hints put in the TUI's terms (fields, keys); other text unchanged."""
    for pattern, replacement in PHRASES:
        text = pattern.sub(replacement, text)
    return text


def steps_exhausted(run_id: int, step: int, total_steps: int | None, asked: int | None = None) -> str:
    """Why a resume did nothing, and what to do in the TUI (r asks for a new end: TrainFurtherScreen)."""
    if asked is not None:
        return f"run {run_id} is already at step {step:,}: enter a larger number of steps than that"
    return f"run {run_id} completed all {total_steps or step:,} steps: r again and enter a larger number to train on"


def fid_skipped(explicit: str | None, candidates: list[Path], file_name: str, url: str) -> Advice:
    """The evaluation runs without FID: the Inception weights were not found. `explicit` is the path the user named
    (DIFFTUI_INCEPTION) when that is what is missing; `candidates` the places looked at otherwise."""
    if explicit:
        where = f"DIFFTUI_INCEPTION names {explicit}, which is not a file."
    else:
        where = "Looked for it at: " + "; ".join(str(p) for p in candidates) + "."
    home = candidates[0].parent if candidates else Path("~/.cache/difftui/inception")
    detail = (f"FID and precision/recall need the Inception-v3 weights file {file_name} ({url}). {where} "
              f"Put the file in {home}/ (or start difftui with DIFFTUI_INCEPTION=PATH); the next v then measures FID "
              f"too. Without it, v measures the sampler panel and the held-out NLL.")
    return Advice("no FID: the Inception weights are missing (? says where to put them)", detail, FID_TOPIC)
