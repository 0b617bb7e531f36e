"""Dataset profiles -> image sets and resumable batch streams (playbook 1.0-1.8).

    source         loader                                              protocol
    digits         scikit-learn's bundled UCI digits (8x8, 0..16)     x/16 -> [-1,1]; offline, no download
    cifar10        torchvision CIFAR10 from a local root (md5-checked) ToTensor, [-1,1], no resize (playbook 1.0)
    imagenet64     the downsampled-ImageNet npz batches              64x64, labels 0-based; cached, memory-mapped
    image_folder   every image under a folder or in a zip archive    center crop + area downsample, [-1,1] (1.1)
    celeba         img_align_celeba/ or its zip                      P2's CelebA crop + area downsample

Every profile normalises to [-1,1], the one range used by training, sampling and the grids (playbook 1.0), and
applies x-flips only when the profile asks for them (playbook 1.0 / A.4). A missing or unreadable source raises
`DataError` with one line that says where the files should be. File-based data sets are decoded once into a
memory-mapped cache (cache.py); `latents: true` encodes the images once with a local VAE (latents.py). Splits:
`split: test` is CIFAR-10's test batch, ImageNet-64's val file, an image folder's `test_root`, or the seeded held-out
subset of the digits and image folders (split.py) that training never sees.

The other parts of the data side: the quality table (quality.py), the data card (card.py), the paper anchor of a
profile (anchors.py), the batch loader for large sets (loader.py), P3's non-leaky augmentation (augment.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from difftui.engine.config.model import DatasetProfile

from .cache import Progress
from .errors import DataError
from .pixels import build_pixels

if TYPE_CHECKING:
    from .images import ImageSet

__all__ = ["DataError", "build_dataset", "build_pixels", "check_available"]

# This package imports no torch (the decoding workers of quality.py and decode.py, spawned processes, import it):
# the torch-backed modules (images.py, mapped.py, stream.py, the loaders, latents.py) are imported by name where they
# are used, e.g. `from difftui.engine.data.images import ImageSet`.


def build_dataset(profile: DatasetProfile, progress: Progress | None = None) -> ImageSet:
    """The data set training sees: `build_pixels`, or for `latents: true` the cached VAE latents of those pixels.

    `progress(done, total, what)` is called while a cache is being built (the first start on a data set)."""
    if profile.latents:
        from .latents import load_latent_set
        return load_latent_set(profile, progress)
    return build_pixels(profile, progress)


def check_available(profile: DatasetProfile, batch_size: int | None = None) -> None:
    """Cheap check that the files are where the profile says (no decoding); raises DataError with one line.

    With `batch_size` (the recipe's global batch), an image folder whose training split holds fewer files than one
    batch is refused too (issue 16 item 6): training could not draw a single batch from it. Files that turn out not
    to decode are found later (the data check lists them), so this counts files, not images."""
    if profile.source == "cifar10":
        from .cifar import check_cifar10
        check_cifar10(profile)
    elif profile.source == "imagenet64":
        from .imagenet64 import check_imagenet64
        check_imagenet64(profile)
    elif profile.source in ("image_folder", "celeba"):
        from .folder import FolderItems, find_images
        if batch_size is None:
            find_images(profile)
        else:
            items = FolderItems(profile, "train")
            if len(items.names) < batch_size:
                raise DataError(f"dataset '{profile.name}': {len(items.names)} training image(s) under "
                                f"{items.source.path}, fewer than one batch of {batch_size} (recipe.batch_size): "
                                f"add images, or lower the batch size")
    if profile.latents:
        from .latents import check_latents_available
        check_latents_available(profile)
