"""The one read the doctor (engine/doctor) adds to the store: where each of a run's tables stands, so that a
dashboard poll judges a run again only when something new arrived (issue 18).
"""

from __future__ import annotations

from typing import Any

__all__ = ["run_cursors"]


def run_cursors(store: Any, run_id: int) -> tuple:
    """(step, status, newest metric id, newest evals id, newest samples id, newest gpu id) of a run, in one query;
    each MAX is one index seek (the tables' (run_id, id) indexes). None when the run does not exist."""
    rows = store._rows(
        """SELECT r.step AS step, r.status AS status,
                  (SELECT MAX(id) FROM metrics WHERE run_id = r.id) AS metrics,
                  (SELECT MAX(id) FROM evals WHERE run_id = r.id) AS evals,
                  (SELECT MAX(id) FROM samples WHERE run_id = r.id) AS samples,
                  (SELECT MAX(id) FROM gpu WHERE run_id = r.id) AS gpu
           FROM runs r WHERE r.id = ?""", [run_id])
    if not rows:
        return None
    r = rows[0]
    return (r["step"], r["status"], r["metrics"] or 0, r["evals"] or 0, r["samples"] or 0, r["gpu"] or 0)
