"""The spool and its ingester (issue 17 item 2), on real files and a real runs.db, without an engine: records are
written by `SpoolSink` as an engine writes them. Idempotent (re-reading never duplicates), torn lines wait, kill -9 of
the ingester mid-file loses and duplicates nothing, two ingesting processes never duplicate a row, a bad line is one
line naming the file and the byte, and every record is a Store write method of the same name."""

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from difftui.engine.store import Store, records
from difftui.engine.store.ingest import ingest_run
from difftui.engine.store.layout import spool_dir
from difftui.engine.store.spool import (
    SpoolFile,
    SpoolSink,
    read_heartbeat,
    send_file_command,
    take_file_commands,
    write_run_json,
)

CONFIG = {"dataset": {"name": "digits"}, "backbone": {"name": "unet-demo"}, "sampler": {"name": "ddim"},
          "recipe": {"name": "p1-default"}}


def spool_run(tmp_path: Path, name: str = "runs.db") -> tuple[Path, int, Path]:
    """A run whose engine writes a spool: its row (sink 'spool') and run.json."""
    db = tmp_path / name
    with Store(db) as store:
        run_id = store.create_run(CONFIG, name="node-run", total_steps=100, sink="spool")
        run = store.get_run(run_id)
    write_run_json(run)
    return db, run_id, Path(run["run_dir"])


def batch(sink: SpoolSink, step: int, names=("L_simple", "grad_norm"), final=None) -> None:
    sink.write_batch(sink.run_id, metrics=[(step, step * 0.008, n, step + i / 10, 1000.0 + step)
                                           for i, n in enumerate(names)],
                     events=[(1000.0 + step, "info", f"event at {step}")],
                     run_fields={"step": step, "kimg": step * 0.008, "heartbeat": 1000.0 + step}, final=final)


def rows(db: Path, run_id: int) -> dict[str, list]:
    with Store(db) as store:
        return {
            "metrics": [tuple(r.values()) for r in store._rows(
                "SELECT step, kimg, name, value, time FROM metrics WHERE run_id = ? ORDER BY id", [run_id])],
            "events": [tuple(r.values()) for r in store._rows(
                "SELECT time, level, message FROM events WHERE run_id = ? ORDER BY id", [run_id])],
            "run": {k: v for k, v in store.get_run(run_id).items() if k in ("status", "step", "kimg", "error")},
        }


def ingest(db: Path, run_id: int, **kw):
    with Store(db) as store:
        return ingest_run(store, store.get_run(run_id), **kw)


#----------------------------------------------------------------------------

def test_every_record_is_a_store_write_method_of_the_same_name_and_the_sink_has_it_too():
    for method in records.METHODS:
        assert callable(getattr(Store, method)), method
        assert callable(getattr(SpoolSink, method)), method
    assert records.parse(records.encode("write_batch", [], [], [], {}, None)) == \
        ([["write_batch", [], [], [], {}, None]], None)


def test_a_batch_s_metric_rows_travel_grouped_by_interval_and_come_back_in_order():
    rows = [(5, 0.04, "L_simple", 0.9, 10.0), (5, 0.04, "lr", 1e-4, 10.0), (5, 0.04, "L_simple", 0.8, 10.0),
            (10, 0.08, "L_simple", math.nan, 11.0), (10, 0.08, "lr", math.inf, 11.0)]
    groups = records.group_metrics(rows)
    assert [g[:3] for g in groups] == [[5, 0.04, 10.0], [5, 0.04, 10.0], [10, 0.08, 11.0]]   # a repeated name: new
    back = records.metric_rows(records.parse(records.encode("write_batch", groups, [], [], {}, None))[0][0][1])
    assert back[:3] == rows[:3] and back[4] == rows[4] and math.isnan(back[3][3]) and back[3][:3] == rows[3][:3]


def test_ingest_applies_each_line_once_and_reads_only_new_bytes(tmp_path, monkeypatch):
    db, run_id, run_dir = spool_run(tmp_path)
    with SpoolSink(run_dir, run_id) as sink:
        sink.mark_running(run_id, pid=123, pid_start=1.5, host="node7", started=999.0)
        for step in (10, 20, 30):
            batch(sink, step)
    first = ingest(db, run_id)
    assert first.records == 4 and first.errors == []
    got = rows(db, run_id)
    assert [m[:4] for m in got["metrics"]] == [(s, s * 0.008, n, s + i / 10) for s in (10, 20, 30)
                                              for i, n in enumerate(("L_simple", "grad_norm"))]
    assert got["run"] == {"status": "running", "step": 30, "kimg": 0.24, "error": None}
    with Store(db) as store:
        run = store.get_run(run_id)
    assert (run["host"], run["pid"], run["started"]) == ("node7", 123, 999.0)
    assert run["heartbeat"] == read_heartbeat(run_dir)["time"] > 1030.0       # the file's beat, newer than a batch
    # Nothing new: the same rows, and nothing is parsed (a file that did not grow costs its stat).
    parsed = []
    monkeypatch.setattr(records, "parse", lambda *a: parsed.append(a) or ([], None))
    assert ingest(db, run_id).records == 0 and parsed == []
    monkeypatch.undo()
    assert rows(db, run_id) == got
    # One more line: only its bytes are read.
    size = (spool_dir(run_dir) / "run.jsonl").stat().st_size
    with SpoolSink(run_dir, run_id) as sink:
        batch(sink, 40, final=("completed", None))
    again = ingest(db, run_id)
    assert again.records == 1 and again.bytes == (spool_dir(run_dir) / "run.jsonl").stat().st_size - size
    after = rows(db, run_id)
    assert after["metrics"][:6] == got["metrics"] and len(after["metrics"]) == 8
    assert after["run"]["status"] == "completed" and after["run"]["step"] == 40


def test_a_torn_last_line_waits_until_it_is_complete(tmp_path):
    db, run_id, run_dir = spool_run(tmp_path)
    with SpoolSink(run_dir, run_id) as sink:
        batch(sink, 10)
    line = records.encode("write_batch", [[20, 0.16, 1020.0, {"L_simple": 0.5}]], [], [], {"step": 20}, None)
    path = spool_dir(run_dir) / "run.jsonl"
    complete = path.stat().st_size
    with open(path, "ab") as f:
        f.write(line[:25])                          # the writer is halfway through its line
    assert ingest(db, run_id).records == 1
    with Store(db) as store:
        assert store.spool_positions(run_id)["run.jsonl"] == (complete, None)
        assert [s for s, _ in store.series(run_id, "L_simple")] == [10]
    with open(path, "ab") as f:
        f.write(line[25:])
    assert ingest(db, run_id).records == 1
    with Store(db) as store:
        assert store.series(run_id, "L_simple") == [(10, 10.0), (20, 0.5)]


def test_a_new_writer_cuts_the_torn_tail_a_killed_one_left(tmp_path):
    path = tmp_path / "spool" / "run.jsonl"
    whole = records.encode("truncate_after", 5, 1.0)
    path.parent.mkdir()
    path.write_bytes(whole + b'["write_batch",[[6,0.1,"L_sim')
    f = SpoolFile(path)
    assert f.torn == len(b'["write_batch",[[6,0.1,"L_sim') and path.read_bytes() == whole
    f.append(records.encode("truncate_after", 6, 2.0))
    f.close()
    assert records.parse(path.read_bytes()) == ([["truncate_after", 5, 1.0], ["truncate_after", 6, 2.0]], None)


def test_nan_and_infinities_stay_data_through_the_spool(tmp_path):
    db, run_id, run_dir = spool_run(tmp_path)
    with SpoolSink(run_dir, run_id) as sink:
        sink.write_batch(run_id, metrics=[(1, 0.0, "L_simple", math.nan, 1.0), (1, 0.0, "grad_norm", math.inf, 1.0),
                                          (1, 0.0, "lr", -math.inf, 1.0)])
    ingest(db, run_id)
    with Store(db) as store:
        values = {r["name"]: r["value"] for r in store.metrics_since(run_id)}
    assert math.isnan(values["L_simple"]) and values["grad_norm"] == math.inf and values["lr"] == -math.inf


def test_a_resume_cut_drops_the_rows_the_run_redoes_in_order(tmp_path):
    db, run_id, run_dir = spool_run(tmp_path)
    with SpoolSink(run_dir, run_id) as sink:
        for step in (10, 20, 30):
            batch(sink, step)
    ingest(db, run_id)                              # the first engine's rows are in runs.db already
    with SpoolSink(run_dir, run_id) as sink:        # a second engine resumes from the checkpoint at step 10
        sink.truncate_after(run_id, 10)
        for step in (20, 30):
            batch(sink, step, names=("L_simple",))
    ingest(db, run_id)
    with Store(db) as store:
        steps = [(r["step"], r["name"]) for r in store.metrics_since(run_id)]
    assert steps == [(10, "L_simple"), (10, "grad_norm"), (20, "L_simple"), (30, "L_simple")]


def test_a_cut_also_drops_what_an_evaluator_wrote_before_it_for_the_steps_it_drops(tmp_path):
    """The evaluator's file is read after run.jsonl: its rows of steps past the cut, written before the cut, must
    not come back (as in runs.db written directly, where the cut deletes them), its later ones must."""
    db, run_id, run_dir = spool_run(tmp_path)
    fid = lambda step, value: {"step": step, "sampler": "DDIM", "nfe": 10, "metric": "fid", "value": value,
                               "kind": "fid", "snapshot": step, "samples": 64, "job_id": None}
    grid = run_dir / "grids" / "step-0000020.png"
    grid.parent.mkdir()
    grid.write_bytes(b"png")
    with SpoolSink.for_evaluator(run_dir, run_id) as ev:
        ev.add_eval_results(run_id, [fid(10, 5.0), fid(20, 4.0)], at=100.0)      # before the cut
        ev.add_sample(run_id, step=20, kind="curve", sampler="DDIM", nfe=10, png=b"png", path=str(grid), at=100.0)
    with SpoolSink(run_dir, run_id) as sink:
        batch(sink, 20)
        sink.truncate_after(run_id, 10)             # the resume: steps after 10 are re-done
    with SpoolSink.for_evaluator(run_dir, run_id) as ev:
        ev.add_eval_results(run_id, [fid(20, 3.0)])                                  # the re-done snapshot's
        assert [(r["step"], r["value"]) for r in ev.eval_results(run_id, kind="fid")] == [(10, 5.0), (20, 3.0)]
        assert ev.update_best_snapshot(run_id) == 20
    assert ingest(db, run_id).errors == []
    with Store(db) as store:
        assert [(r["step"], r["value"]) for r in store.eval_results(run_id, kind="fid")] == [(10, 5.0), (20, 3.0)]
        assert store.samples_index(run_id, kind="curve") == [] and store.series(run_id, "L_simple") == []
        assert store.spool_cuts(run_id)[0][0] == 10


def test_a_bad_line_stops_its_file_there_with_one_line_naming_the_file_and_byte(tmp_path):
    db, run_id, run_dir = spool_run(tmp_path)
    path = spool_dir(run_dir) / "run.jsonl"
    with SpoolSink(run_dir, run_id) as sink:
        batch(sink, 10)
    bad_at = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b'["write_batch",[],[],[],{"status":"completed"},null]\n')     # not a field a spool may set
        f.write(records.encode("write_batch", [[20, 0.16, 1020.0, {"L_simple": 0.5}]], [], [], {}, None))
    result = ingest(db, run_id)
    assert result.records == 1
    assert result.errors == [f"{path}: byte {bad_at}: run field 'status' is not one a spool may set "
                             f"(step, kimg, heartbeat, device)"]
    with Store(db) as store:
        assert [s for s, _ in store.series(run_id, "L_simple")] == [10]        # the line before it: applied
        assert store.spool_positions(run_id)["run.jsonl"] == (bad_at, result.errors[0])
        assert store.get_run(run_id)["status"] == "queued"
    assert ingest(db, run_id, retry_errors=False).errors == []                 # a poll skips the file
    assert ingest(db, run_id).errors == result.errors                           # sync tries again: same line
    path.write_bytes(b"")                                                       # replaced by a shorter file
    assert ingest(db, run_id).errors == [f"{path}: 0 bytes, but {bad_at} were already ingested: the file was "
                                         f"replaced or cut (ingesting it again would duplicate rows)"]


@pytest.mark.parametrize("line, reason", [
    (b"not json", "not a JSON line (Expecting value: line 1 column 1 (char 0))"),
    (b'["drop_table","runs"]', "not a spool record (unknown method 'drop_table')"),
    (b'["truncate_after",5]', "truncate_after: expected 2 arguments, got 1"),
    (b'["write_batch",[[1,0.0,5.0,["not","a","map"]]],[],[],{},null]', "write_batch: AttributeError: 'list' object "
                                                                       "has no attribute 'items'"),
])
def test_a_line_that_is_not_a_record_is_named_with_its_byte_offset(tmp_path, line, reason):
    db, run_id, run_dir = spool_run(tmp_path)
    path = spool_dir(run_dir) / "run.jsonl"
    with SpoolSink(run_dir, run_id) as sink:
        batch(sink, 10)
        batch(sink, 20)
    bad_at = path.stat().st_size
    with open(path, "ab") as f:
        f.write(line + b"\n" + records.encode("truncate_after", 0, 1.0))
    result = ingest(db, run_id)
    assert result.records == 2 and result.errors == [f"{path}: byte {bad_at}: {reason}"]
    assert [s for s, _ in Store(db).series(run_id, "L_simple")] == [10, 20]


def test_the_offset_is_read_again_inside_the_write_transaction(tmp_path, monkeypatch):
    """A second front end that read the offsets before the first one committed applies nothing twice."""
    db, run_id, run_dir = spool_run(tmp_path)
    with SpoolSink(run_dir, run_id) as sink:
        for step in range(1, 6):
            batch(sink, step)
    with Store(db) as store:
        stale = store.spool_positions(run_id)       # {}: read before anything was ingested
        run = store.get_run(run_id)
    assert ingest(db, run_id).records == 5
    monkeypatch.setattr(Store, "spool_positions", lambda self, rid: stale)
    with Store(db) as store:
        assert ingest_run(store, run).records == 0
    assert len(rows(db, run_id)["metrics"]) == 10


def big_spool(tmp_path: Path, lines: int = 3000, per_line: int = 20) -> tuple[Path, int, Path]:
    db, run_id, run_dir = spool_run(tmp_path)
    with SpoolSink(run_dir, run_id) as sink:
        for i in range(lines):
            sink.write_batch(run_id, metrics=[(i, i * 0.1, f"m{j}", i + j / 100, 1000.0 + i) for j in range(per_line)],
                             events=[(1000.0 + i, "info", f"line {i}")] if i % 100 == 0 else [],
                             run_fields={"step": i, "kimg": i / 10, "heartbeat": 1000.0 + i})
        sink.write_batch(run_id, final=("completed", None), run_fields={"step": lines})
    return db, run_id, run_dir


INGESTER = """
import os, signal, sys
from difftui.engine.store import Store, records
from difftui.engine.store.ingest import ingest_run
db, run_id, kill_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
applied = 0
original = records.apply
def apply(*args, **kw):
    global applied
    original(*args, **kw)
    applied += 1
    if applied == kill_at:          # rows applied, offset not yet committed: kill -9 mid-transaction
        os.kill(os.getpid(), signal.SIGKILL)
records.apply = apply
import difftui.engine.store.ingest as ingest
ingest.apply = apply
with Store(db) as store:
    print(ingest_run(store, store.get_run(run_id), chunk_bytes=int(sys.argv[4])).records)
"""


def test_an_ingester_killed_mid_file_then_restarted_gives_the_rows_of_one_uninterrupted_ingest(tmp_path):
    db, run_id, run_dir = big_spool(tmp_path)
    size = (spool_dir(run_dir) / "run.jsonl").stat().st_size
    proc = subprocess.run([sys.executable, "-c", INGESTER, str(db), str(run_id), "4", str(64 << 10)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with Store(db) as store:
        position, _ = store.spool_positions(run_id)["run.jsonl"]
    assert 0 < position < size                      # three chunks committed, the fourth rolled back
    assert ingest(db, run_id).errors == []          # the restart
    # The same folder ingested in one go into another database (its own row).
    with Store(tmp_path / "other.db") as store:
        other = store.create_run(CONFIG, name="node-run", total_steps=100, sink="spool", run_dir=str(run_dir))
        assert ingest_run(store, store.get_run(other)).records == 3001
    interrupted, whole = rows(db, run_id), rows(tmp_path / "other.db", other)
    assert interrupted == whole
    assert len(whole["metrics"]) == 3000 * 20 and len(set(m[:3] for m in whole["metrics"])) == 3000 * 20
    assert whole["run"] == {"status": "completed", "step": 3000, "kimg": 299.9, "error": None}


def test_two_ingesting_processes_at_once_never_duplicate_a_row(tmp_path):
    db, run_id, run_dir = big_spool(tmp_path)
    go = tmp_path / "go"
    script = textwrap.dedent(f"""
        import os, sys, time
        from difftui.engine.store import Store
        from difftui.engine.store.ingest import ingest_run
        while not os.path.exists({str(go)!r}):
            time.sleep(0.01)
        total = 0
        with Store({str(db)!r}) as store:
            for _ in range(3):
                total += ingest_run(store, store.get_run({run_id}), chunk_bytes=32 << 10).records
        print(total)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    go.touch()
    counts = [int(p.communicate(timeout=300)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(counts) == 3001                      # each line applied by exactly one of them
    got = rows(db, run_id)
    assert len(got["metrics"]) == 60000 and len(set(m[:3] for m in got["metrics"])) == 60000
    assert len(got["events"]) == 30 and got["run"]["status"] == "completed"


def test_commands_as_files_are_taken_once_in_order(tmp_path):
    run_dir = tmp_path / "runs" / "1"
    send_file_command(run_dir, "snapshot")
    send_file_command(run_dir, "stop", {"why": "user"})
    taken = take_file_commands(run_dir)
    assert [(c["command"], c["args"]) for c in taken] == [("snapshot", {}), ("stop", {"why": "user"})]
    assert take_file_commands(run_dir) == []
    assert sorted(p.name.split("-", 1)[1] for p in (run_dir / "commands" / "done").iterdir()) == \
        ["snapshot.json", "stop.json"]
    with pytest.raises(ValueError, match="lowercase word"):
        send_file_command(run_dir, "../stop")


def test_the_heartbeat_file_says_what_the_engine_last_knew(tmp_path):
    db, run_id, run_dir = spool_run(tmp_path)
    assert read_heartbeat(run_dir) is None
    with SpoolSink(run_dir, run_id) as sink:
        sink.mark_running(run_id, pid=os.getpid(), pid_start=None, host="node7", started=5.0)
        batch(sink, 10)
        sink.heartbeat.beat()
        beat = read_heartbeat(run_dir)
        assert (beat["status"], beat["step"], beat["host"], beat["started"]) == ("running", 10, "node7", 5.0)
        batch(sink, 20, final=("stopped", None))
    beat = read_heartbeat(run_dir)
    assert (beat["status"], beat["step"]) == ("stopped", 20)
    assert json.loads((run_dir / "run.json").read_text())["id"] == run_id


def test_a_database_from_before_the_spool_opens_with_its_runs_writing_it_directly(tmp_path):
    from difftui.engine.store import migrations
    db = tmp_path / "old.db"
    import sqlite3
    conn = sqlite3.connect(db)
    import sqlite_utils
    old = sqlite_utils.Database(conn)
    for m in migrations.MIGRATIONS[:-1]:
        m(old)
    conn.execute(f"PRAGMA user_version = {len(migrations.MIGRATIONS) - 1}")
    conn.execute("INSERT INTO runs (name, status, config, created) VALUES ('old', 'completed', '{}', 0)")
    conn.commit()
    conn.close()
    with Store(db) as store:
        assert store.get_run(1)["sink"] == "db" and store.spool_runs() == []
        assert store.spool_positions(1) == {}


def test_difftui_sync_says_each_run_s_news_and_exits_1_on_a_bad_line(tmp_path):
    from typer.testing import CliRunner

    from difftui.tui.cli import app
    db, run_id, run_dir = spool_run(tmp_path)
    with SpoolSink(run_dir, run_id) as sink:
        batch(sink, 10)
    path = spool_dir(run_dir) / "run.jsonl"
    first = CliRunner().invoke(app, ["--db", str(db), "sync"])
    assert first.exit_code == 0
    assert first.stdout.strip() == f"run 1: 1 new record ({path.stat().st_size} bytes); queued"
    bad_at = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b'["finish_run","exploded",null]\n')
    second = CliRunner().invoke(app, ["--db", str(db), "sync"])
    assert second.exit_code == 1 and second.stdout.strip() == "run 1: nothing new; queued"
    assert second.stderr.strip() == (f"difftui: error: {path}: byte {bad_at}: finish_run: ValueError: finish_run: "
                                     f"'exploded' is not one of completed, stopped, failed")
    empty = CliRunner().invoke(app, ["--db", str(tmp_path / "none.db"), "sync"])
    assert empty.exit_code == 2 and empty.stderr.strip() == f"difftui: error: {tmp_path / 'none.db'}: no such run database"


def test_a_list_ingests_the_spool_runs_that_may_still_be_written_and_leaves_the_long_finished_alone(tmp_path):
    from difftui.engine.store.ingest import RECENT_S, ingest_listed
    db = tmp_path / "runs.db"
    ids = []
    for name in ("long-finished", "just-finished", "long-finished-evaluating", "running"):
        with Store(db) as store:
            run_id = store.create_run(CONFIG, name=name, total_steps=100, sink="spool")
            run = store.get_run(run_id)
        write_run_json(run)
        with SpoolSink(run["run_dir"], run_id) as sink:
            batch(sink, 10)
        ids.append(run_id)
    now = 10 * RECENT_S
    with Store(db) as store:
        for run_id, ended in zip(ids[:3], (now - 2 * RECENT_S, now - 60, now - 2 * RECENT_S), strict=True):
            store.update_run(run_id, status="completed", ended=ended)
        store.create_job(ids[2], "snapshot-eval")
        got = {r.run_id: r.records for r in ingest_listed(store, store.spool_runs(), now=now)}
    assert got == {ids[1]: 1, ids[2]: 1, ids[3]: 1}


def test_difftui_sync_follow_keeps_ingesting_until_interrupted(tmp_path):
    import time
    db, run_id, run_dir = spool_run(tmp_path)
    with SpoolSink(run_dir, run_id) as sink:
        batch(sink, 10)
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from difftui.tui.cli import main; sys.argv[0] = 'difftui';"
                             " main()", "--db", str(db), "sync", "--follow", "--every", "0.2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        steps = lambda: [s for s, _ in Store(db).series(run_id, "L_simple")]
        deadline = time.monotonic() + 120
        while steps() != [10] and time.monotonic() < deadline:
            time.sleep(0.1)
        with SpoolSink(run_dir, run_id) as sink:        # the engine writes on; the next pass takes it
            batch(sink, 20, final=("completed", None))
        while steps() != [10, 20] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert steps() == [10, 20]
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.splitlines()[0].startswith("run 1: 1 new record") and out.splitlines()[-1].endswith("; completed")


def test_an_unreadable_spool_is_one_line_not_a_traceback(tmp_path, monkeypatch):
    db, run_id, run_dir = spool_run(tmp_path)
    with SpoolSink(run_dir, run_id) as sink:
        batch(sink, 10)

    def denied(path):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(os, "listdir", denied)
    assert ingest(db, run_id).errors == [f"{spool_dir(run_dir)}: cannot be read (Permission denied)"]
    monkeypatch.undo()
    (spool_dir(run_dir) / "gpu.0.jsonl").mkdir()     # a file that cannot be opened as one
    assert ingest(db, run_id).errors == [f"{spool_dir(run_dir) / 'gpu.0.jsonl'}: cannot be read (Is a directory)"]
    assert [s for s, _ in Store(db).series(run_id, "L_simple")] == [10]         # the readable file was ingested
