"""Parameters and multiply-adds, measured rather than typed in (issue 4, item 5; playbook 1.7, 3.5).

Convention, stated once: `torch.utils.flop_counter` counts 2 FLOPs per multiply-add of a matmul, convolution or
attention product (and nothing for norms, activations or element-wise ops). difftui reports MACs =
flop_counter FLOPs / 2, one forward at batch 1. The papers' "GFLOPs" for DiT (P5 Table 8: 6.07 / 23.02 / 118.69) and
the P1 "39B FLOPs" for C=128 are multiply-adds in this sense, which is why they line up with our MACs.

Static models are measured on the meta device, so DiT-XL costs no memory and no time. DyDiT's dynamic count is
analytic per block (active heads, MLP channels and tokens; dydit.py) and checked against flop_counter on an
equivalent static slice in the tests. A tier's figures (a preset built on the meta device, beside the paper's
anchor) are the builders' (engine/run/builders.py `measure_macs`, `describe_tier`); this module measures networks.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

__all__ = ["count_params", "count_macs", "flop_counter", "probe_inputs", "forward_macs"]


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


def probe_inputs(in_channels: int, resolution: int, num_classes: int, device: torch.device | str = "cpu"):
    """(x, t, y) of one forward at batch 1: zeros, t = 500, class 0 when the net embeds classes."""
    x = torch.zeros(1, in_channels, resolution, resolution, device=device)
    t = torch.full((1,), 500.0, device=device)
    y = torch.zeros(1, dtype=torch.long, device=device) if num_classes > 0 else None
    return x, t, y


def forward_macs(net: nn.Module) -> int:
    """Multiply-adds of one forward of `net` at batch 1, at the input it was built for (its `in_channels`,
    `resolution` and `num_classes`), on the device its parameters live on (the meta device costs nothing).

    For DyDiT this is F_static, the complete model with every head, channel group and token active; the dynamic
    ratio is the model's own `flops_ratio()`. The label embedding costs no MACs (a lookup)."""
    device = next(net.parameters()).device
    was = net.training
    net.eval()
    x, t, y = probe_inputs(net.in_channels, net.resolution, net.num_classes, device)
    try:
        complete = getattr(net, "complete", None)
        if complete is not None:                                                # DyDiT: the static model
            with complete():
                return count_macs(net, x, t, y)
        return count_macs(net, x, t, y)
    finally:
        net.train(was)
