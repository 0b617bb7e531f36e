"""The training loop of one run: `python -m difftui.engine train RUN_ID --db PATH` (DESIGN.md, process model).

Playbook 0.0 is the loop: a batch x_0 in [-1,1], the objective's loss (L_simple by default: t ~ U{0..T-1},
eps ~ N(0, I), ||eps - eps_theta(x_t, t)||^2), one Adam step, one EMA update (playbook 4.0), and every K steps the
8x8 grid drawn from the fixed x_T with the EMA weights and the panel's grid sampler (playbook 5.0).

Around it: the loss means, learning rate and img/s go to runs.db in batched transactions with the heartbeat
(`LogBuffer`); checkpoints are atomic and hold everything needed to continue the same curve (`checkpoint`); the
engine polls `commands` at each flush (stop -> checkpoint, then exit with status stopped); a failure sets status
failed with one line `Type: message`, and the traceback goes to runs/<id>/engine.log (this process's stderr).
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch

from difftui.engine.catalog import config_from_dict
from difftui.engine.checkpoint import latest_checkpoint, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from difftui.engine.config import RunConfig
from difftui.engine.device import describe_device, resolve_device, set_cpu_threads
from difftui.engine.ema import EMA
from difftui.engine.grids import fixed_noise, grid_png, save_grid_file
from difftui.engine.heartbeat import Keepalive
from difftui.engine.logbuffer import LogBuffer
from difftui.engine.ownership import Owned, OwnerLock, process_start_time
from difftui.engine.store import Store, StoreError
from difftui.engine.telemetry import GpuMonitor

__all__ = ["Trainer", "train_run", "GPU_EVERY_S"]

GPU_EVERY_S = 2.0                                   # GPU rows about every 2 s (CUDA only)
X_T_SEED_OFFSET = 5_000                             # x_T's generator is independent of the training RNG


class StopRequested(Exception):
    pass


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


#----------------------------------------------------------------------------
# The trainer.

class Trainer:
    """Everything one run trains with, built from its resolved config; `run()` trains to `recipe.total_steps`."""

    def __init__(self, store: Store, run_id: int, config: RunConfig, run_dir: Path):
        self.store = store
        self.run_id = run_id
        self.config = config
        self.recipe = config.recipe
        self.run_dir = run_dir
        self.ckpt_dir = run_dir / "checkpoints"
        self.step = 0
        self.stop_requested = False
        self.last_grid_step = -1
        self.last_ckpt_step = -1
        self.last_gpu = 0.0

    #------------------------------------------------------------------------
    # Setup.

    def setup(self) -> None:
        from difftui.engine.data import BatchStream, build_dataset
        from difftui.engine.diffusion import build_objective
        from difftui.engine.models import build_model

        r = self.recipe
        self.device = resolve_device(self.config.device)
        if self.device.type == "cpu":
            set_cpu_threads()
        else:
            torch.cuda.set_device(self.device)
        # Seed everything once; a resume overwrites these with the checkpoint's RNG states.
        torch.manual_seed(r.seed)
        random.seed(r.seed)
        np.random.seed(r.seed)

        self.data = build_dataset(self.config.dataset)
        self.stream = BatchStream(self.data, r.batch_size, seed=r.seed, x_flip=self.config.dataset.x_flip)
        channels, height, width = self.data.shape

        self.objective = build_objective(r)
        self.num_classes = self.config.dataset.num_classes if r.class_conditional else 0
        self.net = build_model(self.config.backbone, in_channels=channels,
                               out_channels=self.objective.out_channels(channels),
                               resolution=self.config.dataset.resolution, num_classes=self.num_classes,
                               dropout=r.dropout).to(self.device)
        self.net.train()
        if hasattr(self.objective, "to"):
            self.objective.to(self.device)
        self.dynamic = hasattr(self.net, "flops_ratio") and r.flops_lambda is not None
        self.ema = EMA(self.net, r)
        opt_cls = torch.optim.AdamW if r.optimizer == "adamw" else torch.optim.Adam   # playbook 4.0-4.1
        self.optimizer = opt_cls(self.net.parameters(), lr=self.config.learning_rate)
        self.base_lr = self.config.learning_rate

        # playbook 5.0: one x_T per run, saved once, reused by every grid and every resume.
        self.x_T = fixed_noise(self.run_dir / "x_T.pt", (channels, height, width),
                               seed=r.seed + X_T_SEED_OFFSET).to(self.device)
        # A class-conditional grid fixes its labels too: tile k shows class k mod num_classes.
        self.grid_labels = (torch.arange(self.x_T.shape[0], device=self.device) % self.num_classes
                            if self.num_classes else None)
        self.autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=r.precision == "bf16")
        self.log = LogBuffer(self.store, self.run_id, log_every=r.log_every, batch_size=r.batch_size)
        self.gpus = GpuMonitor([self.device.index or 0] if self.device.type == "cuda" else [])

    @property
    def kimg(self) -> float:
        return self.step * self.recipe.batch_size / 1000.0

    def learning_rate(self) -> float:
        """The tier's lr, with P3's linear ramp-up over `lr_rampup_kimg` when set (playbook A.4)."""
        lr = self.base_lr
        if self.recipe.lr_rampup_kimg > 0:
            lr *= min(self.kimg / self.recipe.lr_rampup_kimg, 1.0)
        return lr

    #------------------------------------------------------------------------
    # Checkpoints.

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "kimg": self.kimg,
            "model": self.net.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "objective": self.objective.state_dict(),
            "stream": self.stream.state_dict(),
            "log": self.log.state_dict(),
            "rng": rng_state(),
            "last_grid_step": self.last_grid_step,
            "config": json.loads(self.store.get_run(self.run_id)["config"]),
        }

    def restore(self) -> int:
        """Continue from the newest checkpoint, if any; drop rows logged after it. Returns the restored step."""
        path = latest_checkpoint(self.ckpt_dir)
        if path is None:
            dropped = self.store.truncate_after(self.run_id, 0)
            if dropped:
                self.log.event("no checkpoint to resume from; restarted from step 0", "warning")
            return 0
        state = load_checkpoint(path, map_location=self.device)
        self.net.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.objective.load_state_dict(state["objective"])
        self.stream.load_state_dict(state["stream"])
        self.log.load_state_dict(state["log"], self.device)
        set_rng_state(state["rng"])
        self.step = int(state["step"])
        self.last_grid_step = int(state.get("last_grid_step", -1))
        self.last_ckpt_step = self.step
        self.store.truncate_after(self.run_id, self.step)
        self.log.event(f"resumed from step {self.step}")
        return self.step

    def checkpoint(self) -> Path:
        # Flush first: the metrics up to this step are in runs.db before the checkpoint that claims them exists, so
        # a crash between the two can only leave rows that a resume truncates, never a gap.
        self.flush()
        with Keepalive(self.store.path, self.run_id):
            path = save_checkpoint(self.ckpt_dir, self.step, self.state_dict(), keep=self.recipe.keep_snapshots)
        self.last_ckpt_step = self.step
        self.log.event(f"checkpoint at step {self.step}")
        self.log.restart_clock()
        return path

    #------------------------------------------------------------------------
    # The grid (playbook 5.0).

    @torch.no_grad()
    def draw_grid(self) -> int:
        spec = self.config.sampler.grid
        with Keepalive(self.store.path, self.run_id):
            gen = torch.Generator(self.device).manual_seed(self.recipe.seed + X_T_SEED_OFFSET + 1)
            images, nfe = self.objective.sample(self.ema.net, self.x_T, spec, generator=gen, y=self.grid_labels)
            png = grid_png(images)
            path = save_grid_file(self.run_dir, self.step, png)
            sample_id = self.store.add_sample(self.run_id, step=self.step, kind="grid", sampler=spec.describe(),
                                              nfe=int(nfe), png=png, path=str(path))
        self.last_grid_step = self.step
        self.log.event(f"grid at step {self.step}")
        self.log.restart_clock()
        return sample_id

    def evaluate_panel(self) -> list[str]:
        """The run's sampler panel on the EMA weights and the fixed x_T (playbook 5.1, 5.8); returns event lines."""
        from difftui.engine.diffusion import evaluate_panel
        from difftui.engine.evaluate import NLL_IMAGES, fixed_images, record_panel
        images, labels = fixed_images(self.data, NLL_IMAGES, seed=self.recipe.seed + X_T_SEED_OFFSET + 2)
        images = images.to(self.device)
        labels = labels.to(self.device) if self.num_classes and labels is not None else None
        with Keepalive(self.store.path, self.run_id):
            rows = evaluate_panel(self.objective, self.ema.net, self.x_T, self.config.sampler, images=images,
                                  seed=self.recipe.seed, y=self.grid_labels, image_labels=labels)
            lines = record_panel(self.store, self.run_id, self.step, rows, self.run_dir, len(images))
        self.log.restart_clock()
        return lines

    #------------------------------------------------------------------------
    # Logging and commands.

    def flush(self, **run_fields: Any) -> None:
        if self.gpus.available and time.monotonic() - self.last_gpu >= GPU_EVERY_S:
            self.log.add_gpu(self.gpus.sample())
            self.last_gpu = time.monotonic()
        self.log.flush(self.step, self.kimg, **run_fields)

    def poll_commands(self) -> None:
        for cmd in self.store.take_commands(self.run_id):
            name = cmd["command"]
            if name == "stop":
                self.stop_requested = True
            elif name == "snapshot":
                self.checkpoint()
            elif name == "grid":
                self.draw_grid()
            elif name == "evaluate":
                for line in self.evaluate_panel():
                    self.log.event(line)
            else:
                self.log.event(f"unknown command '{name}' ignored", "warning")

    def check_finite(self, names) -> None:
        for name in names:
            value = self.log.latest.get(name, 0.0)
            if not math.isfinite(value):
                raise FloatingPointError(f"{name} is {value} at step {self.step}")

    #------------------------------------------------------------------------
    # The loop (playbook 0.0).

    def train_step(self) -> None:
        x, y = self.stream.next()
        x = x.to(self.device, non_blocking=True)
        y = y.to(self.device, non_blocking=True) if self.num_classes else None
        lr = self.learning_rate()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with self.autocast:
            losses = self.objective(self.net, x, y)
        loss = losses["loss"]
        logged = {k: v for k, v in losses.items() if k != "loss"} or {"loss": loss}
        extra = {"lr": lr}
        if self.dynamic:
            # playbook 3.5: the DyDiT FLOPs-budget loss is added to the diffusion loss.
            from difftui.engine.models import flops_loss
            ratio = self.net.flops_ratio()
            loss = loss + flops_loss(ratio, self.recipe.flops_lambda)
            logged["flops_ratio"] = ratio
            extra["flops_target"] = self.recipe.flops_lambda
            if self.net.in_warmup(self.step):
                # playbook 4.4 / A.2: during the warm-up the complete model's loss L_complete is kept as well.
                with self.net.complete(), self.autocast:
                    complete = self.objective(self.net, x, y)["loss"]
                loss = loss + complete
                logged["L_complete"] = complete
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.recipe.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.recipe.grad_clip)
        self.optimizer.step()
        self.ema.update(self.net)
        self.step += 1
        self.log.accumulate(logged)
        if self.log.end_step(self.step, self.kimg, extra):
            self.check_finite(logged)

    def run(self) -> str:
        """Train to total_steps (or until a stop); returns the final status."""
        r = self.recipe
        total = r.total_steps
        self.flush()
        while self.step < total and not self.stop_requested:
            self.train_step()
            if self.step % r.grid_every == 0:
                self.draw_grid()
            if self.step % r.snapshot_every == 0:
                self.checkpoint()
            if self.log.due():
                self.flush()
                self.poll_commands()
        if self.stop_requested:
            if self.last_ckpt_step != self.step:
                self.checkpoint()
            self.log.event(f"stopped at step {self.step}")
            self.flush(status="stopped", ended=time.time())
            return "stopped"
        if self.last_grid_step != self.step:
            self.draw_grid()
        if self.last_ckpt_step != self.step:
            self.checkpoint()
        self.log.event(f"completed at step {self.step}")
        self.flush(status="completed", ended=time.time())
        return "completed"


#----------------------------------------------------------------------------
# The process entry point.

def train_run(db_path: str | os.PathLike[str], run_id: int) -> int:
    """Train run `run_id` of `db_path` in this process; returns the exit code (0 completed/stopped, 1 failed)."""
    try:
        store = Store(db_path, create=False)
    except StoreError as e:
        print(f"difftui engine: {e}", file=sys.stderr)
        return 2
    run = store.get_run(run_id)
    if run is None:
        print(f"difftui engine: {db_path}: no run {run_id}", file=sys.stderr)
        return 2
    run_dir = Path(run["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        lock = OwnerLock(run_dir / "lock").acquire(f"run {run_id}")
    except Owned as e:
        print(f"difftui engine: {e}; this engine exits without touching it", file=sys.stderr)
        return 3
    store.update_run(run_id, status="running", pid=os.getpid(), pid_start=process_start_time(os.getpid()),
                     host=socket.gethostname(), heartbeat=time.time(), started=run["started"] or time.time(),
                     error=None, ended=None)
    print(f"--- engine pid {os.getpid()} run {run_id} at {time.strftime('%Y-%m-%d %H:%M:%S')}", file=sys.stderr,
          flush=True)

    trainer: Trainer | None = None

    def on_signal(signum, frame):                   # SIGTERM / SIGINT: behave like a stop command
        if trainer is not None:
            trainer.stop_requested = True
        else:
            raise StopRequested()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        config = config_from_dict(json.loads(run["config"]), f"run {run_id} config")
        with Keepalive(db_path, run_id):
            trainer = Trainer(store, run_id, config, run_dir)
            trainer.setup()
            store.update_run(run_id, device=str(trainer.device))
            trainer.log.event(f"started on {describe_device(trainer.device)}")
            trainer.restore()
        status = trainer.run()
        print(f"--- {status} at step {trainer.step}", file=sys.stderr, flush=True)
        return 0
    except StopRequested:
        store.add_event(run_id, "info", "stopped before training started")
        store.set_status(run_id, "stopped")
        return 0
    except BaseException as e:
        traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()
        message = one_line(e)
        try:
            if trainer is not None and hasattr(trainer, "log"):
                trainer.log.event(f"failed: {message}", "error")
                trainer.flush(status="failed", error=message, ended=time.time())
            else:
                store.add_event(run_id, "error", f"failed: {message}")
                store.set_status(run_id, "failed", error=message)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            store.set_status(run_id, "failed", error=message)
        return 1
    finally:
        if trainer is not None and hasattr(trainer, "gpus"):
            trainer.gpus.close()
        store.close()
        lock.release()
