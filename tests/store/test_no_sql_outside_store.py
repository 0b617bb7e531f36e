"""Issue 15 item 2: every write to runs.db is a named method of the store, and so is every status change. A raw
UPDATE / INSERT / DELETE statement in engine/ or tui/ outside engine/store/, or a status set through the store's
generic column setters, fails here with the file and line."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STORE = ROOT / "engine" / "store"

WRITES = re.compile(r"\b(UPDATE\s+\w+\s+SET|INSERT\s+(?:OR\s+\w+\s+)?INTO|REPLACE\s+INTO|DELETE\s+FROM)\b")
# update_run(..., status=...), update_sweep(...), update_job_row(...), write_batch(run_fields={"status": ...}):
# the generic setters, which tests may use to prepare a state, but the engine and the TUI never.
STATUS_SET = re.compile(r"\b(update_run|update_sweep|update_job_row)\((?:[^()]|\([^()]*\))*?\bstatus\s*="
                        r"|run_fields\s*=\s*(?:dict\([^)]*\bstatus\s*=|\{[^}]*[\"']status[\"'])", re.S)


def _sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def findings(paths: list[Path], pattern: re.Pattern) -> list[str]:
    out = []
    for path in paths:
        text = path.read_text()
        out += [f"{path.relative_to(ROOT)}:{_line(text, m.start())}: {' '.join(m.group(0).split())[:80]}"
                for m in pattern.finditer(text)]
    return out


def test_no_write_statement_outside_the_store():
    outside = [p for p in _sources("engine", "tui") if STORE not in p.parents]
    assert outside and len(outside) > 100                              # the whole tree was read
    assert findings(outside, WRITES) == []
    # The pattern does see the store's own statements (the check cannot pass by matching nothing).
    seen = findings(_sources("engine/store"), WRITES)
    assert any("UPDATE runs SET" in f for f in seen) and any("jobs.py" in f and "INSERT INTO" in f for f in seen)
    assert any("DELETE FROM" in f for f in seen)


def test_no_status_change_outside_the_stores_named_transitions():
    outside = [p for p in _sources("engine", "tui") if STORE not in p.parents]
    assert findings(outside, STATUS_SET) == []
    # What it looks for, as tests write it to prepare a state.
    assert findings(_sources("tests/tui"), STATUS_SET)
    assert STATUS_SET.search('store.update_run(run_id, status="running", pid=dead_pid())')
    assert STATUS_SET.search('store.write_batch(1, run_fields=dict(status="running", step=5))')
    assert not STATUS_SET.search('store.update_run(run_id, name=name, launch=plan.to_json())')
