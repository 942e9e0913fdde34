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


def pad_to_crop(image, label, crop):
    """Pad bottom and right to at least ``crop`` x ``crop``: image with 0, label with the ignore index."""
    h, w = label.shape
    ph, pw = max(0, crop - h), max(0, crop - w)
    if ph or pw:
        image = np.pad(image, ((0, ph), (0, pw), (0, 0)))
        label = np.pad(label, ((0, ph), (0, pw)), constant_values=IGNORE_INDEX)
    return image, label


def random_crop(image, label, rng, crop):
    image, label = pad_to_crop(image, label, crop)
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


def train_transform(data):
    """The training pipeline ``data.pipeline`` names (:class:`TrainTransform` or :class:`MmsegTransform`)."""
    if data.pipeline == "mmseg":
        return MmsegTransform(data.crop_size, data.resize_scale, data.scale_range, data.cat_max_ratio, data.hflip, data.photometric)
    return TrainTransform(data.crop_size, data.scale_range, data.hflip, data.photometric)


@dataclass(frozen=True)
class MmsegTransform:
    """mmsegmentation's ADE20K / COCO-Stuff / Cityscapes training pipeline: RandomResize to
    ``scale`` x U(ratio_range) keeping the ratio, RandomCrop (up to 10 tries to keep one class
    under ``cat_max_ratio``), RandomFlip 0.5, PhotoMetricDistortion."""

    crop_size: int
    scale: tuple[int, int] = (2048, 512)
    ratio_range: tuple[float, float] = (0.5, 2.0)
    cat_max_ratio: float = 0.75
    hflip: bool = True
    photometric: bool = True

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator):
        ratio = rng.uniform(*self.ratio_range)
        image, label = keep_ratio_resize(image, label, (int(self.scale[0] * ratio), int(self.scale[1] * ratio)))
        image, label = cat_max_crop(image, label, rng, self.crop_size, self.cat_max_ratio)
        if self.hflip and rng.random() < 0.5:
            image, label = image[:, ::-1], label[:, ::-1]
        if self.photometric:
            image = photo_metric_distortion(image, rng)
        return image, label


def keep_ratio_size(h: int, w: int, scale: tuple[int, int]) -> tuple[int, int]:
    """(h, w) rescaled so the long side fits max(scale) and the short side min(scale) (mmcv's rescale_size)."""
    factor = min(max(scale) / max(h, w), min(scale) / min(h, w))
    return int(h * factor + 0.5), int(w * factor + 0.5)


def keep_ratio_resize(image, label, scale):
    """Image bilinear, label nearest, to :func:`keep_ratio_size`."""
    h, w = keep_ratio_size(*label.shape, scale)
    if (h, w) == label.shape:
        return image, label
    image = np.array(Image.fromarray(image).resize((w, h), Image.BILINEAR))
    label = np.array(Image.fromarray(label).resize((w, h), Image.NEAREST))
    return image, label


def cat_max_crop(image, label, rng, crop, cat_max_ratio=0.75, tries=10):
    """mmseg's RandomCrop: pad (ignore) to the crop, then redraw the window up to ``tries`` times
    while one class covers more than ``cat_max_ratio`` of its labelled pixels (or only one class is in it)."""
    image, label = pad_to_crop(image, label, crop)
    h, w = label.shape

    def draw():
        top, left = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
        return slice(top, top + crop), slice(left, left + crop)

    window = draw()
    if cat_max_ratio < 1:
        for _ in range(tries):
            _, counts = np.unique(label[window][label[window] != IGNORE_INDEX], return_counts=True)
            if len(counts) > 1 and counts.max() / counts.sum() < cat_max_ratio:
                break
            window = draw()
    return image[window], label[window]


def photo_metric_distortion(image, rng, brightness_delta=32, contrast_range=(0.5, 1.5), saturation_range=(0.5, 1.5), hue_delta=18):
    """mmseg's PhotoMetricDistortion, in its order, each step with probability 0.5: brightness
    (+ U(-delta, delta)); contrast (x U(range)) either first or last (mode drawn 50/50); in HSV
    (OpenCV's 8-bit: hue 0..179), saturation x U(range) and hue + U(-delta, delta); uint8 out."""
    x = image.astype(np.float32)
    if rng.integers(2):
        x = np.clip(x + rng.uniform(-brightness_delta, brightness_delta), 0, 255)
    contrast_first = rng.integers(2) == 1
    if contrast_first and rng.integers(2):
        x = np.clip(x * rng.uniform(*contrast_range), 0, 255)
    do_sat, do_hue = rng.integers(2), rng.integers(2)
    if do_sat or do_hue:
        hsv = np.array(Image.fromarray(x.astype(np.uint8)).convert("HSV"), dtype=np.float32)  # PIL: hue 0..255
        if do_sat:
            hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(*saturation_range), 0, 255)
        if do_hue:  # OpenCV's hue delta (of 180) in PIL's units (of 256)
            hsv[..., 0] = (hsv[..., 0] + rng.integers(-hue_delta, hue_delta) * 256 / 180) % 256
        x = np.array(Image.fromarray(hsv.astype(np.uint8), "HSV").convert("RGB"), dtype=np.float32)
    if not contrast_first and rng.integers(2):
        x = np.clip(x * rng.uniform(*contrast_range), 0, 255)
    return x.astype(np.uint8)
