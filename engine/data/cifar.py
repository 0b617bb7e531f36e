"""CIFAR-10 from a local torchvision root (playbook 1.0: 50K training images, 32x32, ToTensor, [-1,1], no resize).

torchvision's `CIFAR10` reads the python-version batches from `<root>/cifar-10-batches-py`; with `download: true` it
fetches and md5-checks the archive first. torchvision md5-checks every file against the published checksums at each
load (`CIFAR10_MD5`, read from torchvision's own lists; hashing the 180 MB takes about half a second); when a check
fails, `check_cifar10_md5` names the file and both checksums in one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from difftui.engine.config.model import DatasetProfile

from .errors import DataError

if TYPE_CHECKING:
    from .images import ImageSet

__all__ = ["load_cifar10_set", "check_cifar10", "check_cifar10_md5", "cifar_root", "FOLDER", "CIFAR10_MD5"]

FOLDER = "cifar-10-batches-py"


def _published_md5() -> dict[str, str]:
    from torchvision.datasets import CIFAR10
    return {name: md5 for name, md5 in [*CIFAR10.train_list, *CIFAR10.test_list]} | {
        CIFAR10.meta["filename"]: CIFAR10.meta["md5"]}


CIFAR10_MD5: dict[str, str] = {}                    # file name -> md5; filled from torchvision on first use


def cifar_root(profile: DatasetProfile) -> Path:
    return Path(profile.root or ".").expanduser()


def _missing_message(profile: DatasetProfile) -> str:
    root = cifar_root(profile)
    return (f"CIFAR-10 not found: expected {root / FOLDER}/ (data_batch_1..5, test_batch, batches.meta from "
            f"cifar-10-python.tar.gz); put the files there, or pass --set dataset.root=DIR, "
            f"or --set dataset.download=true when online")


def _files_present(root: Path) -> bool:
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
    return all((root / FOLDER / n).is_file() for n in names)


def check_cifar10(profile: DatasetProfile) -> None:
    if not profile.download and not _files_present(cifar_root(profile)):
        raise DataError(_missing_message(profile))


def _md5_table(profile: DatasetProfile | None = None) -> dict[str, str]:
    """The md5s the files are checked against: the profile's own `md5` entries (a copy the user made and vouches
    for, file by file) over the published ones."""
    if not CIFAR10_MD5:
        CIFAR10_MD5.update(_published_md5())
    return {**CIFAR10_MD5, **(profile.md5 if profile is not None else {})}


def check_cifar10_md5(profile: DatasetProfile, split: str | None = None) -> None:
    """md5 of every file the split reads (and batches.meta) against CIFAR10_MD5; DataError naming the file."""
    from torchvision.datasets.utils import calculate_md5
    table = _md5_table(profile)
    split = split or profile.split
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    for name in [*names, "batches.meta"]:
        path = cifar_root(profile) / FOLDER / name
        got = calculate_md5(str(path))
        if got != table[name]:
            raise DataError(f"CIFAR-10 file {path} fails its md5 check (expected {table[name]}, got {got}); "
                            f"extract cifar-10-python.tar.gz again")


def _local_cifar10_class(profile: DatasetProfile):
    from torchvision.datasets import CIFAR10
    table = _md5_table(profile)

    class LocalCIFAR10(CIFAR10):
        # torchvision checks every file against these md5s (the published ones, unless the profile vouches for
        # its own copy file by file).
        train_list = [[name, table[name]] for name, _ in CIFAR10.train_list]
        test_list = [[name, table[name]] for name, _ in CIFAR10.test_list]
        meta = {**CIFAR10.meta, "md5": table[CIFAR10.meta["filename"]]}

    return LocalCIFAR10


def load_cifar10_set(profile: DatasetProfile) -> "ImageSet":
    import torch

    from .images import ImageSet, area_resize

    if profile.channels != 3:
        raise DataError(f"dataset '{profile.name}': CIFAR-10 is RGB; set channels 3 (got {profile.channels})")
    check_cifar10(profile)
    root = cifar_root(profile)
    try:
        ds = _local_cifar10_class(profile)(str(root), train=profile.split == "train", download=profile.download)
    except RuntimeError as e:                     # torchvision: "not found or corrupted"; say which file and why
        if _files_present(root):
            check_cifar10_md5(profile, "train")
            check_cifar10_md5(profile, "test")
        raise DataError(_missing_message(profile)) from e
    except OSError as e:                          # no network, or the download failed half way
        reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or e
        raise DataError(f"CIFAR-10 download to {root} failed ({reason}); put the python-version batches in "
                        f"{root / FOLDER}/") from None
    except Exception as e:                        # a truncated or foreign pickle
        raise DataError(f"CIFAR-10 files under {root / FOLDER} are unreadable ({type(e).__name__}: {e})") from None
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()       # [N, 3, 32, 32] uint8
    images = area_resize(images, profile.resolution)
    labels = torch.as_tensor(ds.targets, dtype=torch.long)
    return ImageSet(images, labels, name=profile.name, num_classes=10)
