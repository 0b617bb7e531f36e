"""Sampler overhead: sampling wall time / (NFE x one model forward), per sampler, at batch 64 with the demo model.

The target is <= 1.05: a sampler should add next to nothing around the network. Two ratios are printed:
    ratio        wall / (NFE * t_fwd), t_fwd the median time of one forward during the run itself
    ratio_inner  wall / (time spent inside the network during the run)
Both divide by forwards timed over the same seconds as the run, so a busy machine (other processes on the 2 cores)
moves numerator and denominator together; the standalone median forward before the run is printed for reference.
The demo model is the `unet-demo` backbone on the built-in digits shape (1 x 8 x 8); the learned-variance / OCM
rows build the same network with 2 output channels. Weights are random (overhead does not depend on them).

    .venv/bin/python bench/samplers.py              # print the table
    .venv/bin/python bench/samplers.py --append     # and append it to bench/RESULTS.md ("## Diffusion core")
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from difftui.engine.config.catalog import Catalog
from difftui.engine.config.model import Recipe
from difftui.engine.diffusion import SamplerArgs
from difftui.engine.run.builders import build_model, build_objective

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


class Timed(nn.Module):
    """Wraps a network and accumulates the wall time spent in its forward."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.times: list[float] = []

    @property
    def seconds(self) -> float:
        return sum(self.times)

    def forward(self, *args, **kwargs):
        start = time.perf_counter()
        out = self.net(*args, **kwargs)
        self.times.append(time.perf_counter() - start)
        return out


def forward_time(net, objective, x: torch.Tensor, repeats: int) -> float:
    """Median seconds of one forward as the samplers call it (DDPM: integer t; EDM: the preconditioned net)."""
    times = []
    with torch.no_grad():
        for _ in range(repeats):
            t = torch.full((x.shape[0],), 500.0) if objective.kind == "ddpm" else torch.full((x.shape[0],), -0.3)
            start = time.perf_counter()
            net(x, t, None)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def cases():
    """(label, recipe kwargs, spec) - every sampler family of the diffusion core."""
    S = SamplerArgs
    fixed, learned, ocm, edm = {}, {"loss": "hybrid", "variance": "learned"}, {"variance": "ocm"}, {"loss": "edm"}
    return [
        ("DDIM eta=0 N=10", fixed, S(kind="ddim", steps=10)),
        ("DDIM eta=0 N=50", fixed, S(kind="ddim", steps=50)),
        ("DDIM eta=1 N=50 quadratic", fixed, S(kind="ddim", steps=50, eta=1.0, tau="quadratic")),
        ("DDPM fixed_small N=50", fixed, S(kind="ddpm", steps=50)),
        ("DDPM learned N=20", learned, S(kind="ddpm", steps=20, variance="learned")),
        ("few-step fixed_large N=10", fixed, S(kind="covariance", steps=10, variance="fixed_large")),
        ("few-step OCM N=10", ocm, S(kind="covariance", steps=10, variance="ocm")),
        ("OCM-DDIM N=10", ocm, S(kind="ddim", steps=10, variance="ocm")),
        ("EDM Euler N=18 (VP model)", fixed, S(kind="edm_euler", steps=18)),
        ("EDM Heun N=10 (VP model)", fixed, S(kind="edm_heun", steps=10)),
        ("EDM stochastic N=10 (VP model)", fixed, S(kind="edm_stochastic", steps=10, S_churn=30.0, S_tmin=0.01,
                                                   S_tmax=1.0, S_noise=1.007)),
        ("EDM Heun N=10 (EDM model)", edm, S(kind="edm_heun", steps=10)),
        ("EDM stochastic N=10 (EDM model)", edm, S(kind="edm_stochastic", steps=10, S_churn=30.0, S_tmin=0.01,
                                                   S_tmax=1.0, S_noise=1.007)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 is fastest on a busy CPU)")
    parser.add_argument("--repeats", type=int, default=5, help="standalone forwards for t_fwd")
    parser.add_argument("--append", action="store_true", help="append the table to bench/RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    tier = Catalog().get("backbones", "unet-demo")
    C, R = 1, tier.resolution
    nets: dict[int, nn.Module] = {}
    x_T = torch.randn(args.batch, C, R, R)
    rows = []
    for label, kw, spec in cases():
        objective = build_objective(Recipe(name="bench", description="bench", **kw))
        out_ch = objective.out_channels(C)
        if out_ch not in nets:
            nets[out_ch] = build_model(tier, in_channels=C, out_channels=out_ch, resolution=R).eval()
        net = Timed(nets[out_ch])
        forward_time(net, objective, x_T, 1)                                 # warm-up
        t_fwd = forward_time(net.net, objective, x_T, args.repeats)
        net.times = []
        start = time.perf_counter()
        _, nfe = objective.sample(net, x_T, spec, generator=torch.Generator().manual_seed(0))
        wall = time.perf_counter() - start
        assert len(net.times) == nfe, (label, len(net.times), nfe)
        t_run = statistics.median(net.times)
        rows.append((label, nfe, t_fwd * 1e3, t_run * 1e3, wall, wall / (nfe * t_run), wall / net.seconds))
        print(f"{label:34s} NFE {nfe:4d}  fwd {t_fwd * 1e3:7.1f} / {t_run * 1e3:7.1f} ms  wall {wall:7.2f} s  "
              f"ratio {rows[-1][5]:.3f}  ratio_inner {rows[-1][6]:.4f}", flush=True)

    header = ("| sampler | NFE | t_fwd before (ms) | t_fwd in run (ms) | wall (s) | wall / (NFE t_fwd) "
              "| wall / time in net |\n|---|---:|---:|---:|---:|---:|---:|")
    lines = [f"| {l} | {n} | {f:.1f} | {fr:.1f} | {w:.2f} | {r:.3f} | {ri:.4f} |" for l, n, f, fr, w, r, ri in rows]
    worst = max(max(r[5], r[6]) for r in rows)
    table = "\n".join([header, *lines])
    print()
    print(table)
    print(f"\nworst ratio: {worst:.4f} (target <= 1.05)")
    if args.append:
        text = RESULTS.read_text() if RESULTS.exists() else ""
        block = []
        if "## Diffusion core" not in text:
            block.append("\n## Diffusion core\n")
        block.append(f"\n### bench/samplers.py - {datetime.date.today().isoformat()}, "
                     f"2-core CPU, no GPU ({platform.processor() or platform.machine()}), torch "
                     f"{torch.__version__}, {args.threads} thread(s)\n")
        block.append(f"\nSampler overhead at batch {args.batch}, demo model `unet-demo` (1x{R}x{R}, random weights). "
                     "wall / (NFE t_fwd) uses the median forward timed during the run; the last column divides by "
                     "the total time spent in the network during the run. Both are robust to the other processes "
                     "sharing the 2 cores, which make standalone timings (column 3) drift by +-30%. "
                     f"Target <= 1.05; worst here {worst:.4f}.\n\n")
        block.append(table + "\n")
        with RESULTS.open("a") as f:
            f.write("".join(block))


if __name__ == "__main__":
    main()
