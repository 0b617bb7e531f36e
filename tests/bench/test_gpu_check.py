"""The GPU check's CPU dry run (bench/gpu_check.sh --dry-run): every stage of the script the next GPU session runs
(engine step eager and compiled, the attention-kernel probe, a real engine run through runs.db, the bare model step)
works end to end with tiny sizes, and its table is appended where it is told."""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.usefixtures("engine_hygiene")
def test_the_gpu_check_dry_run_completes_every_stage_and_appends_its_table(tmp_path):
    results = tmp_path / "RESULTS.md"
    env = {**os.environ, "OUT": str(tmp_path), "RESULTS_MD": str(results), "HOME": str(tmp_path)}
    proc = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh"), "--dry-run"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = results.read_text()
    assert "## GPU check (" in text and "DRY RUN on the CPU" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| stage")]
    stages = [line.split("|")[1].strip() for line in rows]
    assert stages == ["engine eager"] * 2 + ["attention"] * 2 + ["engine run"] + ["engine compiled"] * 2 + \
        ["bare model eager"] * 2
    assert not any("FAILED" in line or "skipped" in line for line in rows), text
    run = next(line for line in rows if line.startswith("| engine run"))
    assert "metrics, GPU rows and grids arrived" in run
    compiled = next(line for line in rows if line.startswith("| engine compiled"))
    assert "torch.compile (eager)" in compiled
    attention = [line for line in rows if line.startswith("| attention")]
    assert all("head dim 8:" in line for line in attention)
