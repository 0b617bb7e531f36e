"""GPU telemetry against a fake `pynvml` module: devices found by UUID (so CUDA device 0 of a process started with
CUDA_VISIBLE_DEVICES=2 reports GPU 2), and a reading that fails is NaN with its reason, never a zero."""

import math
import sys
import types
from types import SimpleNamespace

import pytest

from difftui.engine.run.telemetry import GpuMonitor
from difftui.engine.store import Store


class NVMLError_NotSupported(Exception):
    pass


def fake_pynvml(devices: dict[str, dict], fail: dict[str, str] | None = None) -> types.ModuleType:
    """devices: uuid -> {"index", "name", "util", "used", "total", "temp", "mw"}; fail: uuid -> reading that raises."""
    fail = fail or {}
    nv = types.ModuleType("pynvml")
    nv.NVML_TEMPERATURE_GPU = 0
    nv.calls = []
    nv.nvmlInit = lambda: nv.calls.append("init")
    nv.nvmlShutdown = lambda: nv.calls.append("shutdown")

    def by_uuid(uuid):
        if isinstance(uuid, bytes):
            uuid = uuid.decode()
        if uuid not in devices:
            raise KeyError(uuid)
        return uuid

    def reading(name, value):
        def get(h, *args):
            if fail.get(h) == name:
                raise NVMLError_NotSupported()
            return value(devices[h])
        return get

    nv.nvmlDeviceGetHandleByUUID = by_uuid
    nv.nvmlDeviceGetHandleByIndex = lambda i: pytest.fail("NVML must not be asked by index")
    nv.nvmlDeviceGetIndex = lambda h: devices[h]["index"]
    nv.nvmlDeviceGetName = lambda h: devices[h]["name"].encode()
    nv.nvmlDeviceGetUtilizationRates = reading("util", lambda d: SimpleNamespace(gpu=d["util"]))
    nv.nvmlDeviceGetMemoryInfo = reading("memory", lambda d: SimpleNamespace(used=d["used"], total=d["total"]))
    nv.nvmlDeviceGetTemperature = reading("temperature", lambda d: d["temp"])
    nv.nvmlDeviceGetPowerUsage = reading("power", lambda d: d["mw"])
    return nv


DEVICES = {
    "GPU-aaaa": {"index": 0, "name": "NVIDIA H100 80GB HBM3", "util": 10, "used": 2**30, "total": 80 * 2**30,
                 "temp": 40, "mw": 100_000},
    "GPU-cccc": {"index": 2, "name": "NVIDIA H100 80GB HBM3", "util": 97, "used": 60 * 2**30, "total": 80 * 2**30,
                 "temp": 71, "mw": 650_500},
}


def test_the_run_s_gpus_are_found_by_uuid_and_failed_readings_are_nan_with_a_reason(monkeypatch, tmp_path):
    nv = fake_pynvml(DEVICES, fail={"GPU-cccc": "util"})
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    mon = GpuMonitor(["GPU-cccc"])                   # CUDA device 0 of a process that sees only physical GPU 2
    assert mon.available and mon.status == "GPU 2 NVIDIA H100 80GB HBM3"
    (row,) = mon.sample()
    t, index, util, used, total, temp, power, name, uuid, error = row
    assert index == 2 and uuid == "GPU-cccc" and name == "NVIDIA H100 80GB HBM3"
    assert math.isnan(util) and error == "util: NVMLError_NotSupported"
    assert (used, total, temp, power) == (60 * 1024, 80 * 1024, 71.0, 650.5)
    # Through runs.db: NaN stays NaN, the reason stays beside it.
    with Store(tmp_path / "runs.db") as store:
        run_id = store.create_run({"dataset": {"name": "d"}, "backbone": {"name": "b"}, "sampler": {"name": "s"},
                                   "recipe": {"name": "r"}}, name="x", total_steps=1)
        store.write_batch(run_id, gpu=[row])
        stored = store.gpu_since(run_id)[0]
    assert stored["idx"] == 2 and math.isnan(stored["util"]) and stored["power"] == 650.5
    assert stored["error"] == "util: NVMLError_NotSupported" and stored["uuid"] == "GPU-cccc"
    mon.close()
    assert nv.calls == ["init", "shutdown"]


def test_a_uuid_nvml_does_not_know_is_named_and_the_others_still_sampled(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(DEVICES))
    mon = GpuMonitor(["GPU-aaaa", "GPU-zzzz"])
    assert mon.status.startswith("GPU 0 NVIDIA H100 80GB HBM3 (not found: GPU-zzzz: KeyError")
    assert [r[1] for r in mon.sample()] == [0]


def test_without_a_driver_the_monitor_says_so_calmly(monkeypatch):
    nv = types.ModuleType("pynvml")

    class NVMLError_LibraryNotFound(Exception):
        pass

    def init():
        raise NVMLError_LibraryNotFound("NVML Shared Library Not Found")
    nv.nvmlInit = init
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    mon = GpuMonitor(["GPU-aaaa"])
    assert not mon.available and mon.sample() == []
    assert mon.status == "no NVIDIA GPU (NVMLError_LibraryNotFound: NVML Shared Library Not Found)"
