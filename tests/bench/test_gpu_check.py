"""The GPU check's dry run (bench/gpu_check.sh --dry-run) where only the device image's packages exist (issue 19,
item 2): the one call the next GPU session makes must not find, on the device, that the engine imports a package
the image lacks (it did: pydantic and its three helpers; every stage would have FAILED and the whole call been spent).

The environment: a venv of this machine's Python (no system site-packages, no pip of its own) whose one .pth shows
it a folder of links to the distributions of the project's environment that the image has by name
(bench/device_image_packages.txt; this machine's versions of them: torch 2.14.1 here, 2.11 there). The wheels are
bench/fetch_device_wheels.sh's set for this Python, installed by gpu_check.sh exactly as on the device."""

import importlib.metadata
import os
import re
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
IMAGE = ROOT / "bench" / "device_image_packages.txt"


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture(scope="session")
def device_image(tmp_path_factory):
    """(python, wheels): a Python with only the image's packages, and the wheels gpu_check.sh carries."""
    root = tmp_path_factory.mktemp("device-image")
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True, timeout=120)
    python = root / "venv" / "bin" / "python"
    site = Path(sysconfig.get_paths()["purelib"])                   # the project's environment
    allowed = {normalized(line) for line in IMAGE.read_text().splitlines() if line and not line.startswith("#")}
    view = root / "image-site"
    view.mkdir()
    for dist in importlib.metadata.distributions(path=[str(site)]):
        if normalized(dist.metadata["Name"]) not in allowed:
            continue
        for top in {f.parts[0] for f in dist.files or []} - {"..", "__pycache__"}:
            if (site / top).exists() and not (view / top).exists():
                (view / top).symlink_to(site / top)
    venv_site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip()
    Path(venv_site, "device-image.pth").write_text(f"{view}\n")
    wheels = root / "wheels"
    env = {**os.environ, "WHEEL_DIR": str(wheels), "PIP_PYTHON": sys.executable,
           "WHEEL_PYTHON": f"{sys.version_info.major}.{sys.version_info.minor}"}
    fetched = subprocess.run(["bash", str(ROOT / "bench" / "fetch_device_wheels.sh")], env=env, capture_output=True,
                             text=True, timeout=300)
    assert fetched.returncode == 0, fetched.stderr[-2000:]
    return python, wheels


def gpu_check(tmp_path, python, wheels):
    out = tmp_path / "out"
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHON": str(python), "WHEELS": str(wheels), "OUT": str(out), "HOME": str(tmp_path),
           "RESULTS_MD": str(tmp_path / "RESULTS.md"), "DIFFTUI_CPU_THREADS": "1"}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh"), "--dry-run"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    return proc, out / "RESULTS-gpu.md"


@pytest.mark.slow
@pytest.mark.usefixtures("engine_hygiene")
def test_the_gpu_check_dry_run_passes_with_only_the_device_images_packages_and_the_wheels(tmp_path, device_image):
    python, wheels = device_image
    # The environment really lacks what the wheels carry, and has what the image has.
    lacks = subprocess.run([str(python), "-c", "import pydantic"], capture_output=True, text=True)
    assert lacks.returncode != 0 and "No module named 'pydantic'" in lacks.stderr
    has = subprocess.run([str(python), "-c", "import torch, numpy, PIL, yaml, sklearn, pynvml, typer"],
                         capture_output=True, text=True)
    assert has.returncode == 0, has.stderr[-2000:]

    # Without the wheels: one line before any stage, not a table of FAILED rows.
    proc, results = gpu_check(tmp_path / "bare", python, tmp_path / "no-wheels")
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert re.fullmatch(r"gpu_check: difftui\.engine\.\S+ does not import here: ModuleNotFoundError: No module named "
                        r"'(pydantic|pydantic_core|annotated_types|typing_inspection|sqlite_utils)' \(bench/"
                        r"fetch_device_wheels\.sh, carry \.whl\)\n", proc.stderr), proc.stderr[-2000:]
    assert "| preflight |" in results.read_text() and "| engine" not in results.read_text()

    # With them: every stage, as the device call runs it.
    proc, results = gpu_check(tmp_path, python, wheels)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = results.read_text()
    assert (tmp_path / "RESULTS.md").read_text() == text                 # appended where RESULTS_MD says
    assert "## GPU check (" in text and "DRY RUN on the CPU" in text and text.rstrip().endswith("s.")
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| stage")]
    assert [tuple(c.strip() for c in line.split("|")[1:4]) for line in rows] == [
        ("engine eager", "unet-demo", "NCHW"), ("engine eager", "dit-s-2", "-"),       # the CPU has no channels_last
        ("engine run", "unet-demo", "-"), ("engine eager", "unet-demo", "NCHW"),
        ("engine compiled", "dit-s-2", "-")]
    assert not any("FAILED" in line or "skipped" in line for line in rows), text
    run = next(line for line in rows if line.startswith("| engine run"))
    assert "resumed, stopped at" in run and "metrics continue after the resume, no step logged twice" in run
    assert "torch.compile (eager)" in next(line for line in rows if line.startswith("| engine compiled"))
    eager = [line for line in rows if line.startswith("| engine eager")]
    assert all("SDPA flash (CPU) (head dim 8, q last stride 1, fp32)" in line for line in eager), eager


def gpu_check_module():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import gpu_check as module
    finally:
        sys.path.remove(str(ROOT / "bench"))
    return module


def test_the_gpu_plan_times_the_conv_tiers_in_both_layouts_eager_and_compiled_after_the_run():
    """Item 7: CUDA's GroupNorm is NCHW only, so channels_last may not pay for the conv tiers; the one call times
    both layouts, eager and compiled, so that the default can follow the measurement."""
    g = gpu_check_module()
    plan = g.stage_plan(g.GPU_CASES, "cuda", 10, 3, 20, dry=False)
    assert [name for _, name, _, _ in plan] == [
        "engine eager unet-c128 channels_last", "engine eager dit-b-2 -", "engine eager dit-xl-2 -",
        "engine eager ddpmpp-cifar10 channels_last", "engine run", "engine eager unet-c128 NCHW",
        "engine eager ddpmpp-cifar10 NCHW", "engine compiled unet-c128 channels_last", "engine compiled unet-c128 NCHW",
        "engine compiled ddpmpp-cifar10 channels_last", "engine compiled ddpmpp-cifar10 NCHW",
        "engine compiled dit-b-2 -", "engine compiled dit-xl-2 -"]
    unet = g.GPU_CASES[0]
    assert g.engine_config(unet, "cuda", False, "channels_last").recipe.channels_last
    nchw = g.engine_config(unet, "cuda", True, "NCHW")
    assert not nchw.recipe.channels_last and nchw.recipe.compile and nchw.recipe.compile_backend == "inductor"


def test_the_stages_run_in_order_within_the_budget_and_each_row_is_written_when_measured(tmp_path):
    """A call stopped at its time limit keeps the rows that finished; a stage the budget cannot hold is skipped with
    a note (its estimate follows the last measured stage of its kind); a failing stage does not stop the others."""
    g = gpu_check_module()
    results = tmp_path / "RESULTS-gpu.md"
    seen = []

    def second():
        seen.append(results.read_text())
        return dict(stage="engine eager", tier="b", layout="-", img_s=2.0, note="second")

    def broken():
        raise RuntimeError("CUDA error: an illegal memory access")

    plan = [("eager", "engine eager a -", 10, lambda: dict(stage="engine eager", tier="a", layout="-", img_s=1.0)),
            ("run", "engine run", 10_000, lambda: pytest.fail("over the budget: must be skipped")),
            ("layout", "engine eager b NCHW", 10_000, second),        # estimated from the eager stage just measured
            ("compiled", "engine compiled c -", 1, broken)]
    assert g.run_plan(plan, 600.0, str(results), time.monotonic(), torch.device("cpu")) is True
    assert "| engine eager | a | - |" in seen[0] and "engine run" in seen[0]     # already on disk
    rows = [line.split("|")[1:4] + [line.split("|")[-2].strip()] for line in results.read_text().splitlines()]
    assert [[c.strip() for c in r[:3]] for r in rows] == [
        ["engine eager", "a", "-"], ["engine run", "-", "-"], ["engine eager", "b", "-"], ["engine compiled", "c", "-"]]
    assert rows[1][3].startswith("skipped: ") and rows[1][3].endswith("about 10000 s needed")
    assert rows[2][3] == "second"
    assert rows[3][3] == "FAILED: RuntimeError: CUDA error: an illegal memory access"
