"""CIFAR-10 from a local torchvision root (playbook 1.0: 50K training images, 32x32, ToTensor, [-1,1], no resize).

torchvision's `CIFAR10` reads the python-version batches from `<root>/cifar-10-batches-py`; with `download: true` it
fetches and md5-checks the archive first. Files already on disk are checked for presence, not re-hashed at every run
start (hashing 170 MB each time buys nothing once the archive's md5 has been checked).
"""

from __future__ import annotations

from pathlib import Path

import torch

from difftui.engine.config import DatasetProfile

from .images import DataError, ImageSet, area_resize

__all__ = ["load_cifar10_set", "check_cifar10", "cifar_root", "FOLDER"]

FOLDER = "cifar-10-batches-py"


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


def _local_cifar10_class():
    from torchvision.datasets import CIFAR10

    class LocalCIFAR10(CIFAR10):
        # md5 None: torchvision's check_integrity then checks that each file exists (the archive keeps its md5).
        train_list = [[name, None] for name, _ in CIFAR10.train_list]
        test_list = [[name, None] for name, _ in CIFAR10.test_list]
        meta = {**CIFAR10.meta, "md5": None}

    return LocalCIFAR10


def load_cifar10_set(profile: DatasetProfile) -> ImageSet:
    if profile.channels != 3:
        raise DataError(f"dataset '{profile.name}': CIFAR-10 is RGB; set channels 3 (got {profile.channels})")
    check_cifar10(profile)
    root = cifar_root(profile)
    try:
        ds = _local_cifar10_class()(str(root), train=profile.split == "train", download=profile.download)
    except RuntimeError as e:
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
