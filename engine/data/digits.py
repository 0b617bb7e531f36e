"""The built-in offline data set: the 1,797 UCI handwritten digits that scikit-learn ships (8x8, grey 0..16).

Real images with no download, so the default run trains on a laptop CPU. Protocol as playbook 1.0: no resize,
normalise to [-1,1] (here x/16 * 2 - 1, the 17 grey levels), no x-flips (a flipped digit is not a digit).

The held-out split (`heldout`, `split_seed`; split.py) is chosen by a seeded hash of each digit's index: the profile's
10% (about 180 digits) is split "test", which training never sees and held-out NLL is measured on.
"""

from __future__ import annotations

import torch

from difftui.engine.config.model import DatasetProfile

from .images import DataError, ImageSet
from .split import split_indices

__all__ = ["load_digits_set", "digits_arrays"]


def digits_arrays():
    """(images [1797, 8, 8] float 0..16, labels [1797]) of the whole set, in scikit-learn's order."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    return digits.images, digits.target


def load_digits_set(profile: DatasetProfile) -> ImageSet:
    if profile.resolution != 8 or profile.channels != 1:
        raise DataError(f"dataset '{profile.name}': the digits are 8x8 grey; set resolution 8 and channels 1 "
                        f"(got {profile.resolution} and {profile.channels})")
    raw, target = digits_arrays()
    keep = torch.as_tensor(split_indices([str(i) for i in range(len(raw))], profile.heldout, profile.split_seed,
                                         profile.split))
    images = torch.as_tensor(raw, dtype=torch.float32).unsqueeze(1)[keep]     # [N, 1, 8, 8], 0..16
    images = images / 16.0 * 2.0 - 1.0
    labels = torch.as_tensor(target, dtype=torch.long)[keep]
    return ImageSet(images, labels, name=profile.name, num_classes=10)
