"""Loader throughput against the training step: can the data path feed the network? (issue 10: a large data set is
read from its memory-mapped cache by DataLoader workers, so start-up takes seconds and memory stays flat.)

A cache of N random 3 x R x R uint8 images is written directly (the same format the preprocessing builds), then:

    BatchStream        the in-memory stream reading the memory map in the training process
    loader, w workers  CachedBatchLoader with w DataLoader workers (pinned memory when CUDA is there)
    training step      one optimizer step (forward, L_simple, backward, Adam) of the `unet-demo` tier at R x R x 3,
                       the cheapest network here; a paper tier's step is slower, so the ratio only grows

(at a small batch: the CPU's memory) and prints images per second for each, the loader's margin over the step (loader img/s / step img/s: above 1 the
network waits for nothing), the start-up time of opening the cache, and the resident memory growth while reading
an epoch (memory stays flat: the pages are the page cache's, not the process's).

    .venv/bin/python bench/data_loader.py                          # N = 20,000 at 64 px, batch 128
    .venv/bin/python bench/data_loader.py --append                 # and append to bench/RESULTS.md ("## Data")
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def rss_mb() -> tuple[float, float]:
    """(anonymous, file-backed) resident MiB: the map's pages are file-backed page cache, reclaimable by the OS."""
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("RssAnon:", "RssFile:")):
                key, value = line.split(":")
                fields[key] = int(value.split()[0]) / 1024
    return fields.get("RssAnon", float("nan")), fields.get("RssFile", float("nan"))


def write_cache(folder: Path, n: int, res: int) -> Path:
    from difftui.engine.data.cache import CacheWriter
    target = folder / "bench-cache"
    rng = np.random.default_rng(0)
    with CacheWriter(target, n, (3, res, res)) as w:
        for start in range(0, n, 4096):
            k = min(4096, n - start)
            w.append(rng.integers(0, 256, size=(k, 3, res, res), dtype=np.uint8), rng.integers(0, 10, size=k))
        w.commit({"dataset": "bench"})
    return target


def rate(source, batches: int, batch: int) -> float:
    source.next()                                                   # start the workers
    start = time.perf_counter()
    for _ in range(batches):
        source.next()
    return batches * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--res", type=int, default=64)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--workers", type=int, nargs="*", default=[0, 2])
    parser.add_argument("--steps", type=int, default=2, help="training steps timed")
    parser.add_argument("--step-batch", type=int, default=8,
                        help="the training step's batch (the CPU's memory: unet-demo at 64 px needs ~0.2 GB/image)")
    parser.add_argument("--append", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("DIFFTUI_CPU_THREADS", "1")))

    from difftui.engine.config.catalog import Catalog
    from difftui.engine.data.loader import CachedBatchLoader
    from difftui.engine.data.mapped import open_cached
    from difftui.engine.data.stream import BatchStream
    from difftui.engine.run.builders import build_model, build_objective

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_cache(Path(tmp), args.n, args.res)
        start = time.perf_counter()
        data = open_cached(folder, name="bench", num_classes=10)
        open_s = time.perf_counter() - start
        rss0 = rss_mb()
        rows.append(("BatchStream (in process)", rate(BatchStream(data, args.batch, seed=0, x_flip=True),
                                                       args.batches, args.batch)))
        for w in args.workers:
            loader = CachedBatchLoader(data, args.batch, seed=0, x_flip=True, num_workers=w)
            rows.append((f"loader, {w} workers", rate(loader, args.batches, args.batch)))
            loader.close()
        rss1 = rss_mb()

        tier = Catalog().get("backbones", "unet-demo")
        recipe = Catalog().get("recipes", "p1-default")
        objective = build_objective(recipe)
        net = build_model(tier, in_channels=3, out_channels=3, resolution=args.res)
        opt = torch.optim.Adam(net.parameters(), lr=1e-4)
        stream = BatchStream(data, args.step_batch, seed=0)
        x, y = stream.next()
        times = []
        for _ in range(args.steps + 1):
            t0 = time.perf_counter()
            loss = objective(net, x, None)["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - t0)
        step_ips = args.step_batch / float(np.median(times[1:]))

    header = ("| source | img/s | vs the training step |\n|---|---:|---:|")
    lines = [f"| {name} | {ips:,.0f} | {ips / step_ips:,.1f}x |" for name, ips in rows]
    lines.append(f"| training step (unet-demo, {args.res}x{args.res}x3, batch {args.step_batch}, CPU) | {step_ips:,.1f} | 1x |")
    table = "\n".join([header, *lines])
    note = (f"N = {args.n:,} images of 3x{args.res}x{args.res} ({args.n * 3 * args.res ** 2 / 2 ** 20:,.0f} MiB); "
            f"opening the cache: {open_s * 1e3:.1f} ms; resident memory of the training process while reading "
            f"{(len(args.workers) + 1) * args.batches * args.batch:,} images: anonymous {rss0[0]:,.0f} -> "
            f"{rss1[0]:,.0f} MiB, file-backed (the map's pages, page cache) {rss0[1]:,.0f} -> {rss1[1]:,.0f} MiB.")
    print(table)
    print(note)
    if args.append:
        text = RESULTS.read_text() if RESULTS.exists() else ""
        block = [] if "## Data" in text else ["\n## Data\n"]
        block.append(f"\n### bench/data_loader.py - {datetime.date.today().isoformat()}, {os.cpu_count()}-core CPU "
                     f"({platform.processor() or platform.machine()}), no GPU, torch {torch.__version__}\n\n")
        block.append("Batches of the memory-mapped cache (uint8 -> [-1, 1], x-flips), read in the training process "
                     "(BatchStream) or by DataLoader workers (CachedBatchLoader), against one CPU training step of the "
                     "cheapest tier. " + note + "\n\n")
        block.append(table + "\n")
        with RESULTS.open("a") as f:
            f.write("".join(block))


if __name__ == "__main__":
    main()
