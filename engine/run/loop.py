"""One run's training: `python -m difftui.engine train RUN_ID --db PATH` (or `--spool RUN_DIR`: never opens runs.db,
writes records in RUN_DIR/spool/; run/owner.py), alone or as one rank of torchrun.

    owner   RunOwner (rank 0)     the lock, the heartbeat thread, commands, every write of the run's rows, the status
    trainer Trainer (every rank)  model, optimizer, EMA, objective, batch stream, one step
    loop    TrainLoop             the cadence: log every `log_every` steps, a grid every `grid_every`, a checkpoint
                                  every `snapshot_every`, commands and stop requests, non-finite steps

Every rank runs the same loop; decisions that change the cadence (stop, snapshot now) are taken together at the
logging steps (one small all-reduce), so the ranks always agree. Only rank 0 writes: metrics in batched transactions
about once a second, grids, checkpoints (the others wait at a barrier around each). A failure sets status failed
with one line `Type: message`; the traceback goes to runs/<id>/engine.log (this process's stderr).
"""

from __future__ import annotations

import errno
import os
import sqlite3
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from difftui.engine.config.catalog import config_from_dict
from difftui.engine.diffusion import Interrupted
from difftui.engine.launch import signals
from difftui.engine.launch.lock import Owned
from difftui.engine.run.checkpoint import (
    REQUIRED_KEYS,
    CheckpointError,
    load_checkpoint,
    load_newest,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from difftui.engine.run.distributed import World, collective_failed, dead_rank, init_world, peer_processes
from difftui.engine.run.drawing import FIRST_REPORT_S, Drawing
from difftui.engine.run.grid_check import GridCheck
from difftui.engine.run.meter import Clock, Interval, Meter, throughput
from difftui.engine.run.owner import RunLost
from difftui.engine.run.peaks import peak_tflops
from difftui.engine.run.sample_grid import grid_png, precision_note
from difftui.engine.run.trainer import X_T_SEED_OFFSET, Trainer
from difftui.engine.store import StoreError
from difftui.engine.text import one_line

__all__ = ["TrainLoop", "RunFailed", "train_run", "peak_tflops"]

EXIT_OWNED = 3                                      # another engine owns the run: this one touched nothing


class RunFailed(RuntimeError):
    """The run cannot go on (diverged, non-finite weights, no loadable checkpoint); one line."""


class RankDied(RuntimeError):
    """Another rank's process ended while this one waited for it in a collective; one line naming the rank."""




@dataclass
class Control:
    """What all ranks decide together at a logging step."""
    stop: bool = False
    snapshot: bool = False
    grid: bool = False
    evaluate: bool = False
    requeue: bool = False                           # Slurm: checkpoint and leave, the job runs again (signals.py)


#----------------------------------------------------------------------------
# The loop.

class TrainLoop:
    def __init__(self, trainer: Trainer, owner, world: World):
        self.trainer = trainer
        self.owner = owner                          # RunOwner on rank 0, None elsewhere
        self.world = world
        self.recipe = trainer.recipe
        self.meter = Meter(trainer.device)
        self.clock = Clock()
        self.last_ckpt_step = -1
        self.flops_per_image: float | None = None   # training FLOPs of one image (3 x the forward's 2 x MACs)
        self.peak: float | None = None              # one card's dense peak TFLOP/s (MFU divides by the world's)
        self.pending: list[str] = []                # rank 0: commands waiting for the next logging step
        self.evaluators: list = []                  # rank 0: snapshot evaluator processes started by this engine
        self.grid_check: GridCheck | None = None    # rank 0: the grid statistics' reference (built at the first grid)
        self.img_per_s: float | None = None         # rank 0: the last logged training speed (prices a grid)

    # -- rank 0 helpers -----------------------------------------------------------------------------------------

    def event(self, message: str, level: str = "info") -> None:
        if self.owner is not None:
            self.owner.event(message, level)

    def flush(self, **fields: Any) -> None:
        if self.owner is not None:
            self.owner.flush(self.trainer.step, self.trainer.kimg, **fields)

    def lost(self):
        """Rank 0: why this engine no longer owns its run (RunOwner.lost: its folder or runs.db is gone), or None."""
        return self.owner.lost() if self.owner is not None else None

    def lost_seen(self) -> bool:
        """Rank 0: the heartbeat found the run folder or runs.db gone (no system call: asked at every step)."""
        return self.owner is not None and self.owner.lost_seen() is not None

    def end_lost(self) -> None:
        """Every rank, after a stop: when rank 0 lost its run folder or runs.db (issue 16 items 1-2), end the run
        with RunLost (status failed, one line): checkpointed first where the folder is still there (runs.db went),
        never written into a folder that was deleted (that would recreate it, at a path that may be another run's)."""
        lost = self.world.broadcast(self.lost())
        if lost is None:
            return
        t = self.trainer
        kept = ""
        if not lost.folder_gone:
            if self.last_ckpt_step != t.step:
                self.checkpoint()
            kept = f"; its checkpoint at step {t.step} is kept"
        raise RunLost(f"{lost.reason}: stopped at step {t.step}{kept}")

    # -- start ---------------------------------------------------------------------------------------------------

    def restore(self) -> int:
        """Continue from the newest checkpoint that loads (every rank the same one); drop rows logged after it.

        The file is loaded to the CPU whatever the training device: the generators' states (the batch stream's
        flips, torch's and CUDA's RNG, the augmenter, the importance sampler) must be CPU ByteTensors for
        `Generator.set_state`, and model, EMA, optimizer and meter move their own tensors to the device as they load
        (no second copy of them on the GPU during the restore)."""
        t, world = self.trainer, self.world
        path, state = None, None
        if world.main:
            def bad(p: Path, reason: str) -> None:
                self.event(f"{reason}; set aside as {p.name}.bad, trying the previous checkpoint", "warning")
            try:
                found = load_newest(t.run_dir / "checkpoints", map_location="cpu", on_bad=bad)
            except CheckpointError as e:
                path = e                            # tell the other ranks, then fail (the run keeps its step)
            else:
                if found is not None:
                    path, state = found
        path = world.broadcast(str(path) if isinstance(path, Path) else path)
        if isinstance(path, CheckpointError):
            raise RunFailed(str(path))
        if path is None:
            if world.main:
                # Afresh from step 0: everything an earlier engine logged goes, its step-0 rows too (the FLOPs
                # figure is logged again at the start step).
                dropped = self.owner.store.truncate_after(self.owner.run_id, -1)
                if dropped:
                    self.event("no checkpoint to resume from; restarted from step 0", "warning")
            return 0
        if state is None:
            state = load_checkpoint(path, map_location="cpu", required=REQUIRED_KEYS)
        t.load_state_dict(state)
        ranks = state.get("ranks")
        if ranks is not None and len(ranks) == world.size:
            set_rng_state(ranks[world.rank]["rng"])
            self.meter.load_state_dict(ranks[world.rank]["meter"])
            if t.augmenter is not None and ranks[world.rank].get("augmenter"):
                t.augmenter.load_state_dict(ranks[world.rank]["augmenter"])
        elif ranks is None and "rng" in state and world.size == 1:          # the first release's layout
            set_rng_state(state["rng"])
            self.meter.load_state_dict(state["log"])
        else:
            t.reseed()
            self.event(f"checkpoint written by {len(ranks or [None])} process(es), resumed on {world.size}: RNG "
                       f"streams re-seeded, the data position and global batch kept", "warning")
        self.last_ckpt_step = t.step
        if world.main:
            self.owner.store.truncate_after(self.owner.run_id, t.step)
            self.event(f"resumed from step {t.step} ({Path(path).name})")
        return t.step

    def measure_flops(self) -> None:
        """GFLOPs of one forward (logged once) and the card's peak for MFU (CUDA); rank 0 only."""
        t = self.trainer
        if self.owner is None:
            return
        try:
            # The tier cache first (the shipped tiers and data sets are measured once, engine/config/tier_figures.json);
            # a network it does not hold is measured here on the meta device.
            from difftui.engine.config.tier_figures import run_figures
            cached = run_figures(t.config, measure=False)
            macs = cached.macs if cached is not None else t.macs_per_image()
        except Exception as e:                      # a family the flop counter cannot trace: say so, go on
            self.event(f"FLOPs not measured ({one_line(e, named=True)})", "warning")
            return
        self.flops_per_image = 3 * 2 * macs          # forward + backward (2 x forward), 2 FLOPs per multiply-add
        if not self.logged_at("gflops_fwd", t.step):     # an engine that started at this step wrote it already
            self.owner.log.add_metrics(t.step, t.kimg, {"gflops_fwd": 2 * macs / 1e9})
        if t.device.type == "cuda":
            self.peak = peak_tflops(torch.cuda.get_device_name(t.device), t.precision, self.recipe.tf32)

    def logged_at(self, name: str, step: int) -> bool:
        """Rank 0: runs.db holds `name` at `step` already (e.g. from an engine that started, then crashed, at the
        same step; a resume keeps the rows up to its checkpoint's step), so writing it again would double it. A spool
        engine cannot read what was ingested (its sink only appends): it writes, and its resume cut decides."""
        read = getattr(self.owner.store, "series_tail", None)
        if read is None:
            return False
        tail = read(self.owner.run_id, name)
        return bool(tail) and tail[0]["step"] == step             # newest first

    # -- the cadence ----------------------------------------------------------------------------------------------

    def control(self) -> Control:
        """Stop / snapshot / grid / evaluate / requeue, agreed by all ranks (rank 0 reads the commands; a stop signal
        on any rank stops them all)."""
        flags = [signals.stop_signal() is not None, False, False, False, signals.requeue_signal() is not None]
        if self.owner is not None:
            flags[0] = flags[0] or self.owner.stop_requested.is_set() or self.lost_seen()
            self.pending += self.owner.commands()
            for name in self.pending:
                if name in ("snapshot", "grid", "evaluate"):
                    flags[("snapshot", "grid", "evaluate").index(name) + 1] = True
                else:
                    self.event(f"unknown command '{name}' ignored", "warning")
            self.pending = []
        if self.world.distributed:
            vec = torch.tensor(flags, dtype=torch.int32, device=self.trainer.device)
            flags = [bool(v) for v in self.world.all_reduce_(vec, "max").tolist()]
        return Control(*flags)

    def stop_now(self) -> bool:
        """A stop seen between two logging steps (one process only; with several, stops wait for the next
        logging step, where all ranks decide together)."""
        if self.world.distributed:
            return False
        return signals.stop_signal() is not None or (self.owner is not None and self.owner.stop_requested.is_set()) \
            or self.lost_seen()

    def requeue_now(self) -> bool:
        """Slurm's warning or SIGTERM seen between two logging steps (one process only, as `stop_now`)."""
        return not self.world.distributed and signals.requeue_signal() is not None

    def log_interval(self, interval: Interval, seconds: float, steps: int) -> None:
        """Queue the interval's values (rank 0), then fail the run if the non-finite steps ran too long (every rank
        sees the same reduced interval, so every rank stops at the same step)."""
        t, r = self.trainer, self.recipe
        wait, t.data_wait_s = t.data_wait_s, 0.0
        if self.owner is not None:
            values = dict(interval.means)
            values["lr"] = t.learning_rate()
            values.update(t.objective.constants())
            if interval.skipped:
                values["skipped_steps"] = float(interval.skipped)
                terms = ", ".join(interval.nonfinite_terms) or "grad_norm"
                self.event(f"{interval.skipped} of {interval.steps} steps up to step {t.step} skipped: {terms} not "
                           f"finite", "warning")
            if seconds > 0 and steps:
                values.update(throughput(steps * r.batch_size, seconds, self.flops_per_image, self.peak,
                                         self.world.size))
                values["data_wait"] = min(wait / seconds, 1.0)      # share of the interval spent waiting for batches
                self.img_per_s = values["img_per_s"] / self.world.size          # this process's share
            self.owner.log.add_metrics(t.step, t.kimg, values)
        if interval.streak >= r.max_nonfinite_steps:
            terms = ", ".join(interval.nonfinite_terms) or "the loss"
            raise RunFailed(f"{terms} not finite for {interval.streak} steps in a row (up to step {t.step}; limit "
                            f"recipe.max_nonfinite_steps = {r.max_nonfinite_steps}); the newest checkpoint is finite. "
                            f"Lower recipe.lr, or try recipe.precision=fp32 (playbook 4.3)")

    def checkpoint(self) -> None:
        """Every rank: gather the per-rank RNG and partial-interval states; rank 0 checks the weights are finite and
        writes the file; a barrier on either side."""
        t, world = self.trainer, self.world
        world.barrier()
        ranks = world.gather({"rng": rng_state(), "meter": self.meter.state_dict(), "checksum": t.weights_checksum(),
                              "augmenter": t.augmenter.state_dict() if t.augmenter is not None else {}})
        if world.main:
            sums = [r.pop("checksum") for r in ranks]
            if max(abs(c - sums[0]) for c in sums) > 1e-5 * (abs(sums[0]) + 1.0):
                raise RunFailed(f"the ranks' weights differ at step {t.step} (checksums {sums}): gradients were not "
                                f"averaged the same way on every rank")
            if not t.weights_finite():
                raise RunFailed(f"the weights are not finite at step {t.step}: not checkpointed (the newest "
                                f"checkpoint, step {self.last_ckpt_step}, is finite). Lower recipe.lr")
            self.owner.guard_folder()               # never recreate a deleted run folder (issue 16 item 1)
            # Flush first: the metrics up to this step are in runs.db (or durable in the spool) before the checkpoint
            # that claims them exists, so a crash between the two can only leave rows that a resume truncates, never
            # a gap.
            self.flush()
            self.owner.sync()
            state = t.state_dict(self.owner.config_data)
            state["ranks"] = ranks
            save_checkpoint(t.run_dir / "checkpoints", t.step, state, keep=self.recipe.keep_snapshots)
            self.event(f"checkpoint at step {t.step}")
        world.barrier()
        self.last_ckpt_step = t.step
        self.clock.restart()

    def stop_asked(self) -> bool:
        """Rank 0, inside a grid or a panel: a stop asked of this process (SIGTERM or SIGINT, the stop command, a
        lost run folder or runs.db, Slurm's requeue signal). Asked before every network call of the drawing
        (run/drawing.py), so it is abandoned within one sampler step; the loop then stops as at any step (with
        several ranks, at the next logging step, where they decide together)."""
        if signals.stop_signal() is not None or signals.requeue_signal() is not None:
            return True
        return self.owner is not None and (self.owner.stop_requested.is_set() or self.lost_seen())

    def drawing(self, what: str, calls: int) -> Drawing:
        """A drawing whose progress lines reach runs.db at once (the loop, which flushes, waits for the drawing)."""
        def say(line: str) -> None:
            self.event(line)
            self.flush()
        return Drawing(what, calls, should_stop=self.stop_asked, say=say)

    def price_grid(self) -> None:
        """Rank 0: the grid's cost said before it is drawn, when it is worth saying (longer than the drawing's first
        progress line), priced at the training speed (eval/cost.py; no speed logged yet: its progress lines say)."""
        from difftui.engine.eval.cost import TRAIN_IMAGE_FORWARDS, Cost, grid_part
        if not self.img_per_s:
            return
        cost = Cost((grid_part(self.trainer.config),), self.img_per_s * TRAIN_IMAGE_FORWARDS, "from the training speed")
        if cost.seconds > FIRST_REPORT_S:
            self.event(f"grid at step {self.trainer.step}: {cost.describe()}")
            self.flush()

    def draw_grid(self) -> bool:
        """Rank 0 draws the fixed-x_T grid and records it; False when a stop abandoned it (nothing recorded)."""
        t = self.trainer
        if self.world.main:
            self.price_grid()
            drawing = self.drawing(f"grid at step {t.step}", t.config.sampler.grid.nfe)
            try:
                images, nfe = t.sample_grid(watch=drawing.watch)
            except Interrupted:
                self.event(f"grid at step {t.step} abandoned after {drawing.calls}/{drawing.calls_total} network "
                           f"evaluations: a stop was asked")
                self.clock.restart()
                return False
            label = f"{t.config.sampler.grid.describe()} · {precision_note(t.precision)}"
            self.owner.record_grid(t.step, grid_png(images), label, nfe)
            self.event(f"grid at step {t.step}")
            if self.grid_check is None:
                self.grid_check = GridCheck(t.data, seed=t.recipe.seed, latent=t.config.dataset.latents)
            problem = self.grid_check.record(self.owner.log, t.step, t.kimg, images)        # issue 18: doctor
            if problem:
                self.event(problem, "warning")
        self.clock.restart()
        return True

    def evaluate_panel(self) -> None:
        """The run's sampler panel on the current EMA weights (rank 0), between two steps, the network under the run's
        precision as for the grids; NLL on held-out images (the data set's test split, which training never sees)."""
        from difftui.engine.eval.panel import NLL_IMAGES, evaluate_panel, panel_calls, panel_images, record_panel
        t = self.trainer
        if self.world.main:
            images = labels = None
            if t.decoder is None:                  # a latent data set's chain likelihood is not an image NLL
                images, labels = panel_images(t.config.dataset, NLL_IMAGES,
                                              seed=self.recipe.seed + X_T_SEED_OFFSET + 2)
                images = images.to(t.device)
                labels = labels.to(t.device) if t.num_classes and labels is not None else None
            # The samplers call the network under the run's precision; the NLL keeps it in fp32 (a likelihood is
            # compared with the evaluator's, which runs fp32).
            drawing = self.drawing(f"sampler panel at step {t.step}", panel_calls(t.objective, t.config.sampler,
                                                                                  nll=images is not None))
            try:
                rows = evaluate_panel(t.objective, drawing.watch(t.sampling_net()), t.x_T, t.config.sampler,
                                      images=images, seed=self.recipe.seed, y=t.grid_labels, image_labels=labels,
                                      nll_net=drawing.watch(t.ema.net))
            except Interrupted:
                self.event(f"sampler panel at step {t.step} abandoned after {drawing.calls}/{drawing.calls_total} "
                           f"network evaluations: a stop was asked")
                self.clock.restart()
                return
            decode = t.decoder.decode if t.decoder is not None else None
            self.owner.guard_folder()
            for line in record_panel(self.owner.store, self.owner.run_id, t.step, rows, t.run_dir,
                                     len(images) if images is not None else 0, decode=decode):
                self.event(line)
            self.event(f"sampler panel at step {t.step}: {precision_note(t.precision)}")
        self.clock.restart()

    def maybe_snapshot(self) -> None:
        """Rank 0: EMA weights every `recipe.snapshot_kimg` (kept, never rotated; playbook 5.6), and, when the
        recipe asks, their evaluation in a process of its own (training does not wait for it)."""
        from difftui.engine.run import snapshots
        t, r = self.trainer, self.recipe
        self.owner.guard_folder()
        path = snapshots.maybe_write(t.run_dir, t.step, r.batch_size, t.ema.net, r.snapshot_kimg)
        if path is None:
            return
        self.event(f"snapshot at step {t.step} ({t.kimg:,.0f} kimg): {path.name}")
        if r.snapshot_eval:
            try:
                job_id, proc = snapshots.start_evaluation(self.owner.db_path, self.owner.run_id,
                                                          spool=t.run_dir if self.owner.spool else None)
            except Exception as e:                  # an evaluation that cannot start never stops training
                self.event(f"snapshot evaluation not started: {one_line(e, named=True)}", "warning")
            else:
                self.evaluators.append(proc)
                job = f"job {job_id}, " if job_id is not None else ""
                self.event(f"snapshot evaluation started ({job}pid {proc.pid})")
        self.evaluators = [p for p in self.evaluators if p.poll() is None]      # reap the finished ones
        self.clock.restart()

    def run(self) -> str:
        """Train to total_steps (or until a stop); returns the final status."""
        t, r, world = self.trainer, self.recipe, self.world
        total = r.total_steps
        start_step = t.step
        self.measure_flops()
        self.flush()
        stop = self.stop_now() or signals.stop_signal() is not None
        requeue = self.requeue_now() or signals.requeue_signal() is not None
        first = True
        if t.compiled and t.step < total:
            self.event("torch.compile: compiling the network during the first steps")
        self.clock.restart()
        while t.step < total and not stop and not requeue:
            result = t.train_step()
            self.meter.accumulate(result.terms, result.ok)
            self.clock.tick()
            if first:
                first = False
                if t.compiled:
                    t.sync()
                    self.event(f"torch.compile: compiled in {time.monotonic() - self.clock.start:.1f} s "
                               f"(not counted in img/s)")
                    self.clock.restart()
            control = Control()
            if t.step % r.log_every == 0:
                control = self.control()
                interval = self.meter.close(world)              # the interval's host sync
                seconds, steps = self.clock.lap()
                self.log_interval(interval, seconds, steps)
            if t.step % r.grid_every == 0 or control.grid:
                self.draw_grid()
            if self.owner is not None and r.snapshot_kimg > 0:
                self.maybe_snapshot()
            if control.evaluate:
                self.evaluate_panel()
            if t.step % r.snapshot_every == 0 or control.snapshot:
                self.checkpoint()
            if self.owner is not None and self.owner.log.due():
                self.flush()
            stop = control.stop or self.stop_now()
            requeue = control.requeue or self.requeue_now()
        if stop:
            self.end_lost()
        why = signals.stop_signal()
        if stop and t.step == start_step:
            self.event("stopped before training started" + (f" ({signals.describe(why)})" if why else ""))
            return "stopped"
        if stop and t.step < total:
            if self.last_ckpt_step != t.step:
                self.checkpoint()
            self.event(f"stopped at step {t.step}" + (f" ({signals.describe(why)})" if why else ""))
            return "stopped"
        if requeue and t.step < total:
            # Slurm's time-limit warning (SIGUSR1) or its SIGTERM (requeue, preemption): checkpoint and leave with
            # no final status; the requeued job resumes this run from here (engine/launch/slurm/task.py).
            if self.last_ckpt_step != t.step:
                self.checkpoint()
            self.event(f"{signals.describe(signals.requeue_signal())} from Slurm at step {t.step}: checkpointed; "
                       f"the run continues when its job runs again")
            return "requeued"
        drawn = t.last_grid_step == t.step or self.draw_grid()
        if self.last_ckpt_step != t.step:
            self.checkpoint()
        if not drawn:
            # A stop during the final grid (rank 0's; the others return "completed", which nobody records): trained
            # to the end, checkpointed; a resume draws the grid and completes. Slurm's warning: the requeued job does.
            if signals.requeue_signal() is not None:
                self.event(f"{signals.describe(signals.requeue_signal())} from Slurm during the final grid at step "
                           f"{t.step}: checkpointed; the run completes when its job runs again")
                return "requeued"
            if not self.world.distributed:
                self.end_lost()                     # a lost folder or runs.db: RunLost (several ranks: checkpoint's guard)
            why = signals.stop_signal()
            self.event(f"stopped at step {t.step} during the final grid" +
                       (f" ({signals.describe(why)})" if why else "") + "; resume draws it and completes the run")
            return "stopped"
        self.event(f"completed at step {t.step}")
        return "completed"


#----------------------------------------------------------------------------
# The process entry point.

def _log(message: str) -> None:
    print(f"--- {message}", file=sys.stderr, flush=True)


def _lost_instead(error: BaseException, owner, loop: TrainLoop | None) -> BaseException:
    """A write refused (RunOwner.guard_folder) or failed (deleted between the check and the write) because the run
    folder went away ends the run as the loss it is, saying at which step, not as the FileNotFoundError it caused."""
    lost = owner.lost() if owner is not None else None
    if lost is None or not lost.folder_gone or not isinstance(error, (RunLost, OSError)):
        return error
    if isinstance(error, RunLost) and str(error) != lost.reason:
        return error                                # end_lost's line says it already
    step = f": stopped at step {loop.trainer.step}" if loop is not None else ""
    return RunLost(f"{lost.reason}{step}")


def _rank_death_instead(error: BaseException, world: World, peers) -> BaseException:
    """Rank 0: a collective that failed because another rank's process ended is said as that (RankDied: rank 1,
    pid ...), not as gloo's "Connection reset by peer"; the transport's words follow in brackets."""
    if not (world.distributed and world.main and collective_failed(error)):
        return error
    died = dead_rank(peers)
    if died is None:
        return error
    rank, pid = died
    text = str(error)
    said = next((w for w in ("Connection reset by peer", "Connection closed by peer") if w in text), None)
    detail = (f"gloo: {said}" if "gloo" in text else said) if said else one_line(error, limit=120)
    return RankDied(f"rank {rank} of {world.size} (pid {pid}) ended while rank 0 waited for it in a collective "
                    f"({detail}); its own output is in engine.log")


def train_run(db_path: str | os.PathLike[str] | None, run_id: int, *, spool: str | os.PathLike[str] | None = None
              ) -> int:
    """Train run `run_id` of `db_path` in this process (one rank of it under torchrun or srun), or in spool mode the
    run in folder `spool` (runs.db is never opened); returns the exit code: 0 completed or stopped, 1 failed, 2 no
    such run, database or run folder, 3 the run is owned by another engine, 75 (signals.EXIT_REQUEUE) checkpointed
    for Slurm to run the job again (no final status)."""
    from difftui.engine.run.owner import RunOwner
    try:
        world = init_world()
    except Exception as e:
        print(f"difftui engine: cannot join the process group ({one_line(e, named=True)})", file=sys.stderr)
        return 1
    owner: RunOwner | None = None
    loop: TrainLoop | None = None
    restored = False                                # until then, a failure keeps the run's recorded step
    code = 0
    peers = None
    try:
        if world.distributed:
            peers = peer_processes(world)           # rank 0: to name a rank that dies later
        if world.main:
            try:
                owner = RunOwner(db_path, run_id, spool=spool)
            except Owned as e:
                print(f"difftui engine: {e}; this engine exits without touching it", file=sys.stderr)
                code = EXIT_OWNED
            except StoreError as e:
                print(f"difftui engine: {e}", file=sys.stderr)
                code = 2
        config_data = world.broadcast(owner.config_data if owner is not None else None)
        if config_data is None:
            return code or EXIT_OWNED
        if owner is not None:
            _log(f"engine pid {os.getpid()} run {run_id}"
                 + (f" rank 0 of {world.size}" if world.distributed else "")
                 + f" at {time.strftime('%Y-%m-%d %H:%M:%S')}")
        config = config_from_dict(config_data, f"run {run_id} config")
        run_dir = owner.run_dir if owner is not None else None
        run_dir = Path(world.broadcast(str(run_dir) if run_dir is not None else None))
        trainer = Trainer(config, run_dir, world, event=owner.event if owner is not None else lambda *a, **k: None)
        trainer.setup()
        loop = TrainLoop(trainer, owner, world)
        if owner is not None:
            from difftui.engine.data.card import DATACARD_NAME, write_datacard
            from difftui.engine.run.telemetry import cuda_uuids
            if not (owner.run_dir / DATACARD_NAME).exists():
                write_datacard(owner.run_dir, config)   # playbook 1.5: the data card travels with every run
            owner.store.update_run(run_id, device=str(trainer.device) if not world.distributed
                                   else f"{trainer.device.type} x{world.size}")
            if trainer.device.type == "cuda":
                used = range(world.local_size) if world.distributed else [trainer.device.index]
                owner.event("GPU monitor: " + owner.watch_gpus(cuda_uuids(used)))
        loop.restore()
        restored = True
        status = loop.run()
        if status == "requeued":                    # no final status: the run stays active for its next job
            if owner is not None:
                owner.flush(trainer.step, trainer.kimg)
                _log(f"checkpointed at step {trainer.step} for Slurm to run the job again")
            return signals.EXIT_REQUEUE
        if owner is not None:
            owner.finish(status, trainer.step, trainer.kimg)
            _log(f"{status} at step {trainer.step}")
        return 0
    except BaseException as e:
        e = _lost_instead(e, owner, loop)
        e = _rank_death_instead(e, world, peers)
        message = one_line(e, named=True)                # the run's error column names the type: "RunFailed: ..."
        if isinstance(e, RunLost):
            _log(f"failed: {message}")                 # a clean end, said in one line (issue 16 items 1-2)
        else:
            traceback.print_exc(file=sys.stderr)
            sys.stderr.flush()
        if isinstance(e, sqlite3.OperationalError) and "full" in str(e):
            message = f"DiskFull: disk full: cannot write {Path(db_path).resolve()} ({e})"
        elif isinstance(e, OSError) and e.errno == errno.ENOSPC:
            message = f"DiskFull: {e.strerror}"
        if owner is not None:
            step = loop.trainer.step if loop is not None and restored else None
            try:
                owner.event(f"failed: {message}", "error")
                if step is None:
                    run = owner.store.get_run(run_id)
                    owner.finish("failed", run["step"], run["kimg"], error=message)
                else:
                    owner.finish("failed", step, loop.trainer.kimg, error=message)
            except Exception:
                traceback.print_exc(file=sys.stderr)
                try:
                    owner.store.finish_run(run_id, "failed", error=message)
                except Exception as again:          # nowhere to write (a full disk): the reaper marks it crashed
                    _log(f"the failure could not be recorded either ({one_line(again)})")
        return 1
    finally:
        if owner is not None:
            owner.close()
        world.close()
