"""The GPU check of the engine, in one call of about 5 minutes (issues 7 and 19), on a machine with one NVIDIA GPU:

    1. engine step   img/s and MFU of the engine's own training step (Trainer.train_step: the objective, the
                     non-finite guard, fused Adam, EMA) with its defaults (bf16 autocast, TF32, channels_last for the
                     conv nets, data on the GPU) for the four reference tiers, eager, against the papers' code; one
                     more step of it profiled: which scaled_dot_product_attention kernel the engine really runs, with
                     the head size and the last stride of q (flash and memory-efficient need 1)
    2. engine run    a real run on CUDA (a spawned engine, runs.db) stopped, resumed and stopped again: the metrics go
                     on from the stop with no step logged twice, MFU arrives from the run, GPU rows and a grid too
    3. layout        the conv tiers (U-Net C=128, DDPM++) eager in NCHW (recipe.channels_last=false): CUDA's GroupNorm
                     is NCHW only, so channels_last costs transposes around each GroupNorm (issue 19 item 7); the
                     default follows whichever layout is faster here
    4. compiled      the engine step with recipe.compile=true: both layouts of the conv tiers first, then the DiTs
                     (compile time shown apart)

Stages run in that order of importance. A stage that the rest of the time budget (default 270 s) cannot hold is
skipped and says so; its estimate follows the measured time of the stages of its kind (`--parts compiled` runs only
the compiled part, for a second call). Each row is appended to the results file the moment it is measured, so a call
stopped at its time limit still brings back what finished; a package the engine needs and the machine lacks stops the
check before any stage, in one line (preflight). Run it through bench/gpu_check.sh on the device machine (it installs
the wheels of what the image lacks and makes difftui importable). `--dry-run` runs every stage on the CPU with tiny
sizes (tests/bench/test_gpu_check.py runs it in an environment with only the device image's packages and the wheels).

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
CONV = ("unet", "adm", "ddpmpp", "ncsnpp")


@dataclass(frozen=True)
class Case:
    tier: str
    recipe: str
    channels: int
    resolution: int
    batch: int
    classes: int
    ref: float | None                               # the papers' img/s (issue 7), None for the dry run's cases
    family: str
    overrides: tuple[str, ...] = ()


GPU_CASES = [
    Case("unet-c128", "p1-hybrid-cosine", 3, 64, 64, 0, 467.0, "unet"),
    Case("dit-b-2", "p1-hybrid-cosine", 4, 32, 256, 1000, 1435.0, "dit"),
    Case("dit-xl-2", "p1-hybrid-cosine", 4, 32, 128, 1000, 350.0, "dit"),
    Case("ddpmpp-cifar10", "p3-cifar10", 3, 32, 256, 0, 1218.0, "ddpmpp"),
]
DRY_CASES = [                                       # the same code paths, CPU-sized
    Case("unet-demo", "p1-hybrid-cosine", 1, 8, 8, 0, None, "unet", ("backbone.arch.model_channels=16",)),
    Case("dit-s-2", "p1-hybrid-cosine", 4, 8, 8, 10, None, "dit",
         ("backbone.arch.depth=2", "backbone.arch.hidden_size=48")),
]
SDPA_OPS = {"aten::_scaled_dot_product_flash_attention": "flash",
            "aten::_scaled_dot_product_efficient_attention": "memory-efficient",
            "aten::_scaled_dot_product_cudnn_attention": "cuDNN",
            "aten::_scaled_dot_product_flash_attention_for_cpu": "flash (CPU)",
            "aten::_scaled_dot_product_attention_math": "math (slow)"}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def layouts(case: Case) -> list[str]:
    return ["channels_last", "NCHW"] if case.family in CONV else ["-"]


#----------------------------------------------------------------------------
# 1, 3 and 4: the engine's own step.

def engine_config(case: Case, device: str, compile_: bool, layout: str):
    from difftui.engine.config.catalog import Catalog
    sets = [f"recipe.batch_size={case.batch}", f"dataset.resolution={case.resolution}",
            f"dataset.channels={case.channels}", f"recipe.compile={'true' if compile_ else 'false'}",
            f"recipe.channels_last={'false' if layout == 'NCHW' else 'true'}",
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


def attention_kernels(trainer, device: torch.device) -> str:
    """Profile one more engine step: the SDPA kernels it runs, the head sizes and q's last strides it passes."""
    import torch.nn.functional as F
    from torch.profiler import ProfilerActivity, profile
    heads, strides = set(), set()
    sdpa = F.scaled_dot_product_attention

    def recording(q, *args, **kwargs):              # q: [B, heads, N, d_head]
        heads.add(q.shape[-1])
        strides.add(q.stride(-1))
        return sdpa(q, *args, **kwargs)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    F.scaled_dot_product_attention = recording
    try:
        with profile(activities=activities) as prof:
            trainer.train_step()
            trainer.sync()
    finally:
        F.scaled_dot_product_attention = sdpa
    found = sorted({SDPA_OPS[e.key] for e in prof.key_averages() if e.key in SDPA_OPS})
    if not heads:
        return "no SDPA call"
    return (f"SDPA {', '.join(found) or '?'} (head dim {','.join(map(str, sorted(heads)))}, "
            f"q last stride {','.join(map(str, sorted(strides)))}, {trainer.precision})")


def bench_engine(case: Case, device: str, compile_: bool, layout: str, steps: int, warmup: int) -> dict:
    import difftui.engine.data as data_module
    from difftui.engine.config.tier_figures import run_figures
    from difftui.engine.run.loop import peak_tflops
    from difftui.engine.run.meter import throughput
    from difftui.engine.run.trainer import Trainer
    config = engine_config(case, device, compile_, layout)
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
            used = "channels_last" if trainer.channels_last else ("NCHW" if case.family in CONV else "-")
            notes = [trainer.describe_fast_path().removeprefix("fast path: ")]
            if not compile_:
                notes.append(attention_kernels(trainer, trainer.device))
            if not ok:
                notes.append("LAST STEP NOT FINITE")
            figures = run_figures(config, measure=False)            # the shipped tier figures (no measuring here)
            peak = peak_tflops(device_name(trainer.device), trainer.precision, config.recipe.tf32) \
                if trainer.device.type == "cuda" else None
            speed = throughput(case.batch, dt, 6 * figures.macs if figures else None, peak, 1)
            del trainer
    finally:
        data_module.build_dataset = real
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return dict(stage="engine compiled" if compile_ else "engine eager", tier=case.tier, layout=used,
                batch=case.batch, img_s=speed["img_per_s"], mfu=speed.get("mfu"), ms=dt * 1e3, first_s=first,
                mem=mem, x=speed["img_per_s"] / case.ref if case.ref else None, note="; ".join(notes),
                failed=not ok)


#----------------------------------------------------------------------------
# 2: a real engine run, stopped and resumed.

def engine_run(device: str, seconds: float, dry: bool) -> dict:
    from difftui.engine.config.catalog import Catalog
    from difftui.engine.launch import runs as launch
    from difftui.engine.run.checkpoint import list_checkpoints
    from difftui.engine.store import ACTIVE_STATUSES, Store
    log_every = 5 if dry else 50
    sets = [f"recipe.log_every={log_every}", "recipe.snapshot_every=1000000",
            f"recipe.grid_every={5 if dry else 1000}"]
    if dry:
        sets += ["recipe.batch_size=8", "backbone.arch.model_channels=16", "sampler.grid.steps=5"]
    problems: list[str] = []

    def run_then_stop(store: Store, run_id: int, after_step: int, wait: float) -> dict:
        """Let the run go `wait` seconds past `after_step`, then stop it and wait for its status."""
        t0 = time.monotonic()
        deadline = t0 + wait + 120
        run = store.get_run(run_id)
        while time.monotonic() < deadline and run["status"] in ACTIVE_STATUSES and \
                not (run["step"] > after_step and time.monotonic() - t0 > wait):
            time.sleep(0.5)
            run = store.get_run(run_id)
        if run["status"] in ACTIVE_STATUSES:
            launch.request_stop(db, run_id)
        while store.get_run(run_id)["status"] in ACTIVE_STATUSES and time.monotonic() < deadline:
            time.sleep(0.5)
        return store.get_run(run_id)

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "runs.db"
        config = Catalog().resolve(overrides=sets, max_steps=1_000_000, device=device)
        run_id = launch.new_run(db, config).run_id
        with Store(db) as store:
            first = run_then_stop(store, run_id, 0, seconds)
            stop_step = first["step"]
            ckpts = [s for s, _ in list_checkpoints(Path(first["run_dir"]) / "checkpoints")]
            if first["status"] != "stopped":
                problems.append(f"first stop: status {first['status']} ({first['error']})")
            elif ckpts[-1:] != [stop_step]:
                problems.append(f"stopped at step {stop_step} but the newest checkpoint is {ckpts[-1:]}")
            else:
                launch.resume(db, run_id)
                second = run_then_stop(store, run_id, stop_step, seconds / 2)
                if second["status"] != "stopped":
                    problems.append(f"after the resume: status {second['status']} ({second['error']})")
            run = store.get_run(run_id)
            steps = [s for s, _ in store.series(run_id, "L_simple")]
            dup = store.db.execute("SELECT COUNT(*) FROM (SELECT step, name FROM metrics WHERE run_id = ? "
                                   "GROUP BY step, name HAVING COUNT(*) > 1)", [run_id]).fetchone()[0]
            values = store.latest_values(run_id)
            names = set(store.metric_names(run_id))
            gpu = store.gpu_since(run_id)
            grids = store.samples_index(run_id)
            events = [e["message"] for e in store.events_since(run_id)]
        log = (Path(tmp) / "runs" / str(run_id) / "engine.log").read_text()[-2000:]
    if not problems:
        if f"resumed from step {stop_step} (ckpt-{stop_step:07d}.pt)" not in events:
            problems.append(f"no 'resumed from step {stop_step}' event")
        if dup:
            problems.append(f"{dup} (step, metric) pairs logged twice")
        if steps != list(range(log_every, run["step"] + 1, log_every)):
            problems.append(f"L_simple steps are not every {log_every} up to {run['step']} (seen {len(steps)})")
        if not any(s > stop_step for s in steps):
            problems.append("no metric after the resume")
    wanted = {"L_simple", "img_per_s", "grad_norm", "gflops_fwd", "tflops"} | ({"mfu"} if device == "cuda" else set())
    if not wanted <= names:
        problems.append(f"missing metrics {sorted(wanted - names)}")
    if device == "cuda":
        readable = [g for g in gpu if g["util"] == g["util"] and g["mem_used"] == g["mem_used"]]
        if not readable:
            problems.append(f"no readable GPU rows ({len(gpu)} rows; {gpu[-1]['error'] if gpu else 'none'})")
    if not grids:
        problems.append("no grid")
    note = (f"stopped at step {stop_step}, resumed, stopped at {run['step']}; "
            f"{values.get('img_per_s', float('nan')):.0f} img/s, {values.get('tflops', float('nan')):.3g} TFLOP/s, "
            f"{len(gpu)} GPU rows, {len(grids)} grid(s); "
            + ("; ".join(problems) if problems else "metrics continue after the resume, no step logged twice"))
    if problems:
        print("engine run events:", *events[-8:], "engine.log tail:", log, sep="\n", flush=True)
    return dict(stage="engine run", tier=config.backbone.name, layout="-", batch=config.recipe.batch_size,
                img_s=values.get("img_per_s"), mfu=values.get("mfu"), note=note, failed=bool(problems))


#----------------------------------------------------------------------------
# The table, written row by row.

COLUMNS = ("| stage | tier | layout | batch | img/s | x reference | MFU | ms/step | first step (s) | peak GiB | notes |\n"
           "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|")


def table_row(r: dict) -> str:
    f = lambda v, fmt: format(v, fmt) if isinstance(v, (int, float)) and v == v else "-"
    return (f"| {r['stage']} | {r['tier']} | {r.get('layout', '-')} | {r.get('batch', '-')} | "
            f"{f(r.get('img_s'), '.1f')} | {f(r.get('x'), '.2f')} | {f(r.get('mfu'), '.1%')} | "
            f"{f(r.get('ms'), '.1f')} | {f(r.get('first_s'), '.1f')} | {f(r.get('mem'), '.1f')} | "
            f"{r.get('note', '')} |")


def named_row(name: str, note: str, **extra) -> dict:
    """The row of a stage that measured nothing: 'engine eager unet-c128 NCHW' -> stage, tier, layout."""
    parts = name.split(" ")
    return dict(stage=" ".join(parts[:2]), tier=parts[2] if len(parts) > 2 else "-",
                layout=parts[3] if len(parts) > 3 else "-", note=note, **extra)


def append(path: str, text: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:   # opened and closed per row: a killed call keeps what finished
        fh.write(text + "\n")


def stage_plan(cases: list[Case], dev: str, steps: int, warmup: int, run_s: float, dry: bool) -> list[tuple]:
    """(part, name, estimated seconds, thunk) of every stage, in order of importance: the reference tiers eager in
    the engine's default layout, the engine run, the conv tiers eager in NCHW, then compiled (both layouts of the conv
    tiers first: the default layout follows this measurement, issue 19 item 7)."""
    plan = [("eager", f"engine eager {c.tier} {layouts(c)[0]}", 25,
             lambda c=c: bench_engine(c, dev, False, layouts(c)[0], steps, warmup)) for c in cases]
    plan.append(("run", "engine run", 1.5 * run_s + 45, lambda: engine_run(dev, run_s, dry)))
    plan += [("layout", f"engine eager {c.tier} NCHW", 25,
              lambda c=c: bench_engine(c, dev, False, "NCHW", steps, warmup)) for c in cases if c.family in CONV]
    compiled = [(c, layout) for c in cases if c.family in CONV for layout in layouts(c)]
    compiled += [(c, "-") for c in cases if c.family not in CONV]
    if dry:                                         # one compiled case exercises the path (graph capture only)
        compiled = compiled[-1:]
    plan += [("compiled", f"engine compiled {c.tier} {layout}", 75,
              lambda c=c, layout=layout: bench_engine(c, dev, True, layout, steps, max(warmup - 1, 1)))
             for c, layout in compiled]
    return plan


ENGINE_MODULES = ("difftui.engine.config.catalog", "difftui.engine.config.tier_figures", "difftui.engine.store",
                  "difftui.engine.launch.runs", "difftui.engine.run.loop", "difftui.engine.run.owner",
                  "difftui.engine.run.telemetry", "difftui.engine.data.card", "difftui.engine.eval.panel")


def preflight() -> str | None:
    """What the stages and the engine they spawn import, imported now: a package missing on this machine is one
    line before any stage runs, not a table of FAILED rows after the whole call (issue 19 item 2)."""
    import importlib
    for name in ENGINE_MODULES:
        try:
            importlib.import_module(name)
        except ImportError as e:
            return f"{name} does not import here: {type(e).__name__}: {e} (bench/fetch_device_wheels.sh, carry .whl)"
    return None


def run_plan(plan: list[tuple], budget: float, results: str, start: float, device: torch.device) -> bool:
    """Run the stages in order, each row appended to `results` as soon as it is measured; a stage whose estimate
    (the last measured time of its kind, else its own) exceeds what is left of `budget` is skipped with a note; a
    stage that raises is a FAILED row and the others go on. True when a stage failed."""
    measured: dict[str, float] = {}                 # kind -> seconds the last stage of that kind took
    failed = False
    for part, name, estimate, thunk in plan:
        kind = "eager" if part == "layout" else part
        estimate = measured.get(kind, estimate)
        left = budget - (time.monotonic() - start)
        if estimate > left:
            row = named_row(name, f"skipped: {left:.0f} s left of the budget, about {estimate:.0f} s needed")
            print(f"{name}: skipped (time)", flush=True)
        else:
            t0 = time.monotonic()
            try:
                row = thunk()
            except Exception as e:                  # record and go on: one failing stage must not hide the rest
                row = named_row(name, f"FAILED: {type(e).__name__}: {' '.join(str(e).split())[:200]}", failed=True)
            measured[kind] = time.monotonic() - t0
            print(f"{name}: {measured[kind]:.1f} s; {row.get('img_s', '')} {row.get('note', '')}", flush=True)
        failed = failed or bool(row.pop("failed", False))
        append(results, table_row(row))
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return failed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true", help="every stage on the CPU with tiny sizes")
    p.add_argument("--budget", type=float, default=0, help="seconds for the stages (default 270; dry run: no limit)")
    p.add_argument("--run-seconds", type=float, default=0, help="the engine run before its stop (default 20; dry 4)")
    p.add_argument("--results", default=str(ROOT / "RESULTS.md"), help="file the table is appended to")
    p.add_argument("--parts", default="eager,run,layout,compiled",
                   help="which parts to run (a second call after a clean first one: --parts compiled)")
    a = p.parse_args(argv)
    start = time.monotonic()
    dry = a.dry_run or not torch.cuda.is_available()
    if not a.dry_run and dry:
        print("no CUDA device here: running the dry run instead (--dry-run)", flush=True)
    budget = a.budget or (float("inf") if dry else 270.0)
    device = torch.device("cpu" if dry else "cuda")
    cases = DRY_CASES if dry else GPU_CASES
    steps, warmup = (3, 1) if dry else (10, 3)
    card = device_name(device)
    print(f"gpu_check on {card}; torch {torch.__version__}; budget {budget:.0f} s", flush=True)

    run_s = a.run_seconds or (4 if dry else 20)
    plan = stage_plan(cases, str(device), steps, warmup, run_s, dry)
    parts = a.parts.split(",")
    unknown = sorted(set(parts) - {"eager", "run", "layout", "compiled"})
    if unknown:
        p.error(f"--parts: unknown part(s) {', '.join(unknown)} (eager, run, layout, compiled)")
    plan = [stage for stage in plan if stage[0] in parts]

    stamp = datetime.date.today().isoformat()
    head = (f"\n## GPU check ({stamp}, {card}{' - DRY RUN on the CPU, tiny sizes' if dry else ''}, "
            f"torch {torch.__version__})\n\n`bench/gpu_check.sh{' --dry-run' if a.dry_run else ''}`: the engine's "
            f"own step with its defaults (eager; one step profiled for the SDPA kernel), a real engine run stopped "
            f"and resumed, the conv tiers in NCHW, then compiled; reference img/s from the papers' code (eager bf16, "
            f"one H100); MFU against the card's dense peak. Rows appear as they were measured.\n")
    append(a.results, head + "\n" + COLUMNS)
    missing = preflight()
    if missing is not None:
        append(a.results, table_row(dict(stage="preflight", tier="-", note=f"FAILED: {missing}")))
        print(f"gpu_check: {missing}", file=sys.stderr, flush=True)
        return 2
    failed = run_plan(plan, budget, a.results, start, device)
    append(a.results, f"\nTook {time.monotonic() - start:.0f} s{'; a stage FAILED' if failed else ''}.")
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path.home() / ".cache" / "difftui-inductor"))
    sys.exit(main())
