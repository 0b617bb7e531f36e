"""Dataset profiles -> in-memory image sets and a resumable batch stream (playbook 1.0-1.1).

    source         loader                                              protocol
    digits         scikit-learn's bundled UCI digits (8x8, 0..16)     x/16 -> [-1,1]; offline, no download
    cifar10        torchvision CIFAR10 from a local root              ToTensor, [-1,1], no resize (playbook 1.0)
    image_folder   every png/jpg/jpeg/webp under a folder            center crop + area downsample, [-1,1] (1.1)

Every profile normalises to [-1,1], the one range used by training, sampling and the grids (playbook 1.0), and
applies x-flips only when the profile asks for them (playbook 1.0 / A.4). A missing or unreadable source raises
`DataError` with one line that says where the files should be.
"""

from __future__ import annotations

from difftui.engine.config import DatasetProfile

from .images import DataError, ImageSet
from .stream import BatchStream

__all__ = ["DataError", "ImageSet", "BatchStream", "build_dataset", "check_available"]


def build_dataset(profile: DatasetProfile) -> ImageSet:
    """Load the profile's images into memory, preprocessed to `profile.resolution` and `profile.channels`."""
    if profile.source == "digits":
        from .digits import load_digits_set
        return load_digits_set(profile)
    if profile.source == "cifar10":
        from .cifar import load_cifar10_set
        return load_cifar10_set(profile)
    if profile.source == "image_folder":
        from .folder import load_image_folder_set
        return load_image_folder_set(profile)
    raise DataError(f"dataset '{profile.name}': unknown source {profile.source!r}")


def check_available(profile: DatasetProfile) -> None:
    """Cheap check that the files are where the profile says (no decoding); raises DataError with one line."""
    if profile.source == "cifar10":
        from .cifar import check_cifar10
        check_cifar10(profile)
    elif profile.source == "image_folder":
        from .folder import find_images
        find_images(profile)
