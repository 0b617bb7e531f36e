"""Parameters and multiply-adds, measured rather than typed in (issue 4, item 5; playbook 1.7, 3.5).

Convention, stated once: `torch.utils.flop_counter` counts 2 FLOPs per multiply-add of a matmul, convolution or
attention product (and nothing for norms, activations or element-wise ops). difftui reports MACs =
flop_counter FLOPs / 2, one forward at batch 1. The papers' "GFLOPs" for DiT (P5 Table 8: 6.07 / 23.02 / 118.69) and
the P1 "39B FLOPs" for C=128 are multiply-adds in this sense, which is why they line up with our MACs.

Static models are measured on the meta device, so DiT-XL costs no memory and no time. DyDiT's dynamic count is
analytic per block (active heads, MLP channels and tokens; dydit.py) and checked against flop_counter on an
equivalent static slice in the tests.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from difftui.engine.config.ladders import anchor_classes, anchor_io
from difftui.engine.config.model import BackboneTier

__all__ = ["count_params", "count_macs", "flop_counter", "measure_macs", "describe_tier", "anchor_io", "format_tier_table",
           "measure_net"]


def count_params(module: nn.Module) -> int:
    """Number of parameters (every nn.Parameter, trainable or not; buffers are not counted)."""
    return sum(p.numel() for p in module.parameters())


def _sdpa_cpu_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    # flop_counter knows the CUDA attention kernels and, on the meta device, sees SDPA decomposed into bmm; the CPU
    # flash kernel is not in its registry, so it is mapped to the same formula (2 * (QK^T + AV) FLOPs).
    return sdpa_flop_count(query_shape, key_shape, value_shape)


_CUSTOM = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_cpu_flops}


def flop_counter() -> FlopCounterMode:
    """A silent FlopCounterMode that also counts the CPU attention kernel."""
    return FlopCounterMode(display=False, custom_mapping=_CUSTOM)


def count_macs(module: nn.Module, *inputs: Any) -> int:
    """Multiply-adds of `module(*inputs)` = flop_counter FLOPs / 2 (no gradients are taken)."""
    counter = flop_counter()
    with torch.no_grad(), counter:
        module(*inputs)
    return counter.get_total_flops() // 2


def _probe(in_channels: int, resolution: int, num_classes: int, device: torch.device | str):
    x = torch.zeros(1, in_channels, resolution, resolution, device=device)
    t = torch.full((1,), 500.0, device=device)
    y = torch.zeros(1, dtype=torch.long, device=device) if num_classes > 0 else None
    return x, t, y


def measure_macs(tier: BackboneTier, *, in_channels: int, out_channels: int, resolution: int,
                 num_classes: int | None = None) -> int:
    """Multiply-adds per forward at batch 1 of the tier's (static / complete) network, built on the meta device.

    For DyDiT this is F_static, the complete model with every head, channel group and token active; the dynamic
    ratio is the model's own `flops_ratio()`. `num_classes` defaults to the anchor convention of the family
    (1000 for DiT/DyDiT/ADM, 0 otherwise); the label embedding costs no MACs either way (a lookup).
    """
    from . import build_model
    n_cls = anchor_classes(tier) if num_classes is None else num_classes
    with torch.device("meta"):
        net = build_model(tier, in_channels=in_channels, out_channels=out_channels, resolution=resolution,
                          num_classes=n_cls)
    net.eval()
    x, t, y = _probe(in_channels, resolution, n_cls, "meta")
    complete = getattr(net, "complete", None)
    if complete is not None:                                                    # DyDiT: the static model
        with complete():
            return count_macs(net, x, t, y)
    return count_macs(net, x, t, y)


def describe_tier(tier: BackboneTier, in_channels: int | None = None, out_channels: int | None = None) -> dict:
    """Measured parameters and GMACs beside the paper's anchor, the learning rate and the anchor resolution.

    Keys: name, family, status ('paper anchor' | 'off-tier' | 'not a paper anchor'), off_tier, resolution,
    in_channels, out_channels, num_classes, params, params_m, gmacs, anchor_paper, anchor_params_m, anchor_gmacs,
    params_err, gmacs_err (relative error vs the anchor, None without one), lr, lr_rule, note, arch (dict).
    Channels default to the anchor convention (`anchor_io`).
    """
    from difftui.engine.config.tier_figures import tier_row

    from . import build_model
    a_in, a_out = anchor_io(tier)
    in_ch = a_in if in_channels is None else in_channels
    out_ch = a_out if out_channels is None else out_channels
    n_cls = anchor_classes(tier)
    with torch.device("meta"):
        net = build_model(tier, in_channels=in_ch, out_channels=out_ch, resolution=tier.resolution,
                          num_classes=n_cls)
    params = count_params(net)
    macs = measure_macs(tier, in_channels=in_ch, out_channels=out_ch, resolution=tier.resolution,
                        num_classes=n_cls)
    return tier_row(tier, params=params, macs=macs, in_channels=in_ch, out_channels=out_ch, num_classes=n_cls)


def measure_net(key) -> tuple[int, int]:
    """(parameters, MACs) of the network a `difftui.engine.config.tier_figures.NetKey` names, built on the meta device."""
    from . import build_model
    tier = BackboneTier(name=key.family, description="measured network", family=key.family,
                        resolution=key.resolution, arch=key.to_json()["arch"])
    with torch.device("meta"):
        net = build_model(tier, in_channels=key.in_channels, out_channels=key.out_channels,
                          resolution=key.resolution, num_classes=key.num_classes)
    params = count_params(net)
    macs = measure_macs(tier, in_channels=key.in_channels, out_channels=key.out_channels, resolution=key.resolution,
                        num_classes=key.num_classes)
    return params, macs


def format_lr(lr: float | None) -> str:
    return "recipe" if lr is None or math.isnan(lr) else f"{lr:.2e}"


def format_tier_table(rows: list[dict]) -> str:
    """Plain-text table of `describe_tier` dicts, what `difftui presets backbones` prints:

    tier | status | params measured / paper | G MACs measured / paper | lr | anchored at
    """
    def paper(v: float | None, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    def delta(e: float | None) -> str:
        return "" if e is None else f" ({e * 100:+.1f}%)"

    header = ("tier", "status", "params M (paper)", "G MACs (paper)", "lr", "anchored at")
    lines = []
    for d in rows:
        lines.append((
            d["name"],
            d["status"],
            f"{d['params_m']:.1f} ({paper(d['anchor_params_m'], '.1f')}){delta(d['params_err'])}",
            f"{d['gmacs']:.2f} ({paper(d['anchor_gmacs'], '.2f')}){delta(d['gmacs_err'])}",
            format_lr(d["lr"]),
            f"{d['resolution']}x{d['resolution']}x{d['in_channels']}",
        ))
    widths = [max(len(str(r[i])) for r in [header, *lines]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*r) for r in lines]
    out = [line.rstrip() for line in out]
    return "\n".join(out)
