"""A profile's pixels: the loader of its source, preprocessed to the profile's resolution and channels (playbook 1.0-1.1).

Torch-free to import (the loaders, which need torch, are imported when called), so that the data package stays
light for the decoding workers; latents.py encodes these pixels, build_dataset (the package) picks pixels or latents.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from difftui.engine.config.model import DatasetProfile

from .cache import Progress
from .errors import DataError

if TYPE_CHECKING:
    from .images import ImageSet

__all__ = ["build_pixels"]


def build_pixels(profile: DatasetProfile, progress: Progress | None = None) -> ImageSet:
    """The profile's images (pixels, never latents), preprocessed to `profile.resolution` and `profile.channels`."""
    if profile.source == "digits":
        from .digits import load_digits_set
        return load_digits_set(profile)
    if profile.source == "cifar10":
        from .cifar import load_cifar10_set
        return load_cifar10_set(profile)
    if profile.source == "imagenet64":
        from .imagenet64 import load_imagenet64_set
        return load_imagenet64_set(profile, progress)
    if profile.source in ("image_folder", "celeba"):
        from .folder import load_image_folder_set
        return load_image_folder_set(profile, progress)
    raise DataError(f"dataset '{profile.name}': unknown source {profile.source!r}")
