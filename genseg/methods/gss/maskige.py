"""Maskige: a K-class mask drawn as an RGB image, x = c @ beta (GSS Eq. 2), and back.

Palettes (``beta``, (K, 3) in [0, 1]):
- ``ff``: the official maximal-distance grid with jitter (``encodings.maskige_palette``:
  ADE20K recipe for K <= 150, MSeg for K <= 194); Cityscapes' standard palette for
  ``cityscapes``.
- ``ff-r``: uniformly random colours (seeded).
Ignore pixels get one extra colour (black unless a class already owns it).

The VQ-VAE sees ``0.8 * x + 0.1`` (DALL-E's logit-Laplace mapping, :func:`to_vq_range`)
and its output comes back through ``clamp((y - 0.1) / 0.8, 0, 1)`` (:func:`from_vq_range`).
The training-free inverse (FF) is the nearest class colour, argmin_k ||x_hat - beta_k||^2.
"""

from __future__ import annotations

import numpy as np
import torch

from ...encodings import maskige_palette, nearest_centroid

PALETTES = ("ff", "ff-r", "cityscapes")

# Cityscapes' standard train-id colours (cityscapesScripts labels.py), 19 classes.
CITYSCAPES_COLOURS = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70),
    (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32),
)


def palette(name: str, num_classes: int, seed: int = 0) -> torch.Tensor:
    """(K, 3) float32 class colours in [0, 1]."""
    if name == "ff":
        colours = maskige_palette(num_classes, seed).astype(np.float64)
    elif name == "ff-r":
        colours = np.random.default_rng(seed).integers(0, 256, size=(num_classes, 3)).astype(np.float64)
    elif name == "cityscapes":
        if num_classes != len(CITYSCAPES_COLOURS):
            raise ValueError(f"the cityscapes palette has {len(CITYSCAPES_COLOURS)} colours, {num_classes} classes asked")
        colours = np.array(CITYSCAPES_COLOURS, dtype=np.float64)
    else:
        raise ValueError(f"unknown maskige palette {name!r}; known palettes: {', '.join(PALETTES)}")
    return torch.as_tensor(colours / 255.0, dtype=torch.float32)


def ignore_colour(colours: torch.Tensor) -> torch.Tensor:
    """The extra colour for ignore pixels: black, or the grid corner farthest from every class."""
    corners = torch.tensor([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=colours.dtype)
    nearest = torch.cdist(corners, colours.to(corners)).min(1).values
    return corners[0] if nearest[0] > 0.05 else corners[nearest.argmax()]


def to_maskige(labels: torch.Tensor, colours: torch.Tensor, ignore_index: int = 255) -> torch.Tensor:
    """(B, H, W) labels -> (B, 3, H, W) maskige in [0, 1]; ignore pixels get :func:`ignore_colour`."""
    table = torch.cat([colours, ignore_colour(colours)[None]]).to(labels.device)
    index = torch.where(labels == ignore_index, colours.shape[0], labels.clamp(0, colours.shape[0] - 1))
    return table[index].permute(0, 3, 1, 2).contiguous()


def to_vq_range(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [0.1, 0.9], the input range of the DALL-E dVAE (logit-Laplace eps = 0.1)."""
    return 0.8 * x + 0.1


def from_vq_range(y: torch.Tensor) -> torch.Tensor:
    """The dVAE's output range back to [0, 1]: clamp((y - 0.1) / 0.8, 0, 1)."""
    return ((y - 0.1) / 0.8).clamp(0, 1)


def nearest_colour(maskige: torch.Tensor, colours: torch.Tensor, max_bytes: int = 64 * 2**20) -> torch.Tensor:
    """FF inverse X^-1: argmin_k ||x_hat - beta_k||^2 per pixel, (B, 3, H, W) -> (B, H, W)."""
    return nearest_centroid(maskige, colours, max_bytes)
