"""Class centroids (category encodings) shared by FlowSeg and the GSS maskige palettes.

Every encoding is deterministic for (name, num_classes, seed) and returns an (N, D) float
tensor in [-1, 1]; ``nearest_centroid`` decodes a (B, D, H, W) map by nearest centroid in
chunks so memory stays under a set budget.

- ``kronecker``: c_k = frac(k * (sqrt 2, sqrt 3, sqrt 5)), k = 1..N, rescaled per axis to
  [-1, 1] (FlowSeg's quasi-random centroids; k starts at 1 so no centroid sits at frac 0).
- ``r3``: the same with alpha = (1/g, 1/g^2, 1/g^3), g the real root of x^4 = x + 1
  (Roberts' generalised golden ratio), offset 0.5.
- ``random``: seeded uniform in [-1, 1]^3.
- ``grid``: a regular RGB grid with L = max(2, ceil(N^(1/3))) levels per channel, N points
  taken evenly along the grid order (SymmFlow uses L = 6, 216 colours).
- ``maskige``: GSS-FF's maximal-distance palette (the official ADE20K recipe for N = 150, MSeg
  for N = 194, an even grid sized for N otherwise) with seeded jitter, mapped to [-1, 1].
- ``bits``: analog bits, D = ceil(log2 N) dimensions of +-1.
- ``onehot``: D = N, +1 at the class, -1 elsewhere.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch

ENCODINGS = ("kronecker", "r3", "random", "grid", "maskige", "bits", "onehot")

# GSS-FF palette recipes (fudan-zvg/GSS): per-channel ranges, jitter range, colours dropped.
MASKIGE_RECIPES = {
    "ade20k": {"ranges": (range(15, 240, 51), range(16, 239, 40), range(17, 238, 45)), "jitter": (-15, 15), "drop": 0},
    "mseg": {"ranges": (range(15, 255, 55), range(16, 255, 51), range(17, 255, 33)), "jitter": (-15, 0), "drop": 6},
}


def _rescale(points: np.ndarray) -> np.ndarray:
    """Per axis, min..max -> -1..1 (axes with a single value map to 0)."""
    lo, hi = points.min(0), points.max(0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return np.where(hi > lo, 2 * (points - lo) / span - 1, 0.0)


def kronecker(n: int) -> np.ndarray:
    alpha = np.sqrt([2.0, 3.0, 5.0])
    return _rescale(np.mod(np.arange(1, n + 1)[:, None] * alpha, 1.0))


def r3(n: int) -> np.ndarray:
    g = 1.2207440846057596  # real root of x^4 = x + 1
    alpha = np.array([1 / g, 1 / g**2, 1 / g**3])
    return _rescale(np.mod(0.5 + np.arange(1, n + 1)[:, None] * alpha, 1.0))


def grid(n: int) -> np.ndarray:
    levels = max(2, math.ceil(round(n ** (1 / 3), 9)))
    values = np.linspace(-1, 1, levels)
    points = np.array(list(itertools.product(values, repeat=3)))
    index = np.round(np.linspace(0, len(points) - 1, n)).astype(int)
    return points[index]


def even_grid_counts(n: int) -> tuple[int, int, int]:
    """Per-channel level counts r <= g <= b with r * g * b >= n: fewest levels on the busiest
    channel (the largest grid step), then fewest colours."""
    top = max(2, math.ceil(round(n ** (1 / 3), 9)))
    while True:
        options = [(r * g * top, (r, g, top)) for r in range(1, top + 1) for g in range(r, top + 1) if r * g * top >= n]
        if options:
            return min(options)[1]
        top += 1


def maskige_palette(n: int, seed: int = 0, recipe: str | None = None) -> np.ndarray:
    """GSS-FF colours in 0..255 (uint8), (N, 3): an even RGB grid with seeded jitter.

    ``ade20k`` and ``mseg`` are the official recipes (150 and 194 colours; fewer classes take
    the first N). ``even`` (the default for any other N) applies the same principle to N
    classes: the smallest even grid with at least N points, levels from 15 to 240, jitter
    +-15, so colours stay maximally apart (the ADE20K recipe's first 12 colours would all
    share R < 30, 17 levels apart at worst).
    """
    if recipe is None:
        recipe = {150: "ade20k", 194: "mseg"}.get(n, "even")
    if recipe == "even":
        counts = even_grid_counts(n)
        spec = {"ranges": tuple(np.linspace(15, 240, c).round().astype(int) if c > 1 else [128] for c in counts), "jitter": (-15, 15), "drop": 0}
    else:
        spec = MASKIGE_RECIPES[recipe]
    grid_points = np.array(list(itertools.product(*spec["ranges"])))[spec["drop"] :]
    if n > len(grid_points):
        raise ValueError(f"maskige palette recipe {recipe!r} has {len(grid_points)} colours, {n} classes asked")
    lo, hi = spec["jitter"]
    jitter = np.random.default_rng(seed).integers(lo, hi + 1, size=grid_points.shape)
    return np.clip(grid_points + jitter, 0, 255)[:n].astype(np.uint8)


def bits(n: int) -> np.ndarray:
    dims = max(1, math.ceil(math.log2(n)))
    codes = (np.arange(n)[:, None] >> np.arange(dims)[::-1]) & 1
    return codes * 2.0 - 1.0


def onehot(n: int) -> np.ndarray:
    return np.eye(n) * 2.0 - 1.0


def centroids(name: str, num_classes: int, seed: int = 0) -> torch.Tensor:
    """(N, D) float32 class centroids for encoding ``name``."""
    if num_classes < 2:
        raise ValueError(f"need at least 2 classes, got {num_classes}")
    if name == "kronecker":
        points = kronecker(num_classes)
    elif name == "r3":
        points = r3(num_classes)
    elif name == "random":
        points = np.random.default_rng(seed).uniform(-1, 1, size=(num_classes, 3))
    elif name == "grid":
        points = grid(num_classes)
    elif name == "maskige":
        points = maskige_palette(num_classes, seed) / 127.5 - 1.0
    elif name == "bits":
        points = bits(num_classes)
    elif name == "onehot":
        points = onehot(num_classes)
    else:
        raise ValueError(f"unknown encoding {name!r}; known encodings: {', '.join(ENCODINGS)}")
    return torch.as_tensor(points, dtype=torch.float32)


def min_pairwise_distance(points: torch.Tensor) -> float:
    """Smallest Euclidean distance between two distinct centroids."""
    d = torch.cdist(points.double(), points.double())
    d.fill_diagonal_(float("inf"))
    return d.min().item()


def encoding_min_distance(name: str, num_classes: int, seed: int = 0) -> float:
    """min_{i != j} ||c_i - c_j||_2 of encoding ``name`` at N = ``num_classes``, in the centroids'
    own space ([-1, 1]^D, as FlowSeg uses them; halve it for [0, 1]^D)."""
    return min_pairwise_distance(centroids(name, num_classes, seed))


def nearest_centroid(x: torch.Tensor, points: torch.Tensor, max_bytes: int = 64 * 2**20) -> torch.Tensor:
    """argmin_k ||x_p - c_k||^2 for every pixel of ``x`` (B, D, H, W) -> (B, H, W) int64.

    Pixels are processed in chunks of at most ``max_bytes // (4 * N)``, so the distance
    buffer never exceeds ``max_bytes`` (N = 171 at 512 x 512: 64 MB instead of 180 MB).
    """
    b, d, h, w = x.shape
    flat = x.permute(0, 2, 3, 1).reshape(-1, d)
    points = points.to(flat)
    sq = (points * points).sum(1)
    chunk = max(1, max_bytes // (4 * points.shape[0]))
    out = torch.empty(flat.shape[0], dtype=torch.int64, device=x.device)
    for start in range(0, flat.shape[0], chunk):
        part = flat[start : start + chunk]
        # ||x||^2 is the same for every k and does not change the argmin.
        out[start : start + chunk] = torch.addmm(sq, part, points.T, alpha=-2).argmin(1)
    return out.view(b, h, w)
