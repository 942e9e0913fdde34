"""Whole-image and sliding-window inference around a method's ``predict``.

Sliding window (mmsegmentation's ``slide`` mode): crops of ``crop`` x ``crop`` every
``stride`` pixels, the last row and column of windows aligned to the image border; each
window's prediction adds a one-hot vote (or the method's ``scores``, when it has them) to
every pixel it covers, and the class with the most is the answer. Memory is bounded by the
crop, whatever the image size.

Either mode may first resize the images to fit ``resize`` = (long, short), keeping the
ratio (mmsegmentation's test ``Resize(scale=(2048, 512), keep_ratio=True)``).

Whole-image mode pads the image (zeros, bottom and right) to a multiple of ``size_divisor``
and crops the prediction back. With ``scale`` != 1 the image is resized first (bilinear,
antialiased); either way the prediction is resized (nearest) to the label's resolution:
labels are never resized for evaluation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def window_starts(size: int, crop: int, stride: int) -> list[int]:
    """Window offsets along one axis: every ``stride``, plus one flush with the end."""
    if size <= crop:
        return [0]
    starts = list(range(0, size - crop + 1, stride))
    if starts[-1] + crop < size:
        starts.append(size - crop)
    return starts


def slide_predict(model, images: torch.Tensor, num_classes: int, crop: int, stride: int, labels=None, **options) -> torch.Tensor:
    """Class ids (B, H, W) from overlapping ``crop`` windows of ``images``."""
    b, _, h, w = images.shape
    votes = torch.zeros(b, num_classes, h, w, device=images.device)
    for y in window_starts(h, crop, stride):
        for x in window_starts(w, crop, stride):
            window = (..., slice(y, y + crop), slice(x, x + crop))
            extra = {"labels": labels[window]} if labels is not None else {}
            if hasattr(model, "scores"):
                out = model.scores(images[window], **extra, **options)
            else:
                pred = model.predict(images[window], **extra, **options)
                out = F.one_hot(pred.clamp(0, num_classes - 1), num_classes).permute(0, 3, 1, 2).to(votes)
            votes[window] += out
    return votes.argmax(1)


def padded_predict(model, images: torch.Tensor, size_divisor: int, labels=None, **options) -> torch.Tensor:
    """``model.predict`` on images zero-padded to a multiple of ``size_divisor``, cropped back."""
    from ..methods.base import pad_to_multiple

    h, w = images.shape[-2:]
    images = pad_to_multiple(images, size_divisor)
    if labels is not None:
        labels = pad_to_multiple(labels, size_divisor, value=255)
    extra = {"labels": labels} if labels is not None else {}
    return model.predict(images, **extra, **options)[..., :h, :w]


def predict_batch(model, images: torch.Tensor, labels: torch.Tensor, num_classes: int, mode: str = "whole",
                  crop: int = 0, stride: int = 0, scale: float = 1.0, size_divisor: int = 1, return_native: bool = False,
                  resize: tuple[int, int] = (0, 0), **options):
    """Class ids at the labels' resolution for one batch, whole (padded) or by sliding window,
    after resizing the images by ``scale`` (or to fit ``resize``, ratio kept); oracle methods get
    the labels at the same scale.

    ``return_native``: return ``(pred, native)``, ``native`` the prediction at the model's
    input resolution (before the nearest resize to the labels')."""
    size = labels.shape[-2:]
    if min(resize) > 0:
        from ..data.transforms import keep_ratio_size

        target = keep_ratio_size(*size, resize)
        if target != tuple(size):
            images = F.interpolate(images, size=target, mode="bilinear", align_corners=False, antialias=True)
            labels = F.interpolate(labels[:, None].float(), size=target, mode="nearest")[:, 0].long()
    elif scale != 1.0:
        images = F.interpolate(images, scale_factor=scale, mode="bilinear", align_corners=False, antialias=True)
        labels = F.interpolate(labels[:, None].float(), size=images.shape[-2:], mode="nearest")[:, 0].long()
    oracle = labels if getattr(model, "uses_labels", False) else None
    if mode == "slide":
        pred = slide_predict(model, images, num_classes, crop, stride, labels=oracle, **options)
    else:
        pred = padded_predict(model, images, size_divisor, labels=oracle, **options)
    native = pred
    if pred.shape[-2:] != size:
        pred = F.interpolate(pred[:, None].float(), size=size, mode="nearest")[:, 0].long()
    return (pred, native) if return_native else pred
