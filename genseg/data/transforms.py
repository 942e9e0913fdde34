"""Training augmentation: random resize, crop (padding labels with ignore), flip, photometric.

Each call takes the sample's own ``np.random.Generator`` so results depend only on the
seed and the sample's position in the stream (see :class:`genseg.data.base.StreamSampler`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from .base import IGNORE_INDEX


@dataclass(frozen=True)
class TrainTransform:
    crop_size: int
    scale_range: tuple[float, float] = (0.75, 1.5)
    hflip: bool = True
    photometric: bool = True

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator):
        image, label = random_resize(image, label, rng, self.scale_range)
        image, label = random_crop(image, label, rng, self.crop_size)
        if self.hflip and rng.random() < 0.5:
            image, label = image[:, ::-1], label[:, ::-1]
        if self.photometric:
            image = photometric_jitter(image, rng)
        return image, label


def random_resize(image, label, rng, scale_range):
    lo, hi = scale_range
    scale = rng.uniform(lo, hi)
    if abs(scale - 1.0) < 1e-3:
        return image, label
    h, w = label.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    image = np.array(Image.fromarray(image).resize(size, Image.BILINEAR))
    label = np.array(Image.fromarray(label).resize(size, Image.NEAREST))
    return image, label


def random_crop(image, label, rng, crop):
    h, w = label.shape
    ph, pw = max(0, crop - h), max(0, crop - w)
    if ph or pw:
        image = np.pad(image, ((0, ph), (0, pw), (0, 0)))
        label = np.pad(label, ((0, ph), (0, pw)), constant_values=IGNORE_INDEX)
        h, w = label.shape
    top = int(rng.integers(0, h - crop + 1))
    left = int(rng.integers(0, w - crop + 1))
    return image[top : top + crop, left : left + crop], label[top : top + crop, left : left + crop]


def photometric_jitter(image, rng, brightness=0.2, contrast=0.2, saturation=0.2):
    """Brightness, contrast and saturation factors in 1 +- the given amounts."""
    x = image.astype(np.float32)
    x *= rng.uniform(1 - brightness, 1 + brightness)
    mean = x.mean()
    x = (x - mean) * rng.uniform(1 - contrast, 1 + contrast) + mean
    gray = x.mean(axis=2, keepdims=True)
    x = (x - gray) * rng.uniform(1 - saturation, 1 + saturation) + gray
    return np.clip(x, 0, 255).astype(np.uint8)
