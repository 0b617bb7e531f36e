"""One device rule (issue 15 item 4): the engine's `resolve_device` refuses with the words of the launch checks
(engine/launch/devices.py) for the same spec on the same machine, and describes the device it took in the same words.
The machine is faked through torch.cuda (no GPU needed); the probe the launch checks would have had is built by hand."""

import pytest
import torch

from difftui.engine.config.catalog import Catalog
from difftui.engine.launch.checks import launch_checks
from difftui.engine.launch.devices import DeviceProbe, describe_device, device_error
from difftui.engine.run.device import DeviceError, describe_torch_device, resolve_device

H100 = "NVIDIA H100 80GB HBM3"


def fake_cuda(monkeypatch, names: tuple[str, ...]) -> DeviceProbe:
    """torch.cuda as on a machine with these GPUs; returns the probe the launch checks would see there."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: bool(names))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(names))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=None: names[0 if i is None else int(i)])
    return DeviceProbe(names, torch.__version__, "subprocess")


@pytest.mark.parametrize("names, spec, local_rank, local_size, expected", [
    ((), "auto", 0, 1, "cpu"),
    ((), "cpu", 0, 1, "cpu"),
    ((), "auto", 1, 2, "cpu"),                                      # DDP on the CPU (gloo)
    ((), "cuda", 0, 1, "device 'cuda' requested but CUDA is not available here (torch {v}); use --device cpu or auto"),
    ((), "cuda:1", 0, 1, "device 'cuda:1' requested but CUDA is not available here (torch {v}); use --device cpu or "
                         "auto"),
    ((), "tpu", 0, 1, "unknown device 'tpu' (expected auto, cpu, cuda or cuda:K)"),
    ((H100,), "auto", 0, 1, "cuda:0"),
    ((H100,), " CUDA ", 0, 1, "cuda:0"),
    ((H100,), "cpu", 0, 1, "cpu"),
    ((H100,), "cuda:1", 0, 1, "device 'cuda:1' requested but only 1 CUDA device(s) exist"),
    ((H100,), "cuda", 1, 2, "2 processes per node but only 1 CUDA device(s) are visible"),
    ((H100, H100), "auto", 1, 2, "cuda:1"),
    ((H100, H100), "cuda:1", 0, 1, "cuda:1"),
    ((H100, H100), "cuda:0", 1, 2, "device 'cuda:0' with 2 processes per node: choose the GPUs with --gpus (each "
                                   "process takes one of them)"),
    ((H100, "NVIDIA A100"), "gpu", 0, 1, "unknown device 'gpu' (expected auto, cpu, cuda or cuda:K)"),
])
def test_the_engine_and_the_launch_checks_say_the_same(monkeypatch, names, spec, local_rank, local_size, expected):
    probe = fake_cuda(monkeypatch, names)
    expected = expected.format(v=torch.__version__)
    rule = device_error(spec, probe, local_size=local_size)
    if expected.startswith(("cpu", "cuda:")):
        assert rule is None
        device = resolve_device(spec, local_rank=local_rank, local_size=local_size)
        assert device == torch.device(expected)
        words = describe_device(spec, probe, local_rank=local_rank, local_size=local_size)
        assert describe_torch_device(device) == words
        assert words == (f"{expected} ({names[device.index]})" if device.type == "cuda"
                         else "cpu" if names else "cpu (no CUDA)")
    else:
        assert rule == expected
        with pytest.raises(DeviceError) as refused:
            resolve_device(spec, local_rank=local_rank, local_size=local_size)
        assert str(refused.value) == expected


@pytest.mark.parametrize("names, spec", [((), "cuda"), ((H100,), "cuda:3"), ((H100,), "auto")])
def test_a_launch_check_refusal_is_the_engines_refusal_to_the_letter(monkeypatch, names, spec):
    probe = fake_cuda(monkeypatch, names)
    config = Catalog().resolve(device=spec, max_steps=10)
    report = launch_checks(config, probe=probe, check_data=None)
    try:
        device = resolve_device(spec)
    except DeviceError as e:
        assert list(report.errors) == [str(e)]
    else:
        assert report.ok and report.device == describe_torch_device(device) == f"cuda:0 ({H100})"


@pytest.mark.parametrize("spec, count, expected", [
    ("cuda:1", 2, ("1",)), ("auto", 2, ("0", "1")), ("auto", 0, ("cpu",)), ("cuda", 1, ("0",)),
    ("cuda:2", 2, "device 'cuda:2' requested but only 2 CUDA device(s) exist"),
    ("cuda", 0, "device 'cuda' requested but CUDA is not available here; use --device cpu or auto"),
    ("tpu", 1, "unknown device 'tpu' (expected auto, cpu, cuda or cuda:K)"),
])
def test_a_sweeps_slots_refuse_a_device_with_the_rules_words(spec, count, expected):
    from difftui.engine.sweeps import SweepError
    from difftui.engine.sweeps.slots import Slots
    if isinstance(expected, tuple):
        assert Slots.choose(device=spec, gpu_count=count).devices == expected
        return
    with pytest.raises(SweepError) as refused:
        Slots.choose(device=spec, gpu_count=count)
    assert str(refused.value) == device_error(spec, DeviceProbe(("",) * count, "", "given")) == expected
