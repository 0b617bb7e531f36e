"""The CPU default run, before and after a change, in one sitting (issue 7: "no slower than today").

    python bench/cpu_default_ab.py --before /path/to/old/.venv/bin/difftui [--steps 300] [--rounds 1] [--append]

Runs `difftui run --max-steps N --device cpu` (the defaults: digits, unet-demo, ddim, p1-default) with the old and
the new install alternately, each on its own fresh runs.db in a temp folder, and reports per run: the wall time from
the command to the end of the run, the engine's own time (started .. ended), and the median logged img/s over the
second half of the run (the steady state, free of start-up). Alternating A/B rounds keep drift in the machine's
speed from favouring either side.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def one_run(difftui: str, steps: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "runs.db"
        t0 = time.monotonic()
        proc = subprocess.run([difftui, "--db", str(db), "run", "--max-steps", str(steps), "--device", "cpu"],
                              cwd=tmp, capture_output=True, text=True)
        wall = time.monotonic() - t0
        if proc.returncode != 0:
            raise SystemExit(f"{difftui} failed: {proc.stderr[-500:]}")
        conn = sqlite3.connect(db)
        run = conn.execute("SELECT started, ended, step FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        ips = [r[1] for r in conn.execute("SELECT step, value FROM metrics WHERE name = 'img_per_s' ORDER BY step")
               if isinstance(r[1], float) and r[0] > steps // 2]
        final = conn.execute("SELECT value FROM metrics WHERE name = 'L_simple' ORDER BY step DESC LIMIT 1").fetchone()
        conn.close()
    return {"wall_s": wall, "engine_s": run[1] - run[0], "steps": run[2],
            "img_s": statistics.median(ips) if ips else float("nan"), "final_loss": final[0] if final else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="the old install's difftui executable")
    ap.add_argument("--after", default=str(Path(sys.executable).parent / "difftui"), help="the new one's")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--append", action="store_true", help="append the table to bench/RESULTS.md")
    a = ap.parse_args()
    rows = []
    for r in range(a.rounds):
        for label, exe in (("before", a.before), ("after", a.after)):
            res = one_run(exe, a.steps)
            rows.append({"round": r + 1, "side": label, **res})
            print(json.dumps(rows[-1]), flush=True)
    lines = ["| round | side | wall (s) | engine (s) | median img/s (2nd half) | final L_simple |",
             "|---:|---|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['round']} | {row['side']} | {row['wall_s']:.1f} | {row['engine_s']:.1f} | "
                     f"{row['img_s']:.1f} | {row['final_loss']:.4f} |")
    med = {side: statistics.median(r["engine_s"] for r in rows if r["side"] == side) for side in ("before", "after")}
    ratio = med["after"] / med["before"]
    text = "\n".join(lines) + (f"\n\nengine time after / before: {ratio:.3f} "
                               f"({'no slower' if ratio <= 1.03 else 'SLOWER'}; within 3% counts as the same)\n")
    print("\n" + text)
    if a.append:
        load = os.getloadavg()[1] if hasattr(os, "getloadavg") else float("nan")
        head = (f"\n### The CPU default run, before and after ({datetime.date.today().isoformat()}, "
                f"{platform.machine()}, {os.cpu_count()} cores, load average {load:.1f})\n\n"
                f"`python bench/cpu_default_ab.py --steps {a.steps} --rounds {a.rounds}`: `difftui run --max-steps "
                f"{a.steps} --device cpu` with the install before this change and after it, alternately.\n\n")
        with open(ROOT / "RESULTS.md", "a", encoding="utf-8") as f:
            f.write(head + text)


if __name__ == "__main__":
    main()
