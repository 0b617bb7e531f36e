"""A light TUI process (issue 11 item 7): the config model, the catalog, the checks and the tier cache import no
torch, and the real app driven through the new-run flow to the review screen (its parameter and MAC figures and its
device shown) never imports torch. The review screen's RSS is printed for bench/RESULTS.md."""

import json
import subprocess
import sys
import textwrap

# The torch-free rooms of the import contract (pyproject.toml), every module of config/ and launch/, and the TUI.
TORCH_FREE = ["difftui.engine.config.schema", "difftui.engine.config.model", "difftui.engine.config.archs",
              "difftui.engine.config.ladders", "difftui.engine.config.catalog", "difftui.engine.config.tier_figures",
              "difftui.engine.config.batch", "difftui.engine.launch.checks", "difftui.engine.launch.request",
              "difftui.engine.launch.runs", "difftui.engine.launch.plan", "difftui.engine.launch.backends",
              "difftui.engine.launch.liveness", "difftui.engine.launch.devices", "difftui.engine.launch.lock",
              "difftui.engine.launch.signals", "difftui.engine.store", "difftui.engine.eval.jobs",
              "difftui.engine.eval.rows", "difftui.engine.eval.start", "difftui.engine.data.anchors",
              "difftui.engine.core_rules", "difftui.engine.numbers", "difftui.engine.text",
              "difftui.engine.launch.slurm.options", "difftui.engine.launch.slurm.client",
              "difftui.engine.launch.slurm.jobs", "difftui.engine.launch.slurm.checks",
              "difftui.engine.launch.slurm.submit", "difftui.engine.launch.slurm.task",
              "difftui.engine.launch.slurm.profiles", "difftui.engine.sweeps.slurm", "difftui.tui.app",
              "difftui.tui.cli", "difftui.tui.screens.review", "difftui.tui.screens.new_run"]


def run_python(code: str, tmp_path, timeout: float = 300) -> dict:
    env_code = textwrap.dedent(code)
    out = subprocess.run([sys.executable, "-c", env_code], capture_output=True, text=True, timeout=timeout,
                         cwd=tmp_path, env={**__import__("os").environ, "DIFFTUI_CACHE": str(tmp_path / "cache")})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_config_catalog_checks_and_tier_cache_import_no_torch(tmp_path):
    result = run_python(f"""
        import importlib, json, sys
        for name in {TORCH_FREE!r}:
            importlib.import_module(name)
        from difftui.engine.config.catalog import Catalog
        from difftui.engine.config.tier_figures import describe_tiers
        config = Catalog().resolve(dataset="cifar10", backbone="dydit-s-2", recipe="p5-dydit-finetune")
        rows = describe_tiers([f.preset for f in Catalog().all("backbones")], measure=False)
        print(json.dumps({{"torch": "torch" in sys.modules, "rows": len(rows), "lam": config.recipe.flops_lambda}}))
    """, tmp_path)
    assert result == {"torch": False, "rows": 15, "lam": 0.5}


def test_the_app_reaches_the_review_screen_without_importing_torch(tmp_path):
    result = run_python("""
        import asyncio, json, sys, time

        from difftui.tui.app import DifftuiApp
        from difftui.tui.screens.new_run import PresetPickerScreen
        from difftui.tui.screens.review import ReviewScreen

        def rss_mb(field):
            for line in open("/proc/self/status"):
                if line.startswith(field):
                    return int(line.split()[1]) / 1024

        async def main():
            app = DifftuiApp(db_path="runs.db")
            async with app.run_test(size=(140, 44)) as pilot:
                deadline = time.monotonic() + 240
                while time.monotonic() < deadline:
                    screen = app.screen
                    if isinstance(screen, ReviewScreen) and screen.facts and "params" in screen.facts \\
                            and "device" in screen.facts:
                        break
                    if isinstance(screen, PresetPickerScreen) and screen.entries:
                        await pilot.press("enter")          # take the highlighted default
                    await pilot.pause(0.2)
                screen = app.screen
                facts = dict(screen.facts or {}) if isinstance(screen, ReviewScreen) else {}
                return {"screen": type(screen).__name__, "facts": facts, "torch": "torch" in sys.modules,
                        "rss_mb": rss_mb("VmRSS:"), "peak_mb": rss_mb("VmHWM:")}

        print(json.dumps(asyncio.run(main())))
    """, tmp_path)
    print(f"TUI after the review screen: RSS {result['rss_mb']:.0f} MB, peak {result['peak_mb']:.0f} MB")
    assert result["screen"] == "ReviewScreen", result
    assert result["torch"] is False
    assert result["facts"]["params"] > 0 and result["facts"]["device"].startswith(("cpu", "cuda"))
    assert result["rss_mb"] < 150                                   # issue 11 target (740 MB with torch)
