"""The trainer of one run: model, optimizer, EMA, objective, batch stream, one optimizer step, its checkpoint state.

No database and no lock here (the run owner, engine/run/owner.py, has those); under torchrun each rank builds one Trainer
and the gradients are averaged by DDP. Playbook 0.0 is the step: a batch x_0 in [-1,1], the objective's loss (L_simple
by default), one Adam step, one EMA update (playbook 4.0; rank 0 keeps the EMA and draws the grids).

Non-finite values (DESIGN.md): a step whose loss or gradient norm is not finite changes nothing (weights, optimizer
moments and EMA stay as they were) and is reported through `StepResult.ok`; with the fused optimizer the skip happens
on the device (the optimizer's `found_inf`, as torch's GradScaler uses it), so finite steps never wait for the host.

The CUDA fast path is the recipe's (defaults right on an H100): TF32, cuDNN autotuning, channels_last for the conv
nets, the fused optimizer, bf16 autocast (fp16 with a dynamic loss scaler as an option, playbook 4.3),
`torch.compile` on request, and the data set resident in GPU memory when it fits.
"""

from __future__ import annotations

import contextlib
import datetime
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from difftui.engine.config.model import RunConfig
from difftui.engine.run.builders import (
    build_ema,
    build_model,
    build_objective,
    measure_macs,
    sampler_args,
    training_objective,
)
from difftui.engine.run.device import (
    configure_cuda,
    describe_torch_device,
    resolve_device,
    resolve_precision,
    set_cpu_threads,
)
from difftui.engine.run.distributed import World

__all__ = ["Trainer", "StepResult", "X_T_SEED_OFFSET", "CONV_FAMILIES"]

X_T_SEED_OFFSET = 5_000                             # x_T's generator is independent of the training RNG
AUGMENT_SEED_OFFSET = 7_000                         # and so is the augmentation's
CONV_FAMILIES = ("unet", "adm", "ddpmpp", "ncsnpp")  # channels_last helps convolutions, not transformers
DATA_ON_DEVICE_FRACTION = 0.25                       # a data set taking up to this share of GPU memory lives there
DATA_BUILD_TIMEOUT = datetime.timedelta(hours=24)    # DDP ranks wait this long for rank 0's first build of a cache

Event = Callable[..., None]


@dataclass
class StepResult:
    terms: dict[str, torch.Tensor]                  # detached scalar tensors to log (losses, grad_norm, ...)
    ok: torch.Tensor                                # bool tensor: False when the step was skipped as non-finite


def _noop_event(message: str, level: str = "info") -> None:
    pass


class Trainer:
    """Everything one run trains with, built from its resolved config by `setup()`."""

    def __init__(self, config: RunConfig, run_dir: Path, world: World | None = None, event: Event = _noop_event):
        self.config = config
        self.recipe = config.recipe
        self.run_dir = Path(run_dir)
        self.world = world or World()
        self.event = event
        self.step = 0
        self.last_grid_step = -1
        self.data_wait_s = 0.0

    #------------------------------------------------------------------------
    # Setup.

    def setup(self) -> None:
        from difftui.engine.data.loader import make_batch_source, uses_loader
        from difftui.engine.run.sample_grid import fixed_noise

        r, world = self.recipe, self.world
        self.device = resolve_device(self.config.device, local_rank=world.local_rank, local_size=world.local_size)
        if self.device.type == "cpu":
            set_cpu_threads(world.local_size)
        else:
            torch.cuda.set_device(self.device)
            configure_cuda(tf32=r.tf32, cudnn_benchmark=r.cudnn_benchmark)
        self.precision = resolve_precision(r.precision, self.device)
        # DiT's per-rank seed (global seed * world size + rank): one process keeps recipe.seed itself. A resume
        # overwrites these with the checkpoint's RNG states.
        seed = r.seed * world.size + world.rank
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed)

        profile = self.config.dataset
        self.data = self._build_data()
        skipped = getattr(self.data, "skipped", [])
        if skipped and world.main:
            self.event(f"{len(skipped)} unreadable file(s) of '{profile.name}' skipped (difftui data check "
                       f"{profile.name} lists them with the reason)", "warning")
        self.loader = uses_loader(self.data)
        if not self.loader:
            self._place_data()
        self.stream = make_batch_source(self.data, r.batch_size, seed=r.seed, x_flip=profile.x_flip, rank=world.rank,
                                        world_size=world.size)
        channels, height, width = self.data.shape          # the network's input: pixels, or VAE latents

        base = build_objective(r, clip=not profile.latents)
        self.num_classes = profile.num_classes if r.class_conditional else 0
        net = build_model(self.config.backbone, in_channels=channels, out_channels=base.out_channels(channels),
                          resolution=width, num_classes=self.num_classes, dropout=r.dropout).to(self.device)
        self.channels_last = self.device.type == "cuda" and r.channels_last and \
            self.config.backbone.family in CONV_FAMILIES
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.net = net.train()
        self.objective = training_objective(self.config, base, self.net)

        # What the step calls: the module itself, DDP around it, torch.compile around that.
        model: nn.Module = self.net
        if world.distributed:
            from torch.nn.parallel import DistributedDataParallel
            model = DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda"
                                            else None)
        self.compiled = r.compile
        self.train_net = torch.compile(model, backend=r.compile_backend) if r.compile else model

        # P3's non-leaky augmentation (playbook 1.3, A.4): its own generator per rank, labels to the network.
        self.augmenter = None
        if r.augment_p > 0:
            from difftui.engine.data.augment import Augmenter
            self.augmenter = Augmenter(r.augment_p, seed=(r.seed * world.size + world.rank) + AUGMENT_SEED_OFFSET,
                                       device=self.device)
        self.ema = build_ema(self.net, r) if world.main else None
        self.optimizer = self._optimizer()
        self.base_lr = self.config.learning_rate
        self.scaler = torch.amp.GradScaler("cuda") if self.precision == "fp16" else None
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        self.autocast = (torch.autocast(self.device.type, dtype=dtype) if dtype is not None
                         else contextlib.nullcontext())
        self.params = [p for p in self.net.parameters() if p.requires_grad]

        if world.main:
            # playbook 5.0: one x_T per run, saved once, reused by every grid and every resume.
            self.x_T = fixed_noise(self.run_dir / "x_T.pt", (channels, height, width),
                                   seed=r.seed + X_T_SEED_OFFSET).to(self.device)
            if self.channels_last:
                self.x_T = self.x_T.contiguous(memory_format=torch.channels_last)
            # A class-conditional grid fixes its labels too: tile k shows class k mod num_classes.
            self.grid_labels = (torch.arange(self.x_T.shape[0], device=self.device) % self.num_classes
                                if self.num_classes else None)
            # Latent data sets: samples are decoded by the data set's VAE before they are shown.
            from difftui.engine.data.latents import latent_decoder
            self.decoder = latent_decoder(profile, self.device)
            self.event(f"started on {describe_torch_device(self.device)}" +
                       (f", rank 0 of {world.size}" if world.distributed else ""))
            self.event(self.describe_fast_path())

    def _build_data(self) -> Any:
        """The run's data set. Under DDP rank 0 builds it first (on a first start: decodes the files into the cache,
        or VAE-encodes a latent data set) while the others wait; a failure there fails every rank with its message.
        Then the first rank of each other machine opens that cache (or, where it is not visible, on a disk of that
        machine, builds its own) while its machine's other ranks wait; then they all open what was built."""
        from difftui.engine.data import DataError, build_dataset
        profile, world = self.config.dataset, self.world
        if not world.distributed:
            return build_dataset(profile, progress=self._data_progress)
        data, failure = None, None
        if world.main:
            try:
                data = build_dataset(profile, progress=self._data_progress)
            except Exception as e:                  # told to the others before it is raised here
                failure = e
        message = world.broadcast(None if failure is None else f"{type(failure).__name__}: {failure}",
                                  timeout=DATA_BUILD_TIMEOUT)
        if failure is not None:
            raise failure
        if message is not None:
            raise DataError(f"rank 0 could not build dataset '{profile.name}': {message}")
        if world.local_rank == 0 and not world.main:
            data = build_dataset(profile)
        world.barrier(timeout=DATA_BUILD_TIMEOUT)
        return data if data is not None else build_dataset(profile)

    def _data_progress(self, done: int, total: int, what: str) -> None:
        """The first start on a large data set builds its cache: say so now and then (the heartbeat thread keeps
        the run alive meanwhile)."""
        if done == 0 or done == total or done * 10 // max(total, 1) != (done - 1) * 10 // max(total, 1):
            self.event(f"{what}: {done}/{total}")

    def _place_data(self) -> None:
        """Keep the (uint8) images in GPU memory when they take up to a quarter of it: batches are then gathered on
        the device, with no host copy per step."""
        self.data_on_device = False
        if self.device.type != "cuda" or not self.recipe.data_on_device:
            return
        nbytes = self.data.images.numel() * self.data.images.element_size()
        total = torch.cuda.get_device_properties(self.device).total_memory
        if nbytes <= DATA_ON_DEVICE_FRACTION * total:
            self.data.images = self.data.images.to(self.device)
            if self.data.labels is not None:
                self.data.labels = self.data.labels.to(self.device)
            self.data_on_device = True

    def _optimizer(self) -> torch.optim.Optimizer:
        r = self.recipe
        cls = torch.optim.AdamW if r.optimizer == "adamw" else torch.optim.Adam    # playbook 4.0-4.1
        params = self.net.parameters()
        self.fused = bool(r.fused_optimizer) and all(p.dtype == torch.float32 for p in self.net.parameters())
        if self.fused:
            return cls(params, lr=self.config.learning_rate, fused=True)
        return cls(params, lr=self.config.learning_rate, foreach=True)

    def describe_fast_path(self) -> str:
        """One line for the event log (playbook 4.3: say the precision, the loss scaling)."""
        parts = [{"bf16": "bf16 autocast (no loss scaling)", "fp16": "fp16 autocast with dynamic loss scaling",
                  "fp32": "fp32"}[self.precision]]
        if self.device.type == "cuda":
            parts.append("TF32 on" if self.recipe.tf32 else "TF32 off")
            if self.recipe.cudnn_benchmark:
                parts.append("cudnn.benchmark")
            if self.channels_last:
                parts.append("channels_last")
            parts.append("data on the GPU" if self.data_on_device else
                         "data from DataLoader workers (pinned)" if self.loader else "data from host memory (pinned)")
        parts.append("fused " + self.recipe.optimizer if self.fused else "foreach " + self.recipe.optimizer)
        if self.compiled:
            parts.append("torch.compile" + (f" ({self.recipe.compile_backend})"
                                            if self.recipe.compile_backend != "inductor" else ""))
        if self.world.distributed:
            parts.append(f"DDP over {self.world.size} processes, {self.recipe.batch_size // self.world.size} "
                         f"images each")
        return "fast path: " + ", ".join(parts)

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
    # One step (playbook 0.0).

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        start = time.perf_counter()
        x, y = self.stream.next(self.device) if self.loader else self.stream.next()
        self.data_wait_s += time.perf_counter() - start      # host time waiting for the batch (the doctor's loader rule)
        if x.device != self.device:
            x = x.pin_memory().to(self.device, non_blocking=True)
            if y is not None:
                y = y.pin_memory().to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, (y if self.num_classes else None)

    def train_step(self) -> StepResult:
        x, y = self.next_batch()
        lr = self.learning_rate()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.objective.step = self.step
        augment_labels = None
        if self.augmenter is not None:
            x, augment_labels = self.augmenter(x)
        with self.autocast:
            terms = self.objective(self.train_net, x, y, augment_labels=augment_labels)
        loss = terms.pop("loss")
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        grads = [p.grad for p in self.params if p.grad is not None]
        grad_norm = torch.nn.utils.get_total_norm(grads, foreach=True) if grads else torch.zeros((), device=x.device)
        if self.recipe.grad_clip is not None:
            torch.nn.utils.clip_grads_with_norm_(self.params, self.recipe.grad_clip, grad_norm, foreach=True)
        # A non-finite loss or gradient norm skips the step. Under fp16 the norm is taken after unscaling, so a step
        # the loss scaler skips for an overflow is a skipped step here too: not averaged into the logged values,
        # counted in skipped_steps, and no EMA update (the scaler lowers its scale in _optimizer_step).
        ok = torch.isfinite(loss.detach()) & torch.isfinite(grad_norm)
        if self.world.distributed:
            ok = self.world.all_reduce_(ok.to(torch.int32), "min").bool()
        self._optimizer_step(ok)
        if self.ema is not None:
            self.ema.update(self.net, ok)
        self.step += 1
        if not terms:
            terms = {"loss": loss.detach()}
        terms["grad_norm"] = grad_norm.detach()
        return StepResult(terms=terms, ok=ok)

    def _optimizer_step(self, ok: torch.Tensor) -> None:
        if self.fused:
            # The fused kernel skips the whole update on the device when found_inf is set (GradScaler's mechanism;
            # under fp16 the gradients are already unscaled, so no grad_scale).
            self.optimizer.found_inf = (~ok).float()
            self.optimizer.grad_scale = None
            try:
                self.optimizer.step()
            finally:
                del self.optimizer.found_inf, self.optimizer.grad_scale
        elif bool(ok):                              # the foreach optimizer cannot skip on the device (a host sync)
            self.optimizer.step()
        if self.scaler is not None:
            # The overflow check of unscale_ lowers the scale (x0.5), a run of good steps raises it (playbook 4.3).
            self.scaler.update()

    #------------------------------------------------------------------------
    # Rank 0: the grid, the weights' health, measured FLOPs.

    def sampling_net(self) -> nn.Module:
        """The EMA network as grids and panels call it: under the run's precision (its output and the sampler's
        arithmetic in fp32; sample_grid.under_precision)."""
        from difftui.engine.run.sample_grid import under_precision
        return under_precision(self.ema.net, self.device, self.precision)

    @torch.no_grad()
    def sample_grid(self, watch=None) -> tuple[torch.Tensor, int]:
        """The fixed-x_T grid with the EMA weights and the panel's grid sampler (playbook 5.0): ([64,C,H,W], NFE).
        `watch(net) -> net`: the network as the sampler calls it (run/drawing.py: a stop check before each call)."""
        spec = sampler_args(self.config.sampler.grid)
        gen = torch.Generator(self.device).manual_seed(self.recipe.seed + X_T_SEED_OFFSET + 1)
        net = self.sampling_net() if watch is None else watch(self.sampling_net())
        images, nfe = self.objective.sample(net, self.x_T, spec, generator=gen, y=self.grid_labels)
        if self.decoder is not None:
            images = self.decoder.decode(images)
        self.sync()
        self.last_grid_step = self.step
        return images, int(nfe)

    def weights_finite(self) -> bool:
        """Every weight of the model and of its EMA is finite (checked before each checkpoint)."""
        tensors = [p.detach() for p in self.net.parameters()]
        if self.ema is not None:
            tensors += [p.detach() for p in self.ema.net.parameters()]
        norms = torch._foreach_norm([t.float() for t in tensors])
        return bool(torch.isfinite(torch.stack(norms)).all())

    def weights_checksum(self) -> float:
        """The sum of every weight in float64: equal on all ranks when DDP keeps them in sync."""
        with torch.no_grad():
            return torch.stack([p.detach().double().sum() for p in self.net.parameters()]).sum().item()

    def macs_per_image(self) -> int:
        """Multiply-adds of one forward at batch 1 (measured on the meta device; torch.utils.flop_counter)."""
        c, _, w = self.data.shape
        return measure_macs(self.config.backbone, in_channels=c, out_channels=self.objective.out_channels(c),
                            resolution=w, num_classes=self.num_classes)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    #------------------------------------------------------------------------
    # Checkpoint state (rank 0 writes it; every rank restores from it).

    def state_dict(self, config: dict[str, Any]) -> dict[str, Any]:
        return {
            "step": self.step,
            "kimg": self.kimg,
            "world_size": self.world.size,
            "model": self.net.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "objective": self.objective.state_dict(),
            "stream": self.stream.state_dict(),
            "last_grid_step": self.last_grid_step,
            "config": config,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["model"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self._load_optimizer(state["optimizer"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.objective.load_state_dict(state["objective"])
        self.stream.load_state_dict(state["stream"])
        self.step = int(state["step"])
        self.last_grid_step = int(state.get("last_grid_step", -1))

    # The settings of an optimizer's param groups that come from the run's config, not from its history: a fork with
    # another optimizer (adam -> adamw) keeps the moments but takes the new settings (the lr is set every step).
    CONFIG_GROUP_KEYS = ("betas", "eps", "weight_decay")

    def _load_optimizer(self, state: dict[str, Any]) -> None:
        """The checkpoint's optimizer state (moments, step counts) under this config's group settings."""
        ours = [{k: g[k] for k in self.CONFIG_GROUP_KEYS if k in g} for g in self.optimizer.param_groups]
        self.optimizer.load_state_dict(state)
        for group, settings in zip(self.optimizer.param_groups, ours, strict=True):
            group.update(settings)

    def reseed(self) -> None:
        """Fresh RNG streams for this rank at this step (a resume on a different number of processes)."""
        seed = (self.recipe.seed * self.world.size + self.world.rank) * 1_000_003 + self.step
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed % 2**32)
