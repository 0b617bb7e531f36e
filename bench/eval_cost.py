"""The CPU demo's default evaluation against the estimates said before it (issue 16 item 5).

    difftui run --max-steps 300 --device cpu          # the README's CPU demo (once; about 5 minutes)
    python bench/eval_cost.py --db runs.db --run 1    # `difftui eval 1` timed; the table appended to RESULTS.md

It runs `difftui eval RUN` as a user would (a new evaluator process, the defaults) and records: the estimate the CLI
printed before starting (priced at the run's training speed), the evaluator's own (a timed batch), the wall time of
the whole command and each part's measured seconds, with the machine's load average, which on a shared machine moves
every figure.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", type=Path, default=Path("runs.db"))
    ap.add_argument("--run", type=int, default=1)
    ap.add_argument("--no-append", action="store_true")
    args = ap.parse_args()
    difftui = str(Path(sys.executable).parent / "difftui")
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.run([difftui, "--db", str(args.db), "eval", str(args.run)], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "400"})
    wall = time.perf_counter() - start
    load_after = os.getloadavg()[0]
    if proc.returncode != 0:
        print(proc.stdout + proc.stderr, file=sys.stderr)
        return 1
    out = proc.stdout.replace("\r", "\n").splitlines()
    cli_estimate = next(line for line in out if line.startswith("estimate: "))
    log = (args.db.resolve().parent / "runs" / str(args.run) / "eval.log").read_text().splitlines()
    evaluator_estimate = [line for line in log if line.startswith("estimate: ")][-1]
    panel = sum(float(m.group(1)) for line in out if line.startswith("panel ")
                for m in [re.search(r", ([\d.]+) s$", line)] if m)
    nll = next(line for line in out if line.startswith("NLL "))
    nll_s = float(re.search(r"; ([\d.]+) s$", nll).group(1))
    rows = [("CLI estimate (training speed x 3)", cli_estimate.split(" (")[0].removeprefix("estimate: "),
             cli_estimate),
            ("evaluator estimate (timed batch)", evaluator_estimate.split(" (")[0].removeprefix("estimate: "),
             evaluator_estimate),
            ("measured: panel (4 samplers)", f"{panel:.1f} s", ""),
            ("measured: held-out NLL", f"{nll_s:.1f} s", nll),
            ("measured: `difftui eval` wall", f"{wall:.1f} s", f"load average {load_before:.1f} -> {load_after:.1f} "
                                                               f"on {os.cpu_count()} cores")]
    table = ["| what | time | detail |", "|---|---:|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    print("\n".join(table))
    if not args.no_append:
        import torch
        head = (f"\n### bench/eval_cost.py - {time.strftime('%Y-%m-%d')}, {os.cpu_count()}-core CPU, no GPU "
                f"({platform.machine()}), torch {torch.__version__}\n\n`difftui eval {args.run}` with its defaults on "
                f"the CPU demo run (`difftui run --max-steps 300 --device cpu`): the estimates said before it "
                f"started, then what it took.\n\n")
        section = "## Evaluation cost"
        if section not in RESULTS.read_text():
            head = f"\n{section}\n" + head
        with RESULTS.open("a") as f:
            f.write(head + "\n".join(table) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
