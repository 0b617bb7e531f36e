"""The engine's small parts with known answers: EMA decay rules, checkpoints, the grid PNG, x_T, the log buffer,
device resolution and GPU telemetry without a GPU."""

import ast
import dataclasses
import io
import math
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from difftui.engine.config.catalog import Catalog
from difftui.engine.run.builders import build_ema
from difftui.engine.run.checkpoint import (
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from difftui.engine.run.device import DeviceError, describe_torch_device, resolve_device
from difftui.engine.run.distributed import World
from difftui.engine.run.ema import EMA
from difftui.engine.run.logbuffer import LogBuffer
from difftui.engine.run.meter import Meter
from difftui.engine.run.sample_grid import fixed_noise, grid_png
from difftui.engine.run.telemetry import GpuMonitor
from difftui.engine.store import Store


def recipe(**changes):
    return dataclasses.replace(Catalog().get("recipes", "p1-default"), **changes)


#----------------------------------------------------------------------------
# EMA.

def test_fixed_decay_is_warmed_up_and_reaches_the_p1_value():
    ema = EMA(nn.Linear(1, 1), decay=0.9999)
    assert ema.decay_at(0) == pytest.approx(0.1)
    assert ema.decay_at(300) == pytest.approx(301 / 310)
    assert ema.decay_at(10**7) == 0.9999


def test_halflife_decay_follows_edm_with_rampup():
    r = recipe(batch_size=512, ema_halflife_kimg=500.0)
    ema = build_ema(nn.Linear(1, 1), r)                  # the recipe's P3 form, through the builder
    assert (ema.halflife_kimg, ema.batch_size) == (500.0, 512)
    # Long after the ramp-up: 0.5 ** (batch / halflife_images).
    assert ema.decay_at(10**6) == pytest.approx(0.5 ** (512 / 500_000))
    # During it the half-life is 5% of the images seen: after 10 steps, 0.05 * 5120 = 256 images.
    assert ema.decay_at(9) == pytest.approx(0.5 ** (512 / 256))


def test_ema_update_is_the_lerp_and_copies_buffers():
    net = nn.BatchNorm1d(2)
    ema = build_ema(net, recipe())
    assert ema.decay == 0.9999 and ema.halflife_kimg is None       # p1-default: playbook 4.0
    with torch.no_grad():
        net.weight.fill_(3.0)
        net.running_mean.fill_(7.0)
    beta = float(ema.update(net))                        # update 0: beta = 0.1
    torch.testing.assert_close(ema.net.weight, torch.full((2,), 0.1 * 1.0 + 0.9 * 3.0))
    torch.testing.assert_close(ema.net.running_mean, torch.full((2,), 7.0))
    assert beta == pytest.approx(0.1) and ema.updates == 1
    assert not any(p.requires_grad for p in ema.net.parameters())


#----------------------------------------------------------------------------
# Checkpoints.

def test_checkpoints_keep_the_newest_and_ignore_temp_files(tmp_path):
    for step in (10, 20, 30, 40):
        save_checkpoint(tmp_path, step, {"step": step}, keep=2)
    (tmp_path / ".ckpt-0000050.pt.abc.tmp").write_bytes(b"half written")
    assert [s for s, _ in list_checkpoints(tmp_path)] == [30, 40]
    assert load_checkpoint(latest_checkpoint(tmp_path))["step"] == 40
    assert latest_checkpoint(tmp_path / "none") is None


def test_rng_state_round_trip_restores_every_generator():
    state = rng_state()
    a = (torch.rand(3), random.random(), np.random.rand())
    set_rng_state(state)
    b = (torch.rand(3), random.random(), np.random.rand())
    torch.testing.assert_close(a[0], b[0])
    assert a[1:] == b[1:]


#----------------------------------------------------------------------------
# The grid and x_T (playbook 5.0).

def test_fixed_noise_is_drawn_once_and_reused(tmp_path):
    a = fixed_noise(tmp_path / "x_T.pt", (1, 8, 8), seed=5)
    b = fixed_noise(tmp_path / "x_T.pt", (1, 8, 8), seed=999)   # the file wins over the seed
    assert a.shape == (64, 1, 8, 8)
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="expected"):
        fixed_noise(tmp_path / "x_T.pt", (3, 8, 8), seed=5)


def test_grid_png_tiles_64_digits_legibly():
    images = torch.linspace(-1, 1, 64).view(64, 1, 1, 1).expand(64, 1, 8, 8)
    img = Image.open(io.BytesIO(grid_png(images)))
    assert img.mode == "L"
    # 8 tiles of 8 px scaled x4 to 32 px, 2 px gaps: 8 * 34 + 2.
    assert img.size == (274, 274)
    px = np.asarray(img)
    assert px[2, 2] == 0 and px[2 + 7 * 34, 2 + 7 * 34] == 255     # first tile black, last tile white
    assert len(np.unique(px[2:34, 2:34])) == 1                      # a tile is one nearest-neighbour block


def test_grid_png_rgb():
    img = Image.open(io.BytesIO(grid_png(torch.zeros(64, 3, 32, 32))))
    assert img.mode == "RGB" and img.size == (8 * 34 + 2, 8 * 34 + 2)


#----------------------------------------------------------------------------
# The log buffer.

def _store_with_run(tmp_path):
    store = Store(tmp_path / "runs.db")
    config = {"dataset": {"name": "d"}, "backbone": {"name": "b"}, "sampler": {"name": "s"}, "recipe": {"name": "r"}}
    return store, store.create_run(config, name="t", total_steps=10)


def test_log_buffer_writes_queued_rows_in_one_flush(tmp_path):
    store, run_id = _store_with_run(tmp_path)
    buf = LogBuffer(store, run_id)
    buf.add_metrics(2, 0.008, {"L_simple": 2.0, "lr": 1e-4})
    buf.add_metrics(4, 0.016, {"L_simple": float("nan"), "lr": 1e-4})
    buf.event("hello")
    assert store.series(run_id, "L_simple") == []          # nothing written before the flush
    buf.flush(4, 0.016)
    series = store.series(run_id, "L_simple")
    assert series[0] == (2, 2.0) and series[1][0] == 4 and math.isnan(series[1][1])
    assert [v for _, v in store.series(run_id, "lr")] == pytest.approx([1e-4, 1e-4])
    assert [e["message"] for e in store.events_since(run_id)] == ["hello"]
    run = store.get_run(run_id)
    assert run["step"] == 4 and run["kimg"] == pytest.approx(0.016) and run["heartbeat"] is not None


def test_meter_means_cover_the_finite_steps_and_count_the_skipped_ones():
    meter = Meter(torch.device("cpu"))
    ok, bad = torch.tensor(True), torch.tensor(False)
    for v, flag in ((1.0, ok), (3.0, ok), (float("nan"), bad), (5.0, ok)):
        meter.accumulate({"L_simple": torch.tensor(v), "grad_norm": torch.tensor(2 * v)}, flag)
    first = meter.close(World())
    assert first.means == {"L_simple": 3.0, "grad_norm": 6.0}
    assert (first.steps, first.skipped, first.streak, first.nonfinite_terms) == (4, 1, 0, ["L_simple", "grad_norm"])
    for _ in range(3):
        meter.accumulate({"L_simple": torch.tensor(float("inf")), "grad_norm": torch.tensor(1.0)}, bad)
    second = meter.close(World())
    assert math.isnan(second.means["L_simple"]) and second.skipped == 3 and second.streak == 3
    assert second.nonfinite_terms == ["L_simple"]
    meter.accumulate({"L_simple": torch.tensor(1.0), "grad_norm": torch.tensor(1.0)}, ok)
    assert meter.close(World()).streak == 0                 # a good step ends the run of non-finite ones


def test_meter_partial_interval_survives_a_checkpoint():
    a = Meter(torch.device("cpu"))
    for v in (1.0, 2.0):
        a.accumulate({"L_simple": torch.tensor(v)}, torch.tensor(True))
    a.accumulate({"L_simple": torch.tensor(float("nan"))}, torch.tensor(False))
    b = Meter(torch.device("cpu"))
    b.load_state_dict(a.state_dict())
    for v in (3.0, 6.0):
        b.accumulate({"L_simple": torch.tensor(v)}, torch.tensor(True))
    interval = b.close(World())
    assert interval.means == {"L_simple": 3.0} and interval.steps == 5 and interval.skipped == 1


#----------------------------------------------------------------------------
# Device and telemetry.

def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            resolve_device("cuda:0")
        assert describe_torch_device(torch.device("cpu")) == "cpu (no CUDA)"


TF32_READS = """
import torch
from difftui.engine.run.device import configure_cuda
for tf32 in (True, False):
    configure_cuda(tf32=tf32, cudnn_benchmark=True)
    print(torch.backends.cuda.matmul.allow_tf32, torch.get_float32_matmul_precision(),
          torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.allow_tf32)
"""


def test_configure_cuda_leaves_both_tf32_apis_readable():
    """Issue 19 item 10: after the engine's TF32 switch, the flags and torch.get_float32_matmul_precision() (which
    inductor's max-autotune paths and third-party code read) answer instead of raising over mixed APIs, and agree
    with the per-backend precision. In a process of its own: the switch is process-wide."""
    out = subprocess.run([sys.executable, "-c", TF32_READS], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[:2] == ["True high tf32 True", "False highest ieee False"]


def test_every_tf32_switch_goes_through_the_engines_one_api():
    """engine/run/device.py's set_tf32 is the only place that writes a TF32 setting (bench/ included)."""
    root = Path(__file__).resolve().parents[2]
    writes = re.compile(r"allow_tf32\s*=[^=]|fp32_precision\s*=[^=]|set_float32_matmul_precision\(")
    found = [(str(p.relative_to(root)), n) for p in [*root.glob("engine/**/*.py"), *root.glob("bench/*.py")]
             for n, line in enumerate(p.read_text().splitlines(), 1) if writes.search(line.split("#")[0])]
    device = root / "engine/run/device.py"
    (body,) = [f for f in ast.walk(ast.parse(device.read_text())) if isinstance(f, ast.FunctionDef)
               and f.name == "set_tf32"]
    inside = [("engine/run/device.py", n) for n in range(body.lineno, body.end_lineno + 1)]
    assert found and set(found) <= set(inside), found       # the two flags, written in set_tf32 and nowhere else
    assert len(found) == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
def test_gpu_monitor_without_a_gpu_is_calm():
    mon = GpuMonitor(["GPU-00000000-0000-0000-0000-000000000000"])
    assert not mon.available and mon.status.startswith("no NVIDIA GPU")
    assert mon.sample() == []
    mon.close()
    assert GpuMonitor([]).sample() == []


#----------------------------------------------------------------------------
# Launch backends.

def test_the_launch_backends_build_argv_lists_for_one_process_torchrun_and_several_machines(tmp_path):
    import sys

    from difftui.engine.launch.backends import engine_argv, engine_env
    from difftui.engine.launch.plan import LaunchPlan
    db = tmp_path / "runs.db"
    tail = ["-m", "difftui.engine", "train", "7", "--db", str(db.resolve())]
    assert engine_argv(db, 7) == [sys.executable, *tail]
    two = LaunchPlan(nproc_per_node=2, gpus=(2, 3))
    assert engine_argv(db, 7, two) == [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                                       "--max-restarts", "0", "--standalone", *tail]
    assert engine_env(two)["CUDA_VISIBLE_DEVICES"] == "2,3"
    nodes = LaunchPlan(nproc_per_node=8, nnodes=2, rdzv_endpoint="node0:29500")
    argv = engine_argv(db, 7, nodes)
    assert argv[argv.index("--nnodes") + 1] == "2" and argv[argv.index("--rdzv-endpoint") + 1] == "node0:29500"
    assert "--standalone" not in argv and argv[argv.index("--rdzv-id") + 1] == "difftui-run-7"
    assert LaunchPlan.from_json(two.to_json()) == two and LaunchPlan.from_json(None) == LaunchPlan()
    with pytest.raises(ValueError, match="--nnodes > 1 needs --rdzv-endpoint"):
        LaunchPlan(nnodes=2)
    with pytest.raises(ValueError, match="a GPU is named twice"):
        LaunchPlan(nproc_per_node=2, gpus=(1, 1))
