"""The import contracts of pyproject.toml, run by import-linter (as harlequin keeps one for its core): DESIGN.md's
direction (the engine never imports Textual or the TUI) and issue 15 item 4's rooms (the torch-free rooms import no
torch; the core, diffusion and models, imports nothing of ours above it and neither imports the other; the CLI loads
Textual only where it opens the app)."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


CONTRACTS = [
    "The engine is reachable without the TUI",
    "The torch-free rooms (config, launch, store, eval's jobs and rows, data's anchors, the core's rules) import no torch",
    "The core (diffusion, models) imports nothing of ours above it",
    "The diffusion core and the networks do not import each other",
    "The CLI imports Textual only where it opens the app",
    "The doctor and the grid diagnostics import no torch",
]


def test_every_import_contract_is_kept():
    lint = Path(sys.executable).parent / "lint-imports"
    exe = str(lint) if lint.exists() else shutil.which("lint-imports")
    assert exe, "import-linter is not installed (pip install -e '.[test]')"
    out = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    report = " ".join(out.stdout.split())                                  # import-linter wraps long names
    for name in CONTRACTS:
        assert f"{name} KEPT" in report, name
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in report
