"""The GPU check of the engine, in one call (issue 7): on a machine with one NVIDIA GPU, within 8 minutes,

    1. engine step   img/s of the engine's own training step (Trainer.train_step: the objective, DDP-ready step,
                     non-finite guard, EMA) with its defaults (bf16 autocast, TF32, channels_last for the conv nets,
                     fused Adam, data on the GPU) for the four reference tiers, eager, against the papers' code
    2. attention     which scaled_dot_product_attention kernel runs for each tier's head size, in bf16 (profiler)
    3. engine run    a real run on CUDA (spawned engine, runs.db): metrics, GPU rows and a grid must arrive
    4. compiled      the engine step with recipe.compile=true (compile time shown apart)
    5. backbones     bench/backbones.py's bare model step, bf16, eager and compiled

then prints one table and appends it to bench/RESULTS.md with the card's name. Stages run in that order of
importance and a stage that would overrun the time budget is skipped (and says so). `--dry-run` runs every stage on
the CPU with tiny sizes in seconds (tests/bench/test_gpu_check.py), so the script is known to work before a GPU is
at hand. Run it through bench/gpu_check.sh on the device machine (it makes difftui importable there).

Reference img/s (the papers' own code, eager bf16 autocast, one H100, random inputs; issue 7): P1 U-Net C=128 at
64x64 batch 64: 467; DiT-B/2 batch 256: 1435; DiT-XL/2 batch 128: 350; EDM DDPM++ CIFAR-10 batch 256: 1218.
Targets: the engine's defaults >= 1.5x, eager >= 1.0x.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

# tier, recipe, (channels, resolution), batch, classes, reference img/s (issue 7)
@dataclass(frozen=True)
class Case:
    tier: str
    recipe: str
    channels: int
    resolution: int
    batch: int
    classes: int
    ref: float | None
    overrides: tuple[str, ...] = ()


GPU_CASES = [
    Case("unet-c128", "p1-hybrid-cosine", 3, 64, 64, 0, 467.0),
    Case("dit-b-2", "p1-hybrid-cosine", 4, 32, 256, 1000, 1435.0),
    Case("dit-xl-2", "p1-hybrid-cosine", 4, 32, 128, 1000, 350.0),
    Case("ddpmpp-cifar10", "p3-cifar10", 3, 32, 256, 0, 1218.0),
]
DRY_CASES = [                                       # the same code paths, CPU-sized
    Case("unet-demo", "p1-hybrid-cosine", 1, 8, 8, 0, None, ("backbone.arch.model_channels=16",)),
    Case("dit-s-2", "p1-hybrid-cosine", 4, 8, 8, 10, None, ("backbone.arch.depth=2", "backbone.arch.hidden_size=48")),
]


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


#----------------------------------------------------------------------------
# 1 and 4: the engine's own step.

def engine_config(case: Case, device: str, compile_: bool):
    from difftui.engine.config.catalog import Catalog
    sets = [f"recipe.batch_size={case.batch}", f"dataset.resolution={case.resolution}",
            f"dataset.channels={case.channels}", f"recipe.compile={'true' if compile_ else 'false'}",
            "recipe.grid_every=1000000", "recipe.snapshot_every=1000000", *case.overrides]
    if compile_ and device == "cpu":
        sets.append("recipe.compile_backend=eager")     # the dry run: graph capture only (CPU Inductor takes minutes)
    if case.classes:
        sets += [f"dataset.num_classes={case.classes}", "recipe.class_conditional=true"]
    if case.recipe == "p3-cifar10":
        sets += ["sampler.grid.kind=edm_heun", "sampler.grid.steps=18", "sampler.sweep=[]"]
    return Catalog().resolve(dataset="digits", backbone=case.tier, recipe=case.recipe, overrides=sets,
                             device=device, off_tier=bool(case.overrides))


def synthetic_set(case: Case):
    """Random uint8 images (and labels) of the case's shape, standing in for the data set (random inputs, as the
    reference figures were measured)."""
    from difftui.engine.data.images import ImageSet
    g = torch.Generator().manual_seed(0)
    n = 4 * case.batch
    images = torch.randint(0, 256, (n, case.channels, case.resolution, case.resolution), generator=g,
                           dtype=torch.uint8)
    labels = torch.randint(0, case.classes, (n,), generator=g) if case.classes else None
    return ImageSet(images, labels, name="synthetic", num_classes=case.classes)


def bench_engine(case: Case, device: str, compile_: bool, steps: int, warmup: int) -> dict:
    import difftui.engine.data as data_module
    from difftui.engine.run.trainer import Trainer
    config = engine_config(case, device, compile_)
    real = data_module.build_dataset
    data_module.build_dataset = lambda profile, progress=None: synthetic_set(case)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            torch._dynamo.reset()
            trainer = Trainer(config, Path(tmp))
            trainer.setup()
            t0 = time.perf_counter()
            trainer.train_step()
            trainer.sync()
            first = time.perf_counter() - t0
            for _ in range(max(warmup - 1, 0)):
                trainer.train_step()
            trainer.sync()
            if trainer.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(trainer.device)
            t0 = time.perf_counter()
            for _ in range(steps):
                result = trainer.train_step()
            trainer.sync()
            dt = (time.perf_counter() - t0) / steps
            ok = bool(result.ok)
            mem = torch.cuda.max_memory_allocated(trainer.device) / 2**30 if trainer.device.type == "cuda" else None
            path = trainer.describe_fast_path().removeprefix("fast path: ")
            del trainer
    finally:
        data_module.build_dataset = real
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    img_s = case.batch / dt
    return dict(stage="engine compiled" if compile_ else "engine eager", tier=case.tier, batch=case.batch,
                img_s=img_s, ms=dt * 1e3, first_s=first, mem=mem, ref=case.ref,
                x=img_s / case.ref if case.ref else None, note=path + ("" if ok else "; LAST STEP NOT FINITE"))


#----------------------------------------------------------------------------
# 2: which attention kernel runs.

SDPA_OPS = {"aten::_scaled_dot_product_flash_attention": "flash",
            "aten::_scaled_dot_product_efficient_attention": "memory-efficient",
            "aten::_scaled_dot_product_cudnn_attention": "cuDNN",
            "aten::_scaled_dot_product_flash_attention_for_cpu": "flash (CPU)",
            "aten::_scaled_dot_product_attention_math": "math (slow)"}


def attention_kernels(case: Case, device: torch.device) -> dict:
    from torch.profiler import ProfilerActivity, profile

    from difftui.engine.run.builders import build_model, build_objective
    config = engine_config(case, str(device), False)
    out = build_objective(config.recipe).out_channels(case.channels)
    net = build_model(config.backbone, in_channels=case.channels, out_channels=out, resolution=case.resolution,
                      num_classes=case.classes).to(device)
    b = min(case.batch, 16)
    x = torch.randn(b, case.channels, case.resolution, case.resolution, device=device)
    t = torch.randint(0, 1000, (b,), device=device).float()
    y = torch.randint(0, case.classes, (b,), device=device) if case.classes else None
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    heads: set[int] = set()
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def recording(q, *args, **kwargs):                  # the head size each call sees: q is [B, heads, N, d_head]
        heads.add(q.shape[-1])
        return sdpa(q, *args, **kwargs)
    with torch.autocast(device.type, dtype=dtype, enabled=device.type == "cuda"):
        torch.nn.functional.scaled_dot_product_attention = recording
        try:
            net(x, t, y).float().mean().backward()             # warm-up, and the head sizes
        finally:
            torch.nn.functional.scaled_dot_product_attention = sdpa
        with profile(activities=activities) as prof:
            net(x, t, y).float().mean().backward()
            sync(device)
    found = sorted({SDPA_OPS[e.key] for e in prof.key_averages() if e.key in SDPA_OPS})
    return dict(stage="attention", tier=case.tier, batch=b, note=f"head dim {','.join(map(str, sorted(heads))) or '-'}: "
                f"{', '.join(found) or 'no SDPA call'} ({'bf16' if device.type == 'cuda' else 'fp32'})")


#----------------------------------------------------------------------------
# 3: a real engine run.

def engine_run(device: str, seconds: float, dry: bool) -> dict:
    from difftui.engine.config.catalog import Catalog
    from difftui.engine.launch import runs as launch
    from difftui.engine.store import ACTIVE_STATUSES, Store
    sets = ["recipe.log_every=10", "recipe.grid_every=100", "recipe.snapshot_every=100"]
    if dry:
        sets += ["recipe.batch_size=8", "backbone.arch.model_channels=16", "sampler.grid.steps=5",
                 "recipe.grid_every=5", "recipe.snapshot_every=5"]
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "runs.db"
        config = Catalog().resolve(overrides=sets, max_steps=1_000_000, device=device)
        run_id = launch.launch(db, config)
        t0 = time.monotonic()
        deadline = t0 + seconds + 120
        with Store(db) as store:
            while time.monotonic() < deadline:
                run = store.get_run(run_id)
                if run["status"] not in ACTIVE_STATUSES or (run["step"] > 0 and time.monotonic() - t0 > seconds):
                    break
                time.sleep(1.0)
            if run["status"] in ACTIVE_STATUSES:
                launch.request_stop(db, run_id)
            while store.get_run(run_id)["status"] in ACTIVE_STATUSES and time.monotonic() < deadline:
                time.sleep(0.5)
            run = store.get_run(run_id)
            values = store.latest_values(run_id)
            names = set(store.metric_names(run_id))
            gpu = store.gpu_since(run_id)
            grids = store.samples_index(run_id)
            events = [e["message"] for e in store.events_since(run_id)]
        log = (Path(tmp) / "runs" / str(run_id) / "engine.log").read_text()[-2000:]
    wanted = {"L_simple", "img_per_s", "grad_norm", "gflops_fwd", "tflops"} | ({"mfu"} if device == "cuda" else set())
    problems = []
    if run["status"] != "stopped":
        problems.append(f"status {run['status']} ({run['error']})")
    if not wanted <= names:
        problems.append(f"missing metrics {sorted(wanted - names)}")
    if device == "cuda":
        readable = [g for g in gpu if g["util"] == g["util"] and g["mem_used"] == g["mem_used"]]
        if not readable:
            problems.append(f"no readable GPU rows ({len(gpu)} rows; {gpu[-1]['error'] if gpu else 'none'})")
    if not grids:
        problems.append("no grid")
    mfu = f", MFU {values['mfu']:.1%}" if "mfu" in values else ""
    note = (f"{run['step']} steps, {values.get('img_per_s', float('nan')):.0f} img/s, "
            f"{values.get('tflops', float('nan')):.3g} TFLOP/s{mfu}, {len(gpu)} GPU rows, {len(grids)} grid(s); "
            + ("; ".join(problems) if problems else "metrics, GPU rows and grids arrived"))
    if problems:
        print("engine run events:", *events[-8:], "engine.log tail:", log, sep="\n", flush=True)
    return dict(stage="engine run", tier=config.backbone.name, batch=config.recipe.batch_size,
                img_s=values.get("img_per_s"), note=note, failed=bool(problems))


#----------------------------------------------------------------------------
# 5: the bare model step of bench/backbones.py.

def bench_backbone(case: Case, device: torch.device, mode: str, steps: int, warmup: int) -> dict:
    import backbones
    config = engine_config(case, str(device), False)
    torch._dynamo.reset()
    r = backbones.bench_train(config.backbone, device, "bf16" if device.type == "cuda" else "fp32", mode,
                              case.batch, steps, warmup)
    return dict(stage=f"bare model {mode}", tier=case.tier, batch=case.batch, img_s=r["img_s"], ms=r["ms"],
                first_s=r["first_s"], mem=r["mem_gib"], ref=case.ref,
                x=r["img_s"] / case.ref if case.ref else None, note="bench/backbones.py")


#----------------------------------------------------------------------------

def table(rows: list[dict]) -> str:
    lines = ["| stage | tier | batch | img/s | x reference | ms/step | first step (s) | peak GiB | notes |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    f = lambda v, fmt: format(v, fmt) if isinstance(v, (int, float)) and v == v else "-"
    for r in rows:
        lines.append(f"| {r['stage']} | {r['tier']} | {r.get('batch', '-')} | {f(r.get('img_s'), '.1f')} | "
                     f"{f(r.get('x'), '.2f')} | {f(r.get('ms'), '.1f')} | {f(r.get('first_s'), '.1f')} | "
                     f"{f(r.get('mem'), '.1f')} | {r.get('note', '')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true", help="every stage on the CPU with tiny sizes (a few seconds)")
    p.add_argument("--budget", type=float, default=0, help="seconds for the whole check (default 450; dry 240)")
    p.add_argument("--run-seconds", type=float, default=0, help="length of the engine run (default 90; dry 5)")
    p.add_argument("--results", default=str(ROOT / "RESULTS.md"), help="file the table is appended to")
    a = p.parse_args(argv)
    start = time.monotonic()
    budget = a.budget or (240 if a.dry_run else 450)
    dry = a.dry_run or not torch.cuda.is_available()
    if not a.dry_run and dry:
        print("no CUDA device here: running the dry run instead (--dry-run)", flush=True)
    device = torch.device("cpu" if dry else "cuda")
    cases = DRY_CASES if dry else GPU_CASES
    steps, warmup = (3, 1) if dry else (20, 5)
    card = device_name(device)
    print(f"gpu_check on {card}; torch {torch.__version__}; budget {budget:.0f} s", flush=True)

    # (stage, estimated seconds, thunk)
    plan = [(f"engine eager {c.tier}", 30, lambda c=c: bench_engine(c, str(device), False, steps, warmup))
            for c in cases]
    plan += [(f"attention {c.tier}", 10, lambda c=c: attention_kernels(c, device)) for c in cases]
    run_s = a.run_seconds or (5 if dry else 90)
    plan.append(("engine run", run_s + 40, lambda: engine_run(str(device), run_s, dry)))
    plan += [(f"engine compiled {c.tier}", 90, lambda c=c: bench_engine(c, str(device), True, steps, warmup))
             for c in cases]
    for mode in ("eager",) if dry else ("eager", "compiled"):   # CPU Inductor compiles take minutes
        plan += [(f"bare model {mode} {c.tier}", 20 if mode == "eager" else 80,
                  lambda c=c, m=mode: bench_backbone(c, device, m, steps, warmup)) for c in cases]
    if dry:
        plan = [(name, 0, thunk) for name, _, thunk in plan]

    rows, failed = [], False
    for name, estimate, thunk in plan:
        left = budget - (time.monotonic() - start)
        if not dry and estimate > left:
            rows.append(dict(stage=name.rsplit(" ", 1)[0] if " " in name else name, tier=name.rsplit(" ", 1)[-1],
                             note=f"skipped: {left:.0f} s left of the budget, about {estimate} s needed"))
            print(f"{name}: skipped (time)", flush=True)
            continue
        t0 = time.monotonic()
        try:
            row = thunk()
        except Exception as e:                      # record and go on: one failing stage must not hide the rest
            row = dict(stage=name, tier="-", note=f"FAILED: {type(e).__name__}: {' '.join(str(e).split())[:200]}")
            failed = True
        failed = failed or bool(row.pop("failed", False))
        rows.append(row)
        print(f"{name}: {time.monotonic() - t0:.1f} s; {row.get('img_s', '')} {row.get('note', '')}", flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()

    text = table(rows)
    print("\n" + text, flush=True)
    stamp = datetime.date.today().isoformat()
    head = (f"\n## GPU check ({stamp}, {card}{' - DRY RUN on the CPU, tiny sizes' if dry else ''}, "
            f"torch {torch.__version__})\n\n`bench/gpu_check.sh{' --dry-run' if a.dry_run else ''}`: the engine's "
            f"own step with its defaults (eager, then compiled), the SDPA kernel per tier, a real engine run, and "
            f"bench/backbones.py's bare model step; reference img/s from the papers' code (eager bf16, one H100). "
            f"Took {time.monotonic() - start:.0f} s.\n\n")
    with open(a.results, "a", encoding="utf-8") as fh:
        fh.write(head + text + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path.home() / ".cache" / "difftui-inductor"))
    sys.exit(main())
