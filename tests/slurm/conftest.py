"""The Slurm tests run against a real cluster (tests/slurm/start-cluster.sh starts a one-node one; .ci/run does) and
skip, saying why, where there is none."""

import shutil
import subprocess

import pytest

from difftui.engine.store import Store

TOOLS = ("sbatch", "squeue", "sinfo", "scontrol", "scancel", "srun")
HOW = "start one with: SLURM_CONF=$(tests/slurm/start-cluster.sh) (as root), then run the tests"


@pytest.fixture(scope="session")
def slurm_cluster():
    """The cluster's partitions (sinfo), or a skip naming what is missing."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"no Slurm here ({', '.join(missing)} not on PATH); {HOW}")
    done = subprocess.run(["sinfo", "--noheader", "--format=%P %a"], capture_output=True, text=True, timeout=30)
    if done.returncode != 0 or "up" not in done.stdout:
        said = " ".join((done.stderr or done.stdout).split()) or "no partition is up"
        pytest.skip(f"sinfo reaches no Slurm cluster ({said}); {HOW}")
    return done.stdout.split()


@pytest.fixture
def slurm_db(slurm_cluster, engine_hygiene, monkeypatch):
    """tmp_path/runs.db for runs submitted to the cluster: Slurm asked every second, one CPU thread per engine, and
    every job of the test cancelled when it ends (whatever it left)."""
    monkeypatch.setenv("DIFFTUI_SLURM_POLL_S", "1")
    db = engine_hygiene
    yield db
    if db.exists():
        with Store(db, create=False) as store:
            keys = {r["slurm_job"] for r in store.list_runs() if r["slurm_job"]}
        for key in sorted(keys):
            subprocess.run(["scancel", key], capture_output=True, timeout=30)
