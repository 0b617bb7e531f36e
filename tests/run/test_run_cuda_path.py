"""The CUDA path's faults that the CPU can show (issue 19): a resume whose checkpoint is not loaded to the CPU, a loss
scaler's overflow step logged as a good step, and grids and panels sampled outside the run's precision."""

import math
import threading

import pytest
import torch
from engine_testkit import tiny_config

from difftui.engine.config.catalog import Catalog
from difftui.engine.run.distributed import World
from difftui.engine.run.loop import TrainLoop
from difftui.engine.run.meter import Meter
from difftui.engine.run.trainer import Trainer

pytestmark = pytest.mark.usefixtures("engine_hygiene")     # tests/conftest.py: one CPU thread


def trainer(tmp_path, *extra, steps=100):
    t = Trainer(tiny_config(steps, "recipe.log_every=1000", *extra), tmp_path)
    t.setup()
    return t


class Owner:
    """The run owner's part that TrainLoop.checkpoint() and restore() use (no runs.db here)."""

    def __init__(self):
        self.events, self.config_data, self.run_id, self.grids, self.metrics = [], {}, 1, [], []
        self.store = self
        self.log = self                             # the grid statistics go to the log buffer (issue 18)
        self.stop_requested = threading.Event()     # a stop command (the loop asks it between network calls)

    def add_metrics(self, step, kimg, values):
        self.metrics.append((step, values))

    def event(self, message, level="info"):
        self.events.append(message)

    def flush(self, *args, **kwargs):
        pass

    def truncate_after(self, run_id, step):
        return 0

    def record_grid(self, step, png, sampler, nfe):
        self.grids.append((step, sampler, nfe))

    def lost(self):                                 # its run folder and runs.db are where they were (issue 16)
        return None

    def lost_seen(self):
        return None

    def guard_folder(self):
        pass

    def sync(self):                                 # what was written is durable (runs.db: nothing to do)
        pass


def weights(module):
    return [p.detach().clone() for p in module.parameters()]


#----------------------------------------------------------------------------
# Item 4: fp16's skipped steps.

def test_a_loss_scaler_overflow_step_is_skipped_counted_and_leaves_weights_and_ema_alone(tmp_path):
    """fp16's path (scale, backward, unscale_, the fused optimizer, the scaler's update) with torch's CPU GradScaler:
    an overflowing gradient makes the step a skipped one: ok False, not averaged into grad_norm, counted, the weights,
    the optimizer and the EMA (its warm-up counter too) unchanged, and the scale halved."""
    t = trainer(tmp_path)
    t.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    assert t.fused                                          # the engine's default optimizer, as on CUDA
    meter = Meter(t.device)
    overflow = {"now": False}
    first = next(t.net.parameters())
    first.register_hook(lambda g: g * math.inf if overflow["now"] else g)

    good = t.train_step()
    meter.accumulate(good.terms, good.ok)
    assert bool(good.ok) and t.ema.updates == 1 and t.scaler.get_scale() == 1024.0
    net_before, ema_before = weights(t.net), weights(t.ema.net)
    adam_before = [s["exp_avg"].clone() for s in t.optimizer.state.values()]

    overflow["now"] = True
    bad = t.train_step()
    meter.accumulate(bad.terms, bad.ok)
    assert not bool(bad.ok) and not math.isfinite(float(bad.terms["grad_norm"]))
    assert math.isfinite(float(bad.terms["L_simple"]))                 # the loss itself was fine: an overflow
    for a, b in zip(weights(t.net), net_before, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for a, b in zip(weights(t.ema.net), ema_before, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for s, before in zip(t.optimizer.state.values(), adam_before, strict=True):
        torch.testing.assert_close(s["exp_avg"], before, rtol=0, atol=0)
    assert t.ema.updates == 1 and t.scaler.get_scale() == 512.0

    overflow["now"] = False
    again = t.train_step()
    meter.accumulate(again.terms, again.ok)
    assert bool(again.ok) and t.ema.updates == 2
    interval = meter.close(World())
    assert interval.steps == 3 and interval.skipped == 1 and interval.nonfinite_terms == ["grad_norm"]
    assert interval.means["grad_norm"] == pytest.approx((float(good.terms["grad_norm"]) +
                                                         float(again.terms["grad_norm"])) / 2)


#----------------------------------------------------------------------------
# Item 1: every resume on CUDA.

TINY = ["recipe.batch_size=8", "recipe.log_every=1000"]
RESUMED = {                                             # the configurations with every generator a resume restores
    "x-flips and importance sampling": dict(
        recipe="p1-hybrid-cosine",
        overrides=[*TINY, "backbone.arch.model_channels=16", "recipe.importance_sampling=true", "dataset.x_flip=true"]),
    "P3 augmentation": dict(
        backbone="ddpmpp-cifar10", sampler="edm-heun", recipe="p3-cifar10", off_tier=True,
        overrides=[*TINY, "backbone.arch.model_channels=16", "backbone.arch.channel_mult=[1,2]",
                   "backbone.arch.num_blocks=1", "backbone.arch.attn_resolutions=[4]"]),
}


def losses(t, steps):
    """The first logged term (L_simple, L_edm) of the next `steps` steps."""
    return [float(next(iter(t.train_step().terms.values()))) for _ in range(steps)]


@pytest.mark.parametrize("name", RESUMED)
def test_a_resume_loads_the_checkpoint_to_the_cpu_whatever_the_training_device(tmp_path, name):
    """Generator.set_state (the stream's flip generator, torch's and CUDA's RNG, the augmenter, the importance
    sampler) takes only a CPU ByteTensor, so a checkpoint loaded onto the training device made every CUDA resume fail
    ('RNG state must be a torch.ByteTensor'). Here the training device reads as 'meta' while the checkpoint is
    restored (like CUDA, not the CPU; the issue's reproduction): the resumed steps equal the uninterrupted ones."""
    config = Catalog().resolve(**RESUMED[name], max_steps=100, device="cpu")
    first = Trainer(config, tmp_path)
    first.setup()
    loop = TrainLoop(first, Owner(), World())
    for _ in range(3):
        result = first.train_step()
        loop.meter.accumulate(result.terms, result.ok)
    loop.checkpoint()
    assert (tmp_path / "checkpoints" / "ckpt-0000003.pt").exists()
    expected = losses(first, 3)

    again = Trainer(config, tmp_path)
    again.setup()
    resumed = TrainLoop(again, Owner(), World())
    again.device = torch.device("meta")                     # not the CPU, as a GPU would be
    assert resumed.restore() == 3
    again.device = torch.device("cpu")
    assert resumed.owner.events == ["resumed from step 3 (ckpt-0000003.pt)"]
    assert losses(again, 3) == expected


#----------------------------------------------------------------------------
# Item 8: grids and panels under the run's precision.

def test_grids_and_the_live_panel_call_the_network_under_the_runs_precision_and_say_so(tmp_path, monkeypatch):
    """On CUDA the run's precision is bf16 (autocast); grids and the panel ran the network in fp32 (2-3x slower per
    evaluation while the other ranks wait). The CPU's bf16 autocast runs the same code: the network's convolutions
    see autocast and give bf16, the sampler's arithmetic and the images stay fp32, and the grid's caption says so.
    The panel's NLL keeps the fp32 network (a likelihood is compared with the fp32 evaluator's)."""
    import difftui.engine.eval.panel as panel

    t = trainer(tmp_path, "sampler.grid.steps=3", "sampler.sweep=[{kind: ddpm, steps: 3, variance: fixed_small}]")
    t.precision = "bf16"                                    # what precision=auto resolves to on a CUDA card
    seen = []
    conv = next(m for m in t.ema.net.modules() if isinstance(m, torch.nn.Conv2d))
    conv.register_forward_hook(lambda m, i, out: seen.append((torch.is_autocast_enabled("cpu"), out.dtype)))
    loop = TrainLoop(t, Owner(), World())

    loop.draw_grid()
    assert seen == [(True, torch.bfloat16)] * 3                           # 3 DDIM steps, each under autocast
    assert loop.owner.grids == [(0, "DDIM eta=0 N=3 linear · bf16 network, fp32 sampler", 3)]
    images, _ = t.sample_grid()
    assert images.dtype == torch.float32 and images.shape == (64, 1, 8, 8)

    seen.clear()
    recorded = []
    monkeypatch.setattr(panel, "record_panel", lambda store, run_id, step, rows, *a, **k: recorded.extend(rows) or [])
    loop.evaluate_panel()
    sampled, nll = seen[:6], seen[6:]                      # DDIM's 3 evaluations, the ancestral chain's 3, its NLL
    assert sampled == [(True, torch.bfloat16)] * 6
    assert nll and set(nll) == {(False, torch.float32)}
    assert [r["label"] for r in recorded] == ["DDIM eta=0 N=3 linear", "DDPM fixed_small N=3"]
    assert all(r["grid"].dtype == torch.float32 for r in recorded) and recorded[1]["nll_bpd"] is not None
    assert loop.owner.events[-1] == "sampler panel at step 0: bf16 network, fp32 sampler"
