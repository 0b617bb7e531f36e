"""An error as one line for the user: the one rule of the CLI's `difftui: error: ...`, the TUI's error toasts and
lines, and the engine's run, job and sweep errors (issue 15: it was written three times, with three results).

    one_line(error)            the message with its white space folded into single spaces; a foreign exception
                               (KeyError, OSError, ZeroDivisionError) keeps its type name in front, because its
                               message alone ("'x'") does not say what went wrong; difftui's own errors (PresetError,
                               StoreError, DataError, DeviceError, SweepError, ...) and plain RuntimeError and
                               ValueError (difftui raises them with sentences: launch/runs.py, LaunchPlan) are
                               written for the user and are shown as they are
    error_line(error, prog)    'difftui: error: <one line>', what a command prints on stderr before it exits

No torch, no Textual.
"""

from __future__ import annotations

__all__ = ["one_line", "error_line"]

OWN_PACKAGE = "difftui."                            # exceptions defined under it carry messages meant for the user
SENTENCES = (RuntimeError, ValueError)              # exactly these (not subclasses) are shown without their name


def one_line(error: BaseException | str | None, *, named: bool | None = None, limit: int | None = None) -> str:
    """`error` as one line. `named`: True puts the type name in front always (a run's error column: 'RunFailed:
    ...'), False never, None (default) for foreign exceptions only. An empty message is the type name alone.
    `limit` cuts the message (not the name) to that many characters, for an error quoted inside another."""
    if error is None:
        return "unknown error"
    text = " ".join(str(error).split())
    if limit is not None and len(text) > limit:
        text = text[:limit]
    if isinstance(error, str):
        return text
    name = type(error).__name__
    if not text:
        return name
    if named is None:
        named = not (type(error).__module__.startswith(OWN_PACKAGE) or type(error) in SENTENCES)
    return f"{name}: {text}" if named else text


def error_line(error: BaseException | str | None, prog: str = "difftui", *, word: str = "error") -> str:
    """'difftui: error: ...' (`word` 'failed' for an unexpected failure); one line, for stderr."""
    return f"{prog}: {word}: {one_line(error)}"
