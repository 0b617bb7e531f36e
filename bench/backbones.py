"""Training throughput of the backbone tiers, and DyDiT's measured inference speed-up beside its FLOPs ratio.

    .venv/bin/python bench/backbones.py                         # CUDA: every tier; CPU: the small tiers
    .venv/bin/python bench/backbones.py --tiers unet-c128,dit-b-2,dit-xl-2 --modes eager,compiled --dtypes bf16
    .venv/bin/python bench/backbones.py --append                 # also append the table to bench/RESULTS.md

One training step = forward + backward + an Adam step at the tier's anchor resolution (random images, random
timesteps, MSE against random targets; learned-variance outputs for U-Nets, 4 -> 8 channels for DiT); img/s =
batch / median step time, comparable with the papers' training throughput (issue 4: about 467 img/s for the C=128
U-Net at batch 64, 1435 for DiT-B/2 at 256 and 350 for DiT-XL/2 at 128 on one H100, eager, bf16 autocast). `bf16` is autocast to bfloat16
with fp32 weights; `fp32` uses full fp32 matmuls (TF32 off). Conv nets run channels_last on CUDA.
`compiled` is torch.compile (Inductor, default mode); its compile time is excluded and printed separately.

DyDiT: the routers are first taught a budget with the FLOPs term alone (a few Adam steps at lambda on tiny inputs),
then sampling-style forwards (one shared t per batch, no grad) are timed for the complete model and for the dynamic
model at the anchor resolution; the table shows the measured F_dynamic/F_static beside the measured speed-up.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from difftui.engine.config.catalog import Catalog
from difftui.engine.config.ladders import anchor_io
from difftui.engine.diffusion.budget import flops_loss
from difftui.engine.models import count_params
from difftui.engine.run.builders import build_model
from difftui.engine.run.device import set_tf32

ROOT = Path(__file__).resolve().parent
CPU_TIERS = ["unet-demo", "unet-c64", "dit-s-2"]
GPU_BATCH = {"unet": 64, "adm": 64, "ddpmpp": 128, "ncsnpp": 128, "dit": 256, "dydit": 256}
GPU_BATCH_XL = 128                                  # DiT-XL/2 reference batch (issue 4)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or "cpu"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def batch_for(tier, device: torch.device, override: int | None) -> int:
    if override:
        return override
    if device.type == "cpu":
        return 4
    if tier.family in ("dit", "dydit") and tier.arch.get("depth") == 28:
        return GPU_BATCH_XL
    return GPU_BATCH[tier.family]


def make_inputs(tier, batch: int, device: torch.device):
    in_ch, out_ch = anchor_io(tier)
    if tier.family == "unet":
        out_ch = 2 * in_ch                                                      # learned variance (playbook 2.8)
    n_cls = 1000 if tier.family in ("dit", "dydit", "adm") else 0
    r = tier.resolution
    x = torch.randn(batch, in_ch, r, r, device=device)
    t = torch.randint(0, 1000, (batch,), device=device).float()
    y = torch.randint(0, n_cls, (batch,), device=device) if n_cls else None
    target = torch.randn(batch, out_ch, r, r, device=device)
    return (in_ch, out_ch, n_cls), (x, t, y, target)


#----------------------------------------------------------------------------
# Training throughput.

def bench_train(tier, device: torch.device, dtype: str, mode: str, batch: int, steps: int, warmup: int) -> dict:
    (in_ch, out_ch, n_cls), (x, t, y, target) = make_inputs(tier, batch, device)
    torch.manual_seed(0)
    net = build_model(tier, in_channels=in_ch, out_channels=out_ch, resolution=tier.resolution,
                      num_classes=n_cls).to(device).train()
    conv = tier.family in ("unet", "adm", "ddpmpp", "ncsnpp")
    if conv and device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, **({"fused": True} if device.type == "cuda" else {}))
    torch._dynamo.reset()                           # each configuration compiles afresh, with static shapes
    fwd = torch.compile(net, dynamic=False) if mode == "compiled" else net
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16")

    def step():
        with amp:
            out = fwd(x, t, y)
            loss = (out.float() - target).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    t0 = time.perf_counter()
    step()                                                                      # compile happens here
    sync(device)
    first = time.perf_counter() - t0
    for _ in range(max(warmup - 1, 0)):
        step()
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - t0)
    dt = statistics.median(times)                   # robust to other processes on a shared machine
    mem = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    ref = tier.anchor.img_per_s_ref if tier.anchor else None
    return dict(tier=tier.name, params_m=count_params(net) / 1e6, dtype=dtype, mode=mode, batch=batch,
                img_s=batch / dt, ms=dt * 1e3, first_s=first, mem_gib=mem, ref=ref)


#----------------------------------------------------------------------------
# DyDiT inference: measured speed-up beside the FLOPs ratio.

def teach_budget(net, lam: float, device: torch.device, steps: int = 8) -> None:
    """A few Adam steps on the FLOPs term alone, on 8x8 inputs, so the routers switch work off (playbook 3.5)."""
    routers = [p for n, p in net.named_parameters() if "router" in n]
    opt = torch.optim.Adam(routers, lr=5e-2)
    in_ch = net.in_channels
    net.train()
    for _ in range(steps):
        x = torch.randn(4, in_ch, net.resolution, net.resolution, device=device)
        t = torch.randint(0, 1000, (4,), device=device).float()
        y = torch.randint(0, max(net.num_classes, 1), (4,), device=device) if net.num_classes else None
        net(x, t, y)
        loss = flops_loss(net.flops_ratio(), lam)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    net.eval()


def bench_dydit(tier, device: torch.device, dtype: str, lam: float, batch: int, repeats: int) -> dict:
    (in_ch, out_ch, n_cls), (x, t, y, _) = make_inputs(tier, batch, device)
    torch.manual_seed(0)
    small = build_model(tier, in_channels=in_ch, out_channels=out_ch, resolution=8, num_classes=n_cls).to(device)
    teach_budget(small, lam, device)
    net = build_model(tier, in_channels=in_ch, out_channels=out_ch, resolution=tier.resolution,
                      num_classes=n_cls).to(device)
    net.load_state_dict({k: v for k, v in small.state_dict().items() if k != "pos_embed"}, strict=False)
    net.eval()
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16")
    steps = torch.linspace(999, 0, repeats).round().tolist()                   # one shared t per forward
    net.precompute_masks(steps)

    def run(complete: bool) -> tuple[float, float]:
        ratios = []
        with torch.no_grad(), amp:
            for tv in steps[:2]:                                                # warm-up
                with net.complete() if complete else _null():
                    net(x, torch.full((batch,), tv, device=device), y)
            sync(device)
            t0 = time.perf_counter()
            for tv in steps:
                with net.complete() if complete else _null():
                    net(x, torch.full((batch,), tv, device=device), y)
                if not complete:
                    ratios.append(net.flops_ratio())
            sync(device)
        ratio = torch.stack(ratios).mean().item() if ratios else 1.0
        return (time.perf_counter() - t0) / len(steps), ratio

    t_static, _ = run(True)
    t_dyn, ratio = run(False)
    return dict(tier=tier.name, dtype=dtype, lam=lam, batch=batch, ratio=ratio, speedup=t_static / t_dyn,
                static_img_s=batch / t_static, dyn_img_s=batch / t_dyn)


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


#----------------------------------------------------------------------------
# Output.

def table(rows: list[dict], dy_rows: list[dict]) -> str:
    lines = ["| tier | params (M) | dtype | mode | batch | img/s | ms/step | first step (s) | peak GiB | ref img/s |",
             "|---|---:|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        mem = f"{r['mem_gib']:.1f}" if r["mem_gib"] is not None else "-"
        ref = f"{r['ref']:g}" if r["ref"] else "-"
        lines.append(f"| {r['tier']} | {r['params_m']:.1f} | {r['dtype']} | {r['mode']} | {r['batch']} | "
                     f"{r['img_s']:.2f} | {r['ms']:.0f} | {r['first_s']:.1f} | {mem} | {ref} |")
    if dy_rows:
        lines += ["", "| DyDiT tier | dtype | lambda | batch | measured F_dyn/F_static | complete img/s | "
                      "dynamic img/s | measured speed-up |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        for r in dy_rows:
            lines.append(f"| {r['tier']} | {r['dtype']} | {r['lam']:g} | {r['batch']} | {r['ratio']:.3f} | "
                         f"{r['static_img_s']:.2f} | {r['dyn_img_s']:.2f} | {r['speedup']:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiers", default="", help="comma-separated backbone presets (default: all on CUDA, small on CPU)")
    p.add_argument("--modes", default="eager,compiled")
    p.add_argument("--dtypes", default="fp32,bf16")
    p.add_argument("--batch", type=int, default=0, help="override the per-tier batch")
    p.add_argument("--steps", type=int, default=0, help="timed steps, median reported (default 20 CUDA, 5 CPU)")
    p.add_argument("--warmup", type=int, default=0, help="untimed steps (default 5 on CUDA, 2 on CPU)")
    p.add_argument("--dydit", default=None, help="DyDiT tiers for the inference speed-up (default dydit-s-2; '' none)")
    p.add_argument("--lam", type=float, default=0.5, help="DyDiT target FLOPs ratio (playbook A.2 grid)")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU threads (on a shared machine use 1: OpenMP threads stall when a core is taken)")
    p.add_argument("--append", action="store_true", help="append the table to bench/RESULTS.md")
    p.add_argument("--note", default="", help="a line to record with the figures")
    a = p.parse_args(argv)

    device = torch.device("cuda" if a.device == "auto" and torch.cuda.is_available() else
                          "cpu" if a.device == "auto" else a.device)
    if a.threads:
        torch.set_num_threads(a.threads)
    set_tf32(False)                                 # fp32 is measured as fp32 (engine/run/device.py: the one TF32 API)
    cat = Catalog()
    gpu = device.type == "cuda"
    names = [n for n in a.tiers.split(",") if n] or ([n for n in cat.names("backbones")] if gpu else CPU_TIERS)
    steps = a.steps or (20 if gpu else 5)
    warmup = a.warmup or (5 if gpu else 2)
    print(f"device: {device_name(device)}; torch {torch.__version__}; steps {steps}, warm-up {warmup}", flush=True)

    rows = []
    for name in names:
        tier = cat.get("backbones", name)
        b = batch_for(tier, device, a.batch)
        for dtype in a.dtypes.split(","):
            for mode in a.modes.split(","):
                try:
                    r = bench_train(tier, device, dtype, mode, b, steps, warmup)
                except torch.cuda.OutOfMemoryError:
                    torch.cuda.empty_cache()
                    print(f"{name} {dtype} {mode}: out of memory at batch {b}", flush=True)
                    continue
                rows.append(r)
                print(f"{name:16s} {dtype:5s} {mode:9s} batch {b:4d}  {r['img_s']:9.2f} img/s  "
                      f"{r['ms']:8.1f} ms/step  first {r['first_s']:.1f}s", flush=True)
                if gpu:
                    torch.cuda.empty_cache()

    dy_rows = []
    for name in [n for n in ("dydit-s-2" if a.dydit is None else a.dydit).split(",") if n]:
        tier = cat.get("backbones", name)
        b = a.batch or (batch_for(tier, device, 0) if gpu else 8)
        for dtype in a.dtypes.split(","):
            r = bench_dydit(tier, device, dtype, a.lam, b, repeats=20 if gpu else 4)
            dy_rows.append(r)
            print(f"{name:16s} {dtype:5s} lambda {a.lam:g}: ratio {r['ratio']:.3f}, speed-up {r['speedup']:.2f}x "
                  f"({r['static_img_s']:.2f} -> {r['dyn_img_s']:.2f} img/s)", flush=True)

    text = table(rows, dy_rows)
    print()
    print(text)
    if a.append:
        stamp = datetime.date.today().isoformat()
        args = list(argv if argv is not None else sys.argv[1:])
        if "--note" in args:                                                     # the note is printed below
            i = args.index("--note")
            del args[i:i + 2]
        head = (f"\n## Backbones ({stamp}, {device_name(device)}, torch {torch.__version__})\n\n"
                f"`bench/backbones.py {' '.join(args)}`: training step = forward + backward + Adam at the anchor "
                f"resolution; median of {steps} timed steps after {warmup} warm-up; the first step includes "
                f"torch.compile's compile time.\n")
        if a.note:
            head += f"{a.note}\n"
        with open(ROOT / "RESULTS.md", "a", encoding="utf-8") as f:
            f.write(head + "\n" + text + "\n")


if __name__ == "__main__":
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path.home() / ".cache" / "difftui-inductor"))
    main()
