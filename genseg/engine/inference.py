"""Whole-image and sliding-window inference around a method's ``predict``.

Sliding window (mmsegmentation's ``slide`` mode): crops of ``crop`` x ``crop`` every
``stride`` pixels, the last row and column of windows aligned to the image border; each
window's prediction adds a one-hot vote (or the method's ``scores``, when it has them) to
every pixel it covers, and the class with the most is the answer. Memory is bounded by the
crop, whatever the image size.
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


def predict_batch(model, images: torch.Tensor, labels: torch.Tensor, num_classes: int, mode: str = "whole",
                  crop: int = 0, stride: int = 0, **options) -> torch.Tensor:
    """One batch through ``model.predict``, whole or by sliding window; oracle methods get the labels."""
    extra = {"labels": labels} if getattr(model, "uses_labels", False) else {}
    if mode == "slide":
        return slide_predict(model, images, num_classes, crop, stride, **extra, **options)
    return model.predict(images, **extra, **options)
