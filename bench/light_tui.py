"""How light the TUI process is (issue 11 item 7): its RSS once the review screen shows the run's parameters, MACs and
device, whether torch was imported, and how long `difftui presets backbones` takes.

    python bench/light_tui.py [--rounds 3] [--baseline-python /path/to/other/venv/bin/python] [--append]

Each figure is measured in fresh processes (the app driven through the new-run flow under App.run_test, at 140x44;
`presets backbones` with an empty user cache, so only the shipped figures are there). `--baseline-python` runs the
same measurement with another checkout's interpreter (e.g. the release before the tier cache) for a before/after
table on the same machine. `--append` adds the table to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DRIVE = r'''
import asyncio, json, sys, time
from difftui.tui.app import DifftuiApp
from difftui.tui.screens.new_run import PresetPickerScreen
from difftui.tui.screens.review import ReviewScreen

def rss_mb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024

async def main():
    t0 = time.perf_counter()
    app = DifftuiApp(db_path="runs.db")
    async with app.run_test(size=(140, 44)) as pilot:
        while time.perf_counter() - t0 < 600:
            s = app.screen
            if isinstance(s, ReviewScreen) and s.facts and "params" in s.facts:
                break
            if isinstance(s, PresetPickerScreen) and s.entries:
                await pilot.press("enter")
            await pilot.pause(0.1)
        return {"seconds": time.perf_counter() - t0, "torch": "torch" in sys.modules,
                "rss_mb": rss_mb("VmRSS:"), "peak_mb": rss_mb("VmHWM:")}

print(json.dumps(asyncio.run(main())))
'''


def review_screen(python: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DIFFTUI_CACHE": str(Path(tmp) / "cache"), "PYTHONDONTWRITEBYTECODE": "1"}
        out = subprocess.run([python, "-c", DRIVE], cwd=tmp, env=env, capture_output=True, text=True, timeout=900)
        if out.returncode != 0:
            raise SystemExit(out.stderr[-2000:])
        return json.loads(out.stdout.strip().splitlines()[-1])


def presets_backbones(python: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DIFFTUI_CACHE": str(Path(tmp) / "cache"), "PYTHONDONTWRITEBYTECODE": "1"}
        start = time.perf_counter()
        out = subprocess.run([python, "-c", "from difftui.tui.cli import main; main()", "presets", "backbones"],
                             cwd=tmp, env=env, capture_output=True, text=True, timeout=900)
        seconds = time.perf_counter() - start
        if out.returncode != 0 or "dit-xl-2" not in out.stdout:
            raise SystemExit(out.stderr[-2000:])
        return seconds


def measure(python: str, rounds: int) -> dict:
    screens = [review_screen(python) for _ in range(rounds)]
    return {"rss_mb": statistics.median(s["rss_mb"] for s in screens),
            "peak_mb": statistics.median(s["peak_mb"] for s in screens),
            "seconds": statistics.median(s["seconds"] for s in screens),
            "torch": any(s["torch"] for s in screens),
            "presets_s": statistics.median(presets_backbones(python) for _ in range(rounds))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--baseline-python", help="another checkout's interpreter, measured the same way")
    ap.add_argument("--append", action="store_true", help="append the table to bench/RESULTS.md")
    args = ap.parse_args()
    rows = [("this checkout", measure(sys.executable, args.rounds))]
    if args.baseline_python:
        rows.insert(0, ("baseline", measure(args.baseline_python, args.rounds)))
    load = os.getloadavg()[1]
    lines = [f"### The TUI's own process (bench/light_tui.py) - {time.strftime('%Y-%m-%d')}, {os.cpu_count()}-core CPU "
             f"({platform.machine()}), no GPU",
             "",
             f"Median of {args.rounds} fresh processes each; the app driven through the new-run flow (defaults: "
             f"digits / unet-demo / ddim / p1-default) until the review screen shows the parameters, MACs and device; "
             f"`difftui presets backbones` with an empty user cache. Load average {load:.1f} over 5 min.",
             "",
             "| code | torch in the TUI | RSS at review (MB) | peak RSS (MB) | app start to review facts (s) "
             "| `presets backbones` (s) |",
             "|---|---|---:|---:|---:|---:|"]
    for name, m in rows:
        lines.append(f"| {name} | {'yes' if m['torch'] else 'no'} | {m['rss_mb']:.0f} | {m['peak_mb']:.0f} "
                     f"| {m['seconds']:.1f} | {m['presets_s']:.1f} |")
    table = "\n".join(lines)
    print(table)
    if args.append:
        path = Path(__file__).with_name("RESULTS.md")
        with path.open("a", encoding="utf-8") as f:
            f.write("\n" + table + "\n")


if __name__ == "__main__":
    main()
