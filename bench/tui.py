"""What the TUI costs (issue 11; targets: under 5% of one core while it watches a running run at its 1 s refresh,
under 150 MB RSS, and a run with 1,000,000 metric rows open in under 1 s).

1. Watching: a real engine trains a tiny CPU run (one thread) and logs every 10 steps; the real `difftui` process
   runs in a pseudo-terminal of 160x45 (this script drains its output, as a terminal would), opens the run's
   dashboard with Enter, and its own CPU time (all threads, from /proc) is read over a window once it has settled;
   RSS and peak RSS from /proc too.
2. Opening: a runs.db with one run of 1,000,000 metric rows (10 series of 100,000 log steps); the dashboard's first
   poll (`read_batch`, every series bucketed by SQL) is timed alone, then the dashboard is opened in the app (headless)
   and timed from mount to the first batch drawn. The query plan of the bucket read is printed.

    python bench/tui.py                     # both parts, appended to bench/RESULTS.md
    python bench/tui.py --watch-s 60 --open-runs 3 --no-record

Prints one table and appends it to bench/RESULTS.md (with the date and the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import math
import os
import platform
import pty
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from datetime import date
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
CLK_TCK = os.sysconf("SC_CLK_TCK")
SERIES = ("L_simple", "L_vlb", "L_hybrid", "lr", "img_per_s", "grad_norm", "flops_ratio", "flops_target",
          "tflops", "mfu")


def machine() -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cores}-core CPU ({platform.processor() or platform.machine()}), no GPU used by the TUI"


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, kb = line.split()[:2]
            values[key] = int(kb) / 1024
    return values["VmRSS:"], values["VmHWM:"]


#----------------------------------------------------------------------------
# 1. Watching a running run.

class Terminal:
    """The TUI on a pty of `cols` x `rows` (with a pixel size, so nothing asks for one); output is drained and the
    last megabyte kept, so `wait_for_text` can see what is on screen."""

    def __init__(self, argv: list[str], cols: int, rows: int, env: dict[str, str]):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, cols * 9, rows * 20))
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
        os.close(slave)
        self.output = b""
        self.lock = threading.Lock()
        self.alive = True
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        while self.alive:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            with self.lock:
                self.output = (self.output + chunk)[-1_000_000:]

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def wait_for_text(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if text.encode() in self.output:
                    return True
            time.sleep(0.1)
        return False

    def close(self) -> None:
        self.send(b"\x11")                          # ctrl+q
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        self.alive = False
        os.close(self.master)


# What the watched engine trains: "fast" logs several intervals a second (a tiny net, batch 8: a stress load);
# "default" is `difftui run --device cpu` itself (unet-demo, batch 128), logging about one interval every 3 s.
WATCH_LOADS = {
    "fast": ["recipe.batch_size=8", "backbone.arch.model_channels=16", "sampler.grid.steps=10", "recipe.log_every=10",
             "recipe.grid_every=500", "recipe.snapshot_every=100000"],
    "default": ["recipe.snapshot_every=100000"],
}


def watch(workdir: Path, watch_s: float, settle_s: float, load: str = "fast") -> dict:
    from difftui.engine.config.catalog import Catalog
    from difftui.engine.launch.runs import new_run, request_stop
    from difftui.engine.store import Store

    db = workdir / f"watch-{load}.db"
    env = {**os.environ, "DIFFTUI_CPU_THREADS": "1", "TERM": "xterm-256color", "COLORTERM": "truecolor"}
    os.environ["DIFFTUI_CPU_THREADS"] = "1"
    config = Catalog().resolve(overrides=WATCH_LOADS[load], max_steps=1_000_000, device="cpu", name="bench-watch")
    run_id = new_run(db, config).run_id
    out: dict = {}
    term = None
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:                   # wait for the engine's first metrics
            with Store(db) as store:
                if store.metric_cursor(run_id):
                    break
            time.sleep(0.5)
        term = Terminal([sys.executable, "-c", "from difftui.tui.cli import main; main()", "--db", str(db)],
                        160, 45, env)
        if not term.wait_for_text("bench-watch", 120):
            raise RuntimeError("the history never showed the run")
        time.sleep(1.0)
        term.send(b"\r")                                     # open the selected (newest) run
        if not term.wait_for_text("FLOPs budget", 60):
            raise RuntimeError("the dashboard never opened")
        time.sleep(settle_s)
        with Store(db) as store:
            rows0, step0 = store.metric_cursor(run_id), store.get_run(run_id)["step"]
        t0, c0 = time.monotonic(), cpu_seconds(term.proc.pid)
        time.sleep(watch_s)
        t1, c1 = time.monotonic(), cpu_seconds(term.proc.pid)
        with Store(db) as store:
            rows1, step1 = store.metric_cursor(run_id), store.get_run(run_id)["step"]
        rss, peak = rss_mb(term.proc.pid)
        out = {"cpu_pct": 100 * (c1 - c0) / (t1 - t0), "rss_mb": rss, "peak_mb": peak, "window_s": t1 - t0,
               "rows_per_s": (rows1 - rows0) / (t1 - t0), "steps_per_s": (step1 - step0) / (t1 - t0),
               "torch": "torch" in _modules_of(term.proc.pid)}
    finally:
        if term is not None:
            term.close()
        try:
            request_stop(db, run_id)
        except RuntimeError as e:                            # the engine ended on its own: say why
            print(f"  {load} load: {e}", file=sys.stderr)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with Store(db) as store:
                if store.get_run(run_id)["status"] not in ("queued", "running", "stopping"):
                    break
            time.sleep(0.5)
    return out


def _modules_of(pid: int) -> str:
    """The shared libraries mapped by a process (to tell whether it loaded torch)."""
    try:
        return Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return ""


#----------------------------------------------------------------------------
# 2. Opening a run with a million metric rows.

def big_db(path: Path, rows: int) -> int:
    from difftui.engine.store import Store
    per_series = rows // len(SERIES)
    with Store(path) as store:
        cfg = {"dataset": {"name": "digits"}, "backbone": {"name": "unet-demo"}, "sampler": {"name": "ddim"},
               "recipe": {"name": "p1-default"}, "device": "cpu"}
        store.create_run(cfg, name="neighbour", total_steps=10)             # another run's rows around it
        run_id = store.create_run(cfg, name="million", total_steps=per_series * 10)
        batch = []
        for i in range(1, per_series + 1):
            step = 10 * i
            for j, name in enumerate(SERIES):
                batch.append((step, step * 0.128, name, 1.0 / (1 + i / 1000) + 0.01 * math.sin(i + j), 0.0))
            if len(batch) >= 200_000:
                store.write_batch(run_id, metrics=batch)
                batch = []
        store.write_batch(run_id, metrics=batch, run_fields={"status": "completed", "step": per_series * 10})
    return run_id


def open_times(db: Path, run_id: int, runs: int) -> dict:
    from difftui.engine.store import Store
    from difftui.tui.screens.dashboard import read_batch

    reads, read_cpu = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.thread_time()
        batch = read_batch(db, run_id, full=True)
        reads.append(time.perf_counter() - t)
        read_cpu.append(time.thread_time() - c)
    series_rows = sum(len(s) for s in batch.series.values())

    async def in_app() -> tuple[float, float]:
        os.environ.setdefault("DIFFTUI_GRAPHICS", "halfcell")
        from difftui.tui.app import DifftuiApp
        from difftui.tui.screens.dashboard import DashboardScreen
        from difftui.tui.screens.history import HistoryScreen
        app = DifftuiApp(db_path=db)
        async with app.run_test(size=(160, 45)) as pilot:
            while not (isinstance(app.screen, HistoryScreen) and app.screen.loaded):
                await pilot.pause(0.05)
            c = time.process_time()
            app.open_dashboard(run_id)
            while not (isinstance(app.screen, DashboardScreen) and app.screen.opened_in is not None):
                await pilot.pause(0.01)
            return app.screen.opened_in, time.process_time() - c

    opened = [asyncio.run(in_app()) for _ in range(runs)]
    opens, open_cpu = [o[0] for o in opened], [o[1] for o in opened]
    with Store(db) as store:
        plan = " | ".join(r[3] for r in store.db.execute(
            "EXPLAIN QUERY PLAN SELECT step / 1024 AS b, COUNT(*), COUNT(value), MIN(value), MAX(value), TOTAL(value)"
            " FROM metrics WHERE run_id = ? AND name = ? AND +id <= ? GROUP BY b",
            [run_id, "L_simple", 2**62]).fetchall())
    return {"read_s": reads, "read_cpu": read_cpu, "open_s": opens, "open_cpu": open_cpu, "rows": series_rows,
            "plan": plan}


#----------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--watch-s", type=float, default=60.0, help="the CPU measuring window")
    ap.add_argument("--settle-s", type=float, default=10.0, help="wait after the dashboard opens")
    ap.add_argument("--rows", type=int, default=1_000_000, help="metric rows of the big run")
    ap.add_argument("--open-runs", type=int, default=3)
    ap.add_argument("--skip-watch", action="store_true")
    ap.add_argument("--loads", default="fast,default", help=f"engine loads to watch ({', '.join(WATCH_LOADS)})")
    ap.add_argument("--no-record", action="store_true", help="print only; do not append to bench/RESULTS.md")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        load = os.getloadavg()[0]
        print(f"building a runs.db with {args.rows:,} metric rows ...", flush=True)
        t = time.perf_counter()
        run_id = big_db(tmp / "big.db", args.rows)
        print(f"  built in {time.perf_counter() - t:.1f} s", flush=True)
        opened = open_times(tmp / "big.db", run_id, args.open_runs)
        watched = {} if args.skip_watch else {
            name: watch(tmp, args.watch_s, args.settle_s, name) for name in args.loads.split(",") if name}
        load = max(load, os.getloadavg()[0])

    med = statistics.median
    lines = [
        f"### The TUI's cost ({date.today().isoformat()}, {machine()})",
        "",
        f"`bench/tui.py`: load average up to {load:.1f} on this machine while it ran (other jobs share it; wall "
        f"times stretch with the load, the CPU times beside them do not).",
        "",
        "| measure | value | target |",
        "|---|---:|---:|",
    ]
    for name, w in watched.items():
        lines += [
            f"| CPU while watching a running run, {name} engine load (dashboard, 1 s refresh, {w['window_s']:.0f} s "
            f"window; engine logging {w['rows_per_s']:.1f} metric rows/s) | {w['cpu_pct']:.1f}% of one core | < 5% |",
            f"| RSS of the TUI process watching it (peak) | {w['rss_mb']:.0f} MB ({w['peak_mb']:.0f} MB) | < 150 MB |",
            f"| torch loaded into the TUI process | {'yes' if w['torch'] else 'no'} | no |",
        ]
    lines += [
        f"| open a run of {args.rows:,} metric rows: first poll (SQL buckets, median of {args.open_runs}), wall "
        f"(CPU) | {med(opened['read_s']) * 1000:.0f} ms ({med(opened['read_cpu']) * 1000:.0f} ms) | < 1 s |",
        f"| open it in the app: mount to first batch drawn (median of {args.open_runs}), wall (CPU of the process)"
        f" | {med(opened['open_s']) * 1000:.0f} ms ({med(opened['open_cpu']) * 1000:.0f} ms) | < 1 s |",
        "",
        f"The first poll holds {opened['rows']:,} rows as {len(SERIES) - 1} bucketed series (flops_target is a "
        f"reference line, not a series); plan of a bucket read: `{opened['plan']}`.",
        "",
    ]
    text = "\n".join(lines)
    print()
    print(text)
    if not args.no_record:
        with open(RESULTS, "a", encoding="utf-8") as f:
            f.write("\n" + text)
        print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
