"""The built-in offline data set: the 1,797 UCI handwritten digits that scikit-learn ships (8x8, grey 0..16).

Real images with no download, so the default run trains on a laptop CPU. Protocol as playbook 1.0: no resize,
normalise to [-1,1] (here x/16 * 2 - 1, the 17 grey levels), no x-flips (a flipped digit is not a digit).
"""

from __future__ import annotations

import torch

from difftui.engine.config import DatasetProfile

from .images import DataError, ImageSet

__all__ = ["load_digits_set"]


def load_digits_set(profile: DatasetProfile) -> ImageSet:
    if profile.resolution != 8 or profile.channels != 1:
        raise DataError(f"dataset '{profile.name}': the digits are 8x8 grey; set resolution 8 and channels 1 "
                        f"(got {profile.resolution} and {profile.channels})")
    from sklearn.datasets import load_digits
    digits = load_digits()
    images = torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1)   # [1797, 1, 8, 8], 0..16
    images = images / 16.0 * 2.0 - 1.0
    labels = torch.as_tensor(digits.target, dtype=torch.long)
    return ImageSet(images, labels, name=profile.name, num_classes=10)
