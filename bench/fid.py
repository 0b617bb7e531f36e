"""The FID pipeline's throughput (playbook 5.5): generated images per second through the evaluator's own code path
(engine/eval/metrics/generate.py: seeded noise, the fixed sampler, uint8 RGB, the feature network, in batches on the
device), and where the time goes:

    sampler s      the sampler's wall time (synchronised on CUDA)
    NFE x fwd      the sampler's NFE times one forward of the network at the same batch (median, timed alone)
    overhead       sampler s / (batches x NFE x fwd): what the sampler adds around the network (1.00 = nothing)
    feature s      the feature network (Inception-v3 at 299 x 299, or the reference weights if found)
    img/s          images / wall, and the hours 50,000 images would take at that rate (playbook 5.5's count)

Weights are random (speed does not depend on them); the Inception network is torch-fidelity's architecture with
the real weights when `--inception`/$DIFFTUI_INCEPTION/the cache has them, random ones otherwise.

    .venv/bin/python bench/fid.py --device cpu                          # the CPU table (small counts)
    .venv/bin/python bench/fid.py --device cuda --images 2048 --append  # on a GPU, appended to bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

import torch

from difftui.engine.config.catalog import Catalog
from difftui.engine.diffusion import SamplerArgs
from difftui.engine.eval.metrics.generate import generated_features, sync
from difftui.engine.run.builders import build_model, build_objective
from difftui.engine.run.device import configure_cuda

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"

# (backbone tier, data shape, recipe) of the anchors the playbook evaluates, plus the CPU demo.
CASES = {
    "unet-demo": ("unet-demo", (1, 8, 8), {}),
    "ddpmpp-cifar10": ("ddpmpp-cifar10", (3, 32, 32), {"loss": "edm"}),
    "unet-cifar10": ("unet-cifar10", (3, 32, 32), {}),
}


def feature_network(device: torch.device, inception: str | None):
    """Inception-v3 (torch-fidelity) with the real weights when found, else the same architecture, random. A path
    given that does not exist, or a weights file that does not load, stops the bench with its one line."""
    from difftui.engine.eval.metrics.inception import load_inception
    from difftui.engine.eval.metrics.weights import locate_inception
    if locate_inception(inception) is not None:
        return load_inception(inception, device), "Inception-v3 (reference weights)"
    from torch_fidelity import feature_extractor_inceptionv3 as fe
    with mock.patch.object(fe, "load_state_dict_from_url", lambda *a, **k: {}), \
            mock.patch.object(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, s: None):
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    return net.eval().to(device), "Inception-v3 (random weights)"


def forward_seconds(net, objective, shape, batch: int, device: torch.device, repeats: int = 5) -> float:
    x = torch.randn((batch, *shape), device=device)
    t = torch.full((batch,), 500.0 if objective.kind == "ddpm" else -0.3, device=device)
    times = []
    with torch.no_grad():
        net(x, t, None)                                         # warm-up
        for _ in range(repeats):
            sync(device)
            start = time.perf_counter()
            net(x, t, None)
            sync(device)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_case(name: str, spec: SamplerArgs, images: int, batch: int, device: torch.device, feature_net) -> dict:
    tier_name, shape, recipe_over = CASES[name]
    catalog = Catalog()
    tier = catalog.get("backbones", tier_name)
    recipe = catalog.get("recipes", "p1-default")
    import dataclasses
    recipe = dataclasses.replace(recipe, **recipe_over)
    objective = build_objective(recipe)
    net = build_model(tier, in_channels=shape[0], out_channels=objective.out_channels(shape[0]),
                      resolution=shape[-1]).to(device).eval().requires_grad_(False)
    if objective.kind == "edm":
        spec = SamplerArgs(kind="edm_heun", steps=18)           # P3's CIFAR-10 protocol, NFE 35 (playbook 5.6)
    fwd = forward_seconds(net, objective, shape, batch, device)
    generated_features(objective, net, spec, 2, shape=shape, feature_net=feature_net, device=device, batch=batch,
                       seed=1)                                  # warm-up (cudnn, allocator), two images
    _, timing = generated_features(objective, net, spec, images, shape=shape, feature_net=feature_net,
                                   device=device, batch=batch, seed=0)
    batches = -(-images // batch)
    ideal = batches * timing.nfe * fwd
    return {"case": name, "sampler": spec.describe(), "nfe": timing.nfe, "batch": batch, "images": images,
            "fwd_ms": fwd * 1000, "sampler_s": timing.sampler_s, "ideal_s": ideal,
            "overhead": timing.sampler_s / ideal, "feature_s": timing.feature_s, "wall_s": timing.wall_s,
            "img_s": timing.images_per_s, "h_50k": 50_000 / timing.images_per_s / 3600}


def table(rows: list[dict], device: str, features: str) -> str:
    head = ("| case | sampler | NFE | batch | images | fwd ms | NFE x fwd s | sampler s | overhead | feature s | "
            "wall s | img/s | 50k images |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    lines = [head]
    for r in rows:
        lines.append(f"| {r['case']} | {r['sampler']} | {r['nfe']} | {r['batch']} | {r['images']} | {r['fwd_ms']:.1f} | "
                     f"{r['ideal_s']:.2f} | {r['sampler_s']:.2f} | {r['overhead']:.2f} | {r['feature_s']:.2f} | "
                     f"{r['wall_s']:.2f} | {r['img_s']:.3g} | {r['h_50k']:.3g} h |")
    return "\n".join(lines) + f"\n\nFeatures: {features}; device {device}."


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--images", type=int, default=None, help="images per case (default: 256 on CPU, 4096 on CUDA)")
    ap.add_argument("--batch", type=int, default=None, help="batch (default: 64 on CPU, 256 on CUDA)")
    ap.add_argument("--cases", nargs="*", default=None, help=f"of {', '.join(CASES)}")
    ap.add_argument("--inception", default=None)
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    ap.add_argument("--append", action="store_true", help="append the table to bench/RESULTS.md")
    args = ap.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if args.threads:
        torch.set_num_threads(args.threads)
    if cuda:
        configure_cuda(tf32=True, cudnn_benchmark=True)         # the engine's own settings (engine/run/device.py)
    images = args.images or (4096 if cuda else 256)
    batch = args.batch or (256 if cuda else 64)
    cases = args.cases or (list(CASES) if cuda else ["unet-demo", "ddpmpp-cifar10"])
    from difftui.engine.eval.metrics.weights import InceptionWeightsMissing
    try:
        feature_net, features = feature_network(device, args.inception)
    except InceptionWeightsMissing as e:
        sys.exit(f"bench/fid.py: {e}")
    spec = SamplerArgs(kind="ddim", steps=50)                   # playbook 5.0 / 5.6: DDIM eta = 0, N = 50
    rows = []
    for name in cases:
        rows.append(run_case(name, spec, images, batch, device, feature_net))
        print(f"{name}: {rows[-1]['img_s']:.3g} img/s", flush=True)
    card = torch.cuda.get_device_name(device) if cuda else f"{platform.processor() or platform.machine()} CPU, " \
        f"{torch.get_num_threads()} threads"
    out = table(rows, f"{device} ({card})", features)
    print(out)
    if args.append:
        stamp = datetime.date.today().isoformat()
        with open(RESULTS, "a") as f:
            f.write(f"\n### FID pipeline throughput ({stamp}, {card}; bench/fid.py)\n\n{out}\n")


if __name__ == "__main__":
    main()
