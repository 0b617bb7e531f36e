"""The data card (playbook 1.5, 1.6): where the data came from, its profile, the preprocessing protocol and the quality
table, as markdown saved with every run (runs/<id>/datacard.md) and shown by the review screen.

    text = data_card(profile, recipe=None, table=None)      # table None: the cached quality table, if any
    path = write_datacard(run_dir, config)                   # what the launcher calls for each new run

Source, licence and risks are fields of the dataset preset that the user fills in (`data_source`, `licence`,
`risks`); empty ones are printed as "fill in" so that a card is never silently incomplete. The quality table is the
cached one of `difftui data check` for the data set's current contents (computing it can take minutes, so a card never
computes it); without one the card says which command adds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from difftui.engine.atomic import atomic_write_text
from difftui.engine.config.model import DatasetProfile, Recipe, RunConfig
from difftui.engine.text import one_line

from .anchors import nearest_anchor
from .quality import SCALE_NOTE, cached_quality, quality_markdown, scale_tier

__all__ = ["data_card", "write_datacard", "DATACARD_NAME", "KNOWN_SIZES", "preprocessing_rows"]

DATACARD_NAME = "datacard.md"

# The published sizes of the anchor data sets (train, test), for the scale tier before a check has run.
KNOWN_SIZES = {"cifar10": (50_000, 10_000), "imagenet64": (1_281_167, 50_000)}

CROPS = {
    "center": "center crop to the largest centred square",
    "celeba": "P2's CelebA crop: the 128x128 box centred at (89, 121) of the 178x218 aligned image",
    "none": "no crop (the whole image resized to a square)",
}


def _fill(value: str, key: str) -> str:
    return value if value.strip() else f"_fill in: set `{key}` in the dataset preset_"


def _versions() -> str:
    """The installed versions, read from the package metadata (importing torch here would load it into the TUI)."""
    from importlib.metadata import PackageNotFoundError, version
    out = []
    for name in ("torch", "torchvision", "numpy", "pillow"):
        try:
            out.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    return ", ".join(out)


def preprocessing_rows(profile: DatasetProfile, recipe: Recipe | None = None) -> list[tuple[str, str]]:
    """Playbook 1.1 / 1.5 (4): the protocol, row by row."""
    p = profile
    rows = []
    if p.source == "digits":
        rows.append(("resize", "none (the digits are 8x8); grey levels 0..16 -> x/16*2-1"))
    elif p.source in ("cifar10", "imagenet64") and p.resolution == {"cifar10": 32, "imagenet64": 64}[p.source]:
        rows.append(("resize", f"none (stored at {p.resolution}x{p.resolution}; playbook 1.0)"))
    else:
        rows.append(("crop", CROPS[p.crop]))
        rows.append(("downsample", f"area (PIL BOX filter: each pixel the mean of its footprint) to "
                                   f"{p.resolution}x{p.resolution}; BICUBIC when the crop is smaller"))
    rows.append(("channels", {1: "grey (L)", 3: "RGB", 4: "RGBA"}[p.channels]))
    rows.append(("normalisation", "x / 127.5 - 1 -> [-1, 1], the one range of training, sampling and grids "
                                  "(playbook 1.0)"))
    flips = "on (dataset x-flips)" if p.x_flip else "off"
    if recipe is not None and recipe.augment_p > 0:
        flips += (f"; non-leaky augmentation with p = {recipe.augment_p:g} (x-flips, y-flips, scale, rotation, "
                  f"anisotropy, translation; the parameters are fed to the network, zero at sampling; playbook 1.3)")
    rows.append(("x-flips", flips))
    if p.source == "cifar10":
        split = "CIFAR-10's test_batch (10,000 images)"
    elif p.source == "imagenet64":
        split = "ImageNet-64's val_data.npz (50,000 images)"
    elif p.test_root:
        split = f"the data set's own test folder {p.test_root}"
    elif p.heldout > 0:
        split = (f"a held-out {p.heldout:.0%} chosen by a hash of (split_seed {p.split_seed}, file name); training "
                 f"never sees it")
    else:
        split = "none (heldout 0)"
    rows.append(("test split", split))
    seed = f"batch order seed {recipe.seed} (a seeded permutation per epoch)" if recipe is not None else ""
    rows.append(("seeds", ", ".join(x for x in (seed, f"split_seed {p.split_seed}") if x)))
    if p.latents:
        c, h, w = p.model_shape
        rows.append(("latents", f"SD VAE (AutoencoderKL) from {p.vae or '$DIFFTUI_VAE'}: {c}x{h}x{w} latents, "
                                f"one posterior sample per image (seed 0) times the scale factor {p.latent_scale:g} "
                                f"(as DiT); grids and evaluation decode them"))
    rows.append(("libraries", _versions()))
    return rows


def _table(rows: list[tuple[str, str]]) -> list[str]:
    return ["| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows]]


def data_card(profile: DatasetProfile, recipe: Recipe | None = None, table: dict[str, Any] | None = None) -> str:
    p = profile
    from .errors import DataError
    missing = ""
    try:                                                    # one listing of the files: availability and the key
        cached = cached_quality(p, missing_ok=False)
    except DataError as e:
        cached, missing = None, one_line(e)
    if table is None:
        table = cached
    anchor = nearest_anchor(p)
    c, h, w = p.model_shape
    if table is not None:
        items = table["items"]
        n_train, n_test = items["train"], max(items["test"], 0)
        size = f"train {n_train:,}; test {n_test:,} (measured by the data check)"
    elif p.source in KNOWN_SIZES:
        n_train, n_test = KNOWN_SIZES[p.source]
        size = f"train {n_train:,}; test {n_test:,} (the published split)"
    else:
        n_train = n_test = None
        size = "not counted yet (run the data check)"
    tier = scale_tier(n_train + n_test) if n_train is not None else None
    modality = (f"class-conditional ({p.num_classes} classes)" if p.num_classes > 0 else "unconditional")
    lines = [f"# Data card: {p.name}", "", p.description, "",
             "## Source and licence (playbook 1.0 (4), 1.5 (1))", "",
             *_table([("source", _fill(p.data_source, "data_source")), ("licence", _fill(p.licence, "licence")),
                      ("risks (copyright, privacy, bias)", _fill(p.risks, "risks")),
                      ("files", f"{p.root or '(built in)'}" + (f"; test: {p.test_root}" if p.test_root else "")
                       + (f" -- **not available when the card was written**: {missing}" if missing else ""))]),
             "", "## Profile (playbook 1.6)", "",
             *_table([("items", size), ("modality", modality),
                      ("scale tier", f"{tier} ({SCALE_NOTE[tier]}; playbook 1.2)" if tier else "-"),
                      ("resolution", f"{p.resolution}x{p.resolution}, {p.channels} channels; the network sees "
                                     f"{c}x{h}x{w} {'latents' if p.latents else 'pixels'}"),
                      ("anchor (preset)", p.anchor),
                      ("nearest paper anchor", f"{anchor.task}: {anchor.note}")]),
             "", "## Preprocessing protocol (playbook 1.1, 1.5 (4))", "",
             *_table(preprocessing_rows(p, recipe)), ""]
    if table is not None:
        lines.append(quality_markdown(table, heading="##"))
    else:
        lines += ["## Data-quality table (playbook 1.2, 1.5)", "",
                  f"_Not computed for the current files yet: run `difftui data check {p.name}` (or `c` on the "
                  f"dataset step of a new run); the cards of later runs include it._", ""]
    return "\n".join(lines)


def write_datacard(run_dir: str | Path, config: RunConfig) -> Path:
    """runs/<id>/datacard.md for a new run (written atomically). Never fails a launch over the card's content: a
    data set whose files cannot be listed gets a card that says so."""
    try:
        text = data_card(config.dataset, config.recipe)
    except Exception as e:                                   # DataError and friends: the card records it
        text = (f"# Data card: {config.dataset.name}\n\nThe data set could not be read when the run was created: "
                f"{one_line(e)}\n")
    return atomic_write_text(Path(run_dir) / DATACARD_NAME, text)
