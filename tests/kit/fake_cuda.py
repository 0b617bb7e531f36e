"""The engine's CUDA path on a machine without a GPU: fake CUDA tensors and a probe of host syncs (issue 19, item 6).

    with fake_cuda(run_dir) as fake:            # torch.cuda answers as one 80 GiB card; tensors on "cuda" are fake
        trainer = Trainer(config, run_dir); trainer.setup()
        with SyncProbe() as probe:
            trainer.train_step()
        probe.findings                          # ["host sync (.item() / bool() / int()) at engine/run/ema.py:54 ..."]

Fake tensors (torch._subclasses.fake_tensor.FakeTensorMode) carry shapes, dtypes, strides and devices but no values,
so every op runs its real dispatch (autocast, fused Adam, channels_last, foreach kernels) without a GPU. The probe is a
TorchDispatchMode above them that flags, by the engine's source line:

- host syncs: `aten._local_scalar_dense` on a device tensor (`.item()`, `bool()`, `int()`, `if tensor:`), any op whose
  output shape depends on device values (`nonzero`, masked indexing, `unique`: fake tensors refuse them for that very
  reason), and device-to-host copies (`.cpu()`, `.tolist()`, `.numpy()`);
- blocking host-to-device copies: `.to(device)` / `copy_` of a host tensor without `non_blocking=True` from pinned
  memory (the CUDA caching host allocator makes such a copy asynchronous);
- CPU/GPU mixes: an op taking both a device tensor and a host tensor of one or more dimensions (CUDA copies the host
  tensor, blocking; a 0-dim host tensor is read as a scalar and is fine).

What stands in for what a driver would provide (and why):
- torch.cuda's queries (is_available, device_count, properties, bf16 support, synchronize) answer as one H100-sized
  card; `pin_memory()` is modelled (fake tensors have no pinned memory): the probe remembers which host tensors were
  pinned, which is all the copy rule needs.
- A CUDA `torch.Generator` cannot be made without a driver: the augmenter's generator is a CPU generator here (fake
  kernels read no generator, so the ops and their devices are the same).
- The network is built on the CPU as the engine builds it, then moved to the fake device by the engine's own `.to()`.
- The backward pass cannot run: the autograd engine starts a CUDA worker thread, which needs a driver ("hasPrimaryContext
  expects a valid device index"). `Tensor.backward` leaves, for every leaf the loss depends on (found by walking its
  autograd graph), a fake gradient of the leaf's shape, dtype and device, which is what backward would leave. The
  probe therefore sees everything around the network (data, timesteps, noise, the objective, the forward under
  autocast, the gradient norm, clipping, the fused optimizer, the EMA, the meter), not the derivative kernels of the
  forward's own ops, which contain no host sync.
"""

from __future__ import annotations

import contextlib
import traceback
import types
from pathlib import Path
from unittest import mock

import torch
import torch._dynamo  # noqa: F401  (imported before the patches: dynamo checks torch.Tensor's signatures at import)
from torch._subclasses.fake_tensor import (
    DataDependentOutputException,
    DynamicOutputShapeException,
    FakeTensorMode,
    unset_fake_temporarily,
)
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.weak import WeakTensorKeyDictionary

import difftui.engine

ENGINE = Path(difftui.engine.__file__).resolve().parent
aten = torch.ops.aten
CARD = types.SimpleNamespace(name="Fake H100", total_memory=80 * 2**30, major=9, minor=0, multi_processor_count=132)


class _FakeCudaMode(FakeTensorMode):
    # With torch.cuda.is_available() patched to True, FakeTensorMode would run small constant tensors' device
    # conversions for real (and fail: there is no driver); keep them fake.
    avoid_device_init = True


def engine_line() -> str:
    """The innermost engine source line on the stack: 'engine/run/ema.py:54 update: torch._foreach_lerp_(...)'."""
    for frame in reversed(traceback.extract_stack()):
        path = Path(frame.filename).resolve()
        if path.is_relative_to(ENGINE):
            return f"engine/{path.relative_to(ENGINE)}:{frame.lineno} {frame.name}: {(frame.line or '').strip()}"
    return "outside the engine: " + " <- ".join(f"{Path(f.filename).name}:{f.lineno}"
                                                for f in traceback.extract_stack()[-8:-3])


def _device(t: torch.Tensor) -> str:
    return t.device.type


class SyncProbe(TorchDispatchMode):
    """Records host syncs, blocking host-to-device copies and CPU/GPU mixes (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.findings: list[str] = []
        self.pinned = WeakTensorKeyDictionary()        # host tensors made by pin_memory() -> True

    def flag(self, what: str, func) -> None:
        self.findings.append(f"{what} ({func}) at {engine_line()}")

    def __torch_dispatch__(self, func, types_, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = [a for a in tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)]
        on_device = [t for t in tensors if _device(t) == "cuda"]

        if func is aten._pin_memory.default:                # modelled: fake tensors have no pinned memory
            out = args[0].clone()
            self.pinned[out] = True
            return out
        if func is aten.is_pinned.default:
            return args[0] in self.pinned
        if func is aten._local_scalar_dense.default:
            if on_device:
                self.flag("host sync: a device value read on the host (.item() / bool() / int())", func)
            t = args[0]                                 # fake tensors have no value: go on with a plausible one
            return True if t.dtype == torch.bool else (0.5 if t.is_floating_point() else 1)

        if func in (aten._to_copy.default, aten.copy_.default):
            src = args[1] if func is aten.copy_.default else args[0]
            dst = _device(args[0]) if func is aten.copy_.default else (kwargs.get("device") or src.device).type
            non_blocking = (args[2] if len(args) > 2 else kwargs.get("non_blocking", False)) \
                if func is aten.copy_.default else kwargs.get("non_blocking", False)
            if _device(src) == "cuda" and dst == "cpu":
                self.flag("host sync: a device-to-host copy", func)
            elif _device(src) == "cpu" and dst == "cuda" and src.dim() > 0 and \
                    not (non_blocking and src in self.pinned):
                self.flag("blocking host-to-device copy (not non_blocking from pinned memory)", func)
        elif on_device and any(_device(t) == "cpu" and t.dim() > 0 for t in tensors):
            self.flag("CPU/GPU mix: a host tensor in a device op (copied, blocking)", func)

        if func is aten.nonzero.default:                    # go on with the largest possible answer
            if on_device:
                self.flag("host sync: the output's shape depends on device values", func)
            return torch.zeros((args[0].numel(), args[0].dim()), dtype=torch.long, device=args[0].device)
        try:
            return func(*args, **kwargs)
        except (DataDependentOutputException, DynamicOutputShapeException):
            self.flag("host sync: the output's shape depends on device values", func)
            raise


def _leaves(root: torch.Tensor) -> list[torch.Tensor]:
    """The leaf tensors `root` depends on through autograd (what backward would give a .grad)."""
    found, seen, stack = [], set(), [root.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if hasattr(node, "variable"):                   # AccumulateGrad
            found.append(node.variable)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return found


def _fake_backward(self: torch.Tensor, *args, **kwargs) -> None:
    for leaf in _leaves(self):
        if leaf.grad is None:
            leaf.grad = torch.zeros_like(leaf)


@contextlib.contextmanager
def fake_cuda():
    """torch.cuda answers as one card and tensors made on 'cuda' are fake; yields the FakeTensorMode."""
    import difftui.engine.run.trainer as trainer
    from difftui.engine.data.augment import Augmenter

    fake = _FakeCudaMode(allow_non_fake_inputs=True)
    real_swap, real_build, real_augmenter = torch.utils.swap_tensors, trainer.build_model, Augmenter.__init__

    def swap_tensors(a, b):
        # Module.to() swaps parameters that are fake tensors; the converter's memo of them would hold a weak
        # reference that makes the swap refuse. Forgetting the memo only means a later conversion makes a new fake.
        fake.fake_tensor_converter.meta_converter.tensor_memo.clear()
        return real_swap(a, b)

    def build_model(*args, **kwargs):                   # built on the CPU, for real, as the engine does
        with unset_fake_temporarily():
            return real_build(*args, **kwargs)

    def augmenter_init(self, p, *, seed=0, device="cpu", spec=None):
        kw = {} if spec is None else {"spec": spec}
        real_augmenter(self, p, seed=seed, device="cpu", **kw)

    patches = [
        mock.patch("torch.cuda.is_available", lambda: True),
        mock.patch("torch.cuda.device_count", lambda: 1),
        mock.patch("torch.cuda.current_device", lambda: 0),
        mock.patch("torch.cuda.set_device", lambda device: None),
        mock.patch("torch.cuda.synchronize", lambda device=None: None),
        mock.patch("torch.cuda.get_device_name", lambda device=None: CARD.name),
        mock.patch("torch.cuda.get_device_properties", lambda device=None: CARD),
        mock.patch("torch.cuda.is_bf16_supported", lambda *a, **k: True),
        mock.patch("torch.utils.swap_tensors", swap_tensors),
        mock.patch.object(trainer, "build_model", build_model),    # the name the trainer calls
        mock.patch.object(Augmenter, "__init__", augmenter_init),
        mock.patch.object(torch.Tensor, "backward", _fake_backward),
    ]
    with contextlib.ExitStack() as stack:
        for p in patches:
            stack.enter_context(p)
        stack.enter_context(fake)
        yield fake
