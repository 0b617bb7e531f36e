"""Which device a run trains on and how: "auto" picks CUDA when present and the CPU otherwise; the CUDA fast path
(TF32, cuDNN autotuning) and the mixed precision follow the recipe (their defaults are right on an H100).

The device rule itself (what a spec means here, why it cannot be used, its words) is engine/launch/devices.py, the
one the launch checks ask before a run exists; this module asks it with a probe built from torch, so the engine
refuses with the same words."""

from __future__ import annotations

import os

import torch

from difftui.engine.launch.devices import describe_device, device_error, device_index, probe_from_torch

__all__ = ["DeviceError", "resolve_device", "describe_torch_device", "set_cpu_threads", "configure_cuda", "set_tf32",
           "resolve_precision"]


class DeviceError(RuntimeError):
    """The requested device does not exist here (one line)."""


def resolve_device(spec: str, *, local_rank: int = 0, local_size: int = 1) -> torch.device:
    """"auto" | "cpu" | "cuda" | "cuda:K" -> torch.device; DeviceError (the launch rule's words) where it cannot be
    used here.

    Under torchrun with several processes per node, rank k of the node takes cuda:k (choose the GPUs with
    CUDA_VISIBLE_DEVICES, i.e. `--gpus`, not with cuda:K)."""
    probe = probe_from_torch(torch)
    problem = device_error(spec, probe, local_size=local_size)
    if problem is not None:
        raise DeviceError(problem)
    index = device_index(spec, probe, local_rank=local_rank, local_size=local_size)
    return torch.device("cpu") if index is None else torch.device("cuda", index)


def describe_torch_device(device: torch.device) -> str:
    """The launch rule's words for a device this process resolved: "cpu (no CUDA)" / "cpu" / "cuda:0 (NVIDIA H100
    80GB HBM3)"."""
    return describe_device(str(device), probe_from_torch(torch))


def set_cpu_threads(local_size: int = 1) -> int:
    """The cores this process may use (affinity aware) shared by the `local_size` processes of this node, or
    `DIFFTUI_CPU_THREADS` when set; returns the count. (The worker also sets OMP_WAIT_POLICY=PASSIVE, see
    difftui.engine.__main__.)"""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:                          # not on Linux
        cores = os.cpu_count() or 1
    wanted = os.environ.get("DIFFTUI_CPU_THREADS", "").strip()
    torch.set_num_threads(max(1, int(wanted) if wanted.isdigit() else cores // max(1, local_size)))
    return torch.get_num_threads()


def set_tf32(enabled: bool) -> None:
    """TF32 for fp32 matmuls (cuBLAS) and convolutions (cuDNN), through the one API every reader understands.

    torch has two: the flags (`torch.backends.cuda.matmul.allow_tf32`, `torch.backends.cudnn.allow_tf32`) and the
    per-backend precisions (`...fp32_precision`, "tf32" or "ieee"). After a write through the second, reading the
    first or `torch.get_float32_matmul_precision()` raises ("mix of the legacy and new APIs"; torch 2.14), and
    inductor's max-autotune paths and third-party code read them. A write through the flags keeps both readable
    (the precisions then read "tf32" / "ieee"), so every TF32 switch of difftui (the engine, bench/) goes here."""
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def configure_cuda(*, tf32: bool, cudnn_benchmark: bool) -> None:
    """TF32 for fp32 matmuls and convolutions (the fp32 parts of a bf16 run too) and cuDNN's autotuner, which picks
    the fastest convolution algorithm for the run's fixed shapes."""
    set_tf32(tf32)
    torch.backends.cudnn.benchmark = cudnn_benchmark


def resolve_precision(precision: str, device: torch.device) -> str:
    """"auto" -> bf16 autocast on a CUDA device that supports it, fp32 elsewhere (CPU autocast is slower than fp32
    on most CPUs); fp16 (with a gradient scaler) needs CUDA."""
    if precision == "auto":
        return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise DeviceError(f"recipe.precision '{precision}' needs a CUDA device (this run is on {device.type}); "
                          f"use auto or fp32")
    return precision
