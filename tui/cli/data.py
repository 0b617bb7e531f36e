"""`difftui data ...`: the data side of the playbook from the shell (playbook 1.2, 1.5, 1.6).

    difftui data check DATASET [--set key=value ...] [--json] [--sample K] [--workers N] [--recheck]
                                  DATASET: a profile's name, or the path of an image folder or zip
    difftui data card DATASET [--set ...] [--recipe NAME]            the data card (markdown) on stdout
    difftui data prepare DATASET [--set ...] [--device D]             build the preprocessed (or latent) cache now

`--set` takes dataset keys, with or without the `dataset.` prefix (`--set root=/data/ffhq` or
`--set dataset.root=/data/ffhq`). Progress goes to stderr, the result to stdout; user errors are one line and exit 2.
`register(app)` adds the `data` group to the main CLI (tui/cli/root.py calls it once).
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Any, Iterator, Optional

import typer

from difftui.tui.cli.common import ctx_obj, err, out, user_command

__all__ = ["register", "resolve_dataset"]


def _preset_or_folder(catalog, name: str):
    """DATASET as the user typed it: a dataset preset's name, or a path to an image folder or a zip of images (the
    image-folder profile with its root there; issue 16 item 6). A word that names both is the preset unless written
    as a path (./cifar10)."""
    import dataclasses
    import os
    from pathlib import Path

    from difftui.engine.config.model import PresetError
    if not (os.sep in name or name.startswith((".", "~")) or name.lower().endswith(".zip")):
        try:
            return catalog.get("datasets", name)
        except PresetError:
            if not Path(name).exists():
                raise
    return dataclasses.replace(catalog.get("datasets", "image-folder"), root=str(Path(name).expanduser().resolve()))


def resolve_dataset(catalog, name: str, sets: list[str]):
    """A dataset preset (or an image folder's path) with `--set` overrides applied and validated (PresetError names
    the key)."""
    from difftui.engine.config.model import DatasetProfile, apply_overrides, from_mapping, parse_override, to_dict
    profile = _preset_or_folder(catalog, name)
    parsed = []
    for text in sets:
        key, value = parse_override(text)
        parsed.append((key if key.startswith("dataset.") else f"dataset.{key}", value))
    tree = apply_overrides({"dataset": to_dict(profile)}, parsed)
    return from_mapping(DatasetProfile, tree["dataset"], f"dataset {name!r} (after --set)")


@contextmanager
def progress_bar(console) -> Iterator[Any]:
    """A rich progress bar on stderr; yields the engine's progress(done, total, what) callback. Not on a pipe or a
    file: there it would only leave a blank line before the result or the one-line error."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    if not console.is_terminal:
        yield lambda done, total, what: None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("listing files", total=None)

        def progress(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total or None, description=what)

        yield progress


def register(app: typer.Typer) -> None:
    """Add `difftui data check | card | prepare` to the main CLI."""

    data = typer.Typer(help="Check, describe and prepare data sets (playbook chapter 1).", no_args_is_help=True)
    app.add_typer(data, name="data")

    @data.command("check")
    @user_command
    def check(ctx: typer.Context,
              dataset: str = typer.Argument(..., help="dataset profile (e.g. cifar10), or the path of an image "
                                                      "folder or zip"),
              set_: Optional[list[str]] = typer.Option(None, "--set", help="override a dataset key: key=value"),
              as_json: bool = typer.Option(False, "--json", help="print the table as JSON (for scripts)"),
              sample: int = typer.Option(50_000, "--sample", min=1, help="K, the sample size (playbook 1.2: 50,000)"),
              workers: Optional[int] = typer.Option(None, "--workers", min=0, help="decoding processes (default: "
                                                    "one per core; 0: in this process)"),
              recheck: bool = typer.Option(False, "--recheck", help="ignore the cached table"),
              ) -> None:
        """The data-quality table: counts, corrupt files, sizes, JPEG quality, duplicates, train/test overlap."""
        from difftui.engine.data.quality import check_dataset, quality_markdown
        c = ctx_obj(ctx)
        profile = resolve_dataset(c.catalog(), dataset, set_ or [])
        with progress_bar(err) as progress:
            table = check_dataset(profile, sample, workers=workers, progress=progress, use_cache=not recheck)
        if as_json:
            print(json.dumps(table, indent=1))
            return
        from rich.markdown import Markdown
        out.print(Markdown(quality_markdown(table)))
        if table.get("from_cache"):
            out.print("(cached: the files are unchanged since the last check; --recheck to measure again)",
                      style="dim")

    @data.command("card")
    @user_command
    def card(ctx: typer.Context,
             dataset: str = typer.Argument(..., help="dataset profile"),
             set_: Optional[list[str]] = typer.Option(None, "--set", help="override a dataset key: key=value"),
             recipe: Optional[str] = typer.Option(None, "--recipe", help="a recipe, for its seed and augmentation"),
             ) -> None:
        """The data card (markdown): source and licence, profile, preprocessing protocol, quality table."""
        from difftui.engine.data.card import data_card
        c = ctx_obj(ctx)
        catalog = c.catalog()
        profile = resolve_dataset(catalog, dataset, set_ or [])
        print(data_card(profile, catalog.get("recipes", recipe) if recipe else None), end="")

    @data.command("prepare")
    @user_command
    def prepare(ctx: typer.Context,
                dataset: str = typer.Argument(..., help="dataset profile"),
                set_: Optional[list[str]] = typer.Option(None, "--set", help="override a dataset key: key=value"),
                split: str = typer.Option("train", "--split", help="train | test"),
                device: str = typer.Option("auto", "--device", help="for latents: auto | cpu | cuda | cuda:K"),
                ) -> None:
        """Build the data set's cache now (preprocessed pixels, or VAE latents), so a run starts in seconds."""
        import dataclasses

        from difftui.engine.data import build_pixels
        from difftui.engine.run.device import resolve_device
        c = ctx_obj(ctx)
        profile = resolve_dataset(c.catalog(), dataset, set_ or [])
        if split not in ("train", "test"):
            raise typer.BadParameter("--split must be train or test")
        profile = dataclasses.replace(profile, split=split)
        with progress_bar(err) as progress:
            if profile.latents:
                from difftui.engine.data.latents import load_latent_set
                data = load_latent_set(profile, progress, device=resolve_device(device))
            else:
                data = build_pixels(profile, progress)
        where = getattr(data, "cache_dir", None)
        out.print(f"{profile.name} ({split}): {len(data):,} items of {'x'.join(map(str, data.shape))}"
                  + (f" in {where}" if where else " (held in memory; nothing to cache)"))
        skipped = getattr(data, "skipped", [])
        if skipped:
            out.print(f"{len(skipped):,} unreadable files skipped (difftui data check {profile.name} lists them)")
