"""DESIGN.md: the engine never imports Textual or the TUI (an import-linter contract, as harlequin keeps for its core)."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_engine_does_not_import_textual_or_the_tui():
    lint = Path(sys.executable).parent / "lint-imports"
    exe = str(lint) if lint.exists() else shutil.which("lint-imports")
    assert exe, "import-linter is not installed (pip install -e '.[test]')"
    out = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "The engine is reachable without the TUI KEPT" in out.stdout
    assert "import no torch KEPT" in " ".join(out.stdout.split())          # the TUI's light process (issue 11)
