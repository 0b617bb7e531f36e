"""The data check's speed (playbook 1.2: the quality table on K = 50,000 images must be quick enough to run before
every large training run): images per second on a folder of generated images, in this process and in a process pool,
and the time of a re-check of the unchanged folder (served from the cache).

The folder holds N generated images of random sizes (short side 200..600 px, aspect 0.75..1.33): 80% JPEG (quality
70..95), 20% PNG, smooth random content (bicubic upsampling of 8x8 noise), plus 1% corrupt files (truncated) and 1%
byte copies, so that every column of the table does real work.

    .venv/bin/python bench/data_check.py                    # N = 2,000; print the table
    .venv/bin/python bench/data_check.py --n 50000 --append # and append it to bench/RESULTS.md ("## Data")
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import io
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def generate(folder: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    previous = b""
    for i in range(n):
        short = int(rng.integers(200, 601))
        aspect = float(rng.uniform(0.75, 1.33))
        w, h = (short, int(short * aspect)) if rng.random() < 0.5 else (int(short * aspect), short)
        img = Image.fromarray((rng.random((8, 8, 3)) * 255).astype(np.uint8)).resize((w, h), Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        if rng.random() < 0.8:
            img.save(buf, "JPEG", quality=int(rng.integers(70, 96)))
            ext = "jpg"
        else:
            img.save(buf, "PNG")
            ext = "png"
        data = buf.getvalue()
        kind = rng.random()
        if kind < 0.01:
            data = data[: len(data) // 2]                            # corrupt: truncated
        elif kind < 0.02 and previous:
            data = previous                                          # a byte copy of the previous file
        previous = data
        (folder / f"{i // 1000:03d}").mkdir(exist_ok=True)
        (folder / f"{i // 1000:03d}" / f"{i:06d}.{ext}").write_bytes(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="images in the generated folder")
    parser.add_argument("--workers", type=int, nargs="*", default=None,
                        help="pool sizes to time (default: 0 = in process, and one per core)")
    parser.add_argument("--append", action="store_true", help="append the table to bench/RESULTS.md")
    args = parser.parse_args()

    from difftui.engine.config.catalog import Catalog
    from difftui.engine.data.pool import default_workers
    from difftui.engine.data.quality import check_dataset

    cores = default_workers()
    workers = args.workers if args.workers is not None else sorted({0, cores})
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DIFFTUI_DATA_CACHE"] = str(Path(tmp) / "cache")
        folder = Path(tmp) / "images"
        start = time.perf_counter()
        generate(folder, args.n)
        print(f"generated {args.n:,} images in {time.perf_counter() - start:.1f} s", flush=True)
        profile = dataclasses.replace(Catalog().get("datasets", "image-folder"), root=str(folder), heldout=0.0)
        rows = []
        for w in workers:
            start, cpu = time.perf_counter(), time.process_time()
            table = check_dataset(profile, workers=w, use_cache=False)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            rows.append((w, wall, args.n / wall, table, cpu * 1e3 / args.n if w == 0 else None))
            print(f"workers {w}: {wall:.1f} s, {args.n / wall:,.0f} images/s; corrupt {table['corrupt']['count']}, "
                  f"exact dup {table['exact_duplicates']['redundant']}", flush=True)
        start = time.perf_counter()
        cached = check_dataset(profile, workers=workers[-1])
        recheck = time.perf_counter() - start
        assert cached["from_cache"]

    header = ("| images | workers | wall (s) | images/s | CPU ms per image | corrupt found | exact copies found "
              "| re-check (cached) |\n|---:|---:|---:|---:|---:|---:|---:|---:|")
    lines = [f"| {args.n:,} | {w if w else 'in process'} | {wall:.1f} | {ips:,.0f} | "
             f"{f'{cpu:.2f}' if cpu is not None else '-'} | {t['corrupt']['count']} | "
             f"{t['exact_duplicates']['redundant']} | {recheck:.2f} s |" for w, wall, ips, t, cpu in rows]
    load = os.getloadavg()[0]
    table_md = "\n".join([header, *lines])
    print()
    print(table_md)
    if args.append:
        text = RESULTS.read_text() if RESULTS.exists() else ""
        block = [] if "## Data" in text else ["\n## Data\n"]
        block.append(f"\n### bench/data_check.py - {datetime.date.today().isoformat()}, {cores}-core CPU "
                     f"({platform.processor() or platform.machine()}), no GPU\n\n")
        block.append(f"The quality table (playbook 1.2) on {args.n:,} generated images (short side 200-600 px, 80% "
                     "JPEG q70-95, 20% PNG, 1% truncated, 1% byte copies): every file read, hashed, fully decoded, "
                     "pHashed. 'workers' is the process pool (spawned; each worker imports the engine once). The "
                     "re-check of the unchanged folder lists the files and reads the cached table. Images per second "
                     "scale with the cores; at 50,000 images divide by the rate for the wall time. 'CPU ms per "
                     "image' (in process) is the cost independent of the machine's load (1-minute load average "
                     f"{load:.1f} at the end of this run, on {cores} cores shared with other jobs).\n\n")
        block.append(table_md + "\n")
        with RESULTS.open("a") as f:
            f.write("".join(block))


if __name__ == "__main__":
    main()
