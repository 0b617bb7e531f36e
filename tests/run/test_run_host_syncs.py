"""The CUDA training step has no host sync and no blocking copy once it runs (issue 19, item 6).

The real `Trainer.setup()` and `Trainer.train_step()` (plus the loop's per-step `Meter.accumulate`) of five tiny
configurations run on fake CUDA tensors (tests/kit/fake_cuda.py: what is real, what stands in for the driver and
why), and the probe fails the test on any host sync, blocking host-to-device copy or CPU/GPU mix in the steady-state
step, naming the engine's source line. The five cover every per-step path: DDPM with x-flips and uniform t (P1's
default), L_hybrid with P1's importance sampling, EDM with P3's augmentation, fp16 with its loss scaler, and a
class-conditional DiT. Each runs with the engine's CUDA defaults (bf16 autocast unless fp16 is asked, channels_last
for the conv nets, fused Adam, data on the GPU).
"""

import pytest
import torch
from fake_cuda import CARD, SyncProbe, fake_cuda

from difftui.engine.config.catalog import Catalog
from difftui.engine.run.meter import Meter
from difftui.engine.run.sample_grid import fixed_noise
from difftui.engine.run.trainer import X_T_SEED_OFFSET, Trainer

TINY_UNET = ["backbone.arch.model_channels=16"]
CONFIGS = {
    "p1-unet-xflip": dict(overrides=[*TINY_UNET, "dataset.x_flip=true"]),
    "p1-hybrid-importance": dict(recipe="p1-hybrid-cosine", overrides=[*TINY_UNET, "recipe.importance_sampling=true"]),
    "p3-edm-augment": dict(backbone="ddpmpp-cifar10", sampler="edm-heun", recipe="p3-cifar10", off_tier=True,
                           overrides=["backbone.arch.model_channels=16", "backbone.arch.channel_mult=[1,2]",
                                      "backbone.arch.num_blocks=1", "backbone.arch.attn_resolutions=[4]"]),
    "p1-unet-fp16": dict(overrides=[*TINY_UNET, "recipe.precision=fp16"]),
    "dit-class-conditional": dict(backbone="dit-s-2", off_tier=True,
                                  overrides=["backbone.arch.depth=2", "backbone.arch.hidden_size=48",
                                             "recipe.class_conditional=true"]),
}
WARMUP, PROBED = 2, 2                               # the first steps may set things up once; then the steady state


@pytest.fixture
def cuda_backend_flags():
    """configure_cuda sets process-wide backend flags: put them back for the tests after this one."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark = saved


@pytest.mark.usefixtures("cuda_backend_flags")
@pytest.mark.parametrize("name", CONFIGS)
def test_the_steady_state_cuda_step_has_no_host_sync_or_blocking_copy(name, tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFTUI_CPU_THREADS", "1")
    kw = CONFIGS[name]
    config = Catalog().resolve(**{**kw, "overrides": ["recipe.batch_size=4", *kw["overrides"]]}, max_steps=100,
                               device="cuda")
    d = config.dataset
    # x_T is drawn and saved for real (a fake tensor has no bytes to save); setup() loads it, as on a resume.
    fixed_noise(tmp_path / "x_T.pt", (d.channels, d.resolution, d.resolution), seed=config.recipe.seed + X_T_SEED_OFFSET)
    with fake_cuda():
        trainer = Trainer(config, tmp_path)
        trainer.setup()
        path = trainer.describe_fast_path()
        assert trainer.device == torch.device("cuda", 0)
        assert trainer.precision == ("fp16" if name.endswith("fp16") else "bf16")
        assert (trainer.scaler is not None) == name.endswith("fp16")
        assert trainer.data_on_device and trainer.fused and "data on the GPU" in path and "fused adam" in path
        assert trainer.channels_last == (config.backbone.family != "dit")
        assert next(trainer.net.parameters()).device.type == "cuda"
        meter = Meter(trainer.device)
        with SyncProbe():                           # not judged: it only answers for the values fakes lack
            for _ in range(WARMUP):
                result = trainer.train_step()
                meter.accumulate(result.terms, result.ok)
        with SyncProbe() as probe:
            for _ in range(PROBED):
                result = trainer.train_step()
                meter.accumulate(result.terms, result.ok)
        assert result.ok.device.type == "cuda" and all(v.device.type == "cuda" for v in result.terms.values())
        assert trainer.step == WARMUP + PROBED
    findings = list(dict.fromkeys(probe.findings))             # each line once, in the order first seen
    assert not findings, f"{CARD.name} step of {name}:\n" + "\n".join(findings)
