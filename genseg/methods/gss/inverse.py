"""Maskige inverses X^-1 (GSS Sec. 3.2): maskige (B, 3, H, W) in [0, 1] -> class logits (B, K, H, W).

- ``ff``: training-free nearest colour, logits_k = -||x - beta_k||^2 / tau (argmax = argmin distance).
- ``ft``: a small trained CNN (3 layers), cross-entropy.
- ``ft-w``: 1x1 conv 3 -> dim, shifted-window transformer blocks (timm's Swin block), LayerNorm,
  1x1 conv dim -> K.
- ``tf``: the palette beta is learned, each class picking one of a set of candidate colours
  through hard Gumbel-softmax (straight-through); the inverse stays nearest colour.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from .layers import SwinStack

INVERSES = ("ff", "ft", "ft-w", "tf")


def colour_logits(maskige: torch.Tensor, colours: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """-||x - beta_k||^2 / tau per pixel, (B, 3, H, W) -> (B, K, H, W)."""
    d2 = (maskige.unsqueeze(1) - colours.view(1, -1, 3, 1, 1)).pow(2).sum(2)
    return -d2 / tau


class ConvInverse(nn.Module):
    """FT: conv3x3 -> ReLU -> conv3x3 -> ReLU -> conv1x1 to K logits."""

    def __init__(self, num_classes: int, width: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, num_classes, 1),
        )

    def forward(self, maskige):
        return self.net(maskige)


class WindowInverse(nn.Module):
    """FT-W: 1x1 conv 3 -> dim, ``depth`` Swin blocks (window ``window``, every second one shifted), LN, 1x1 -> K."""

    def __init__(self, num_classes: int, dim: int = 128, depth: int = 2, heads: int = 4, window: int = 7, ffn: int = 256):
        super().__init__()
        self.stem = nn.Conv2d(3, dim, 1)
        self.blocks = SwinStack(dim, depth, heads, window, ffn / dim)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Conv2d(dim, num_classes, 1)

    def forward(self, maskige):
        x = self.blocks(self.stem(maskige))
        return self.head(self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))


def candidate_colours(levels: int = 6) -> torch.Tensor:
    """An even RGB grid with ``levels`` values per channel, (levels^3, 3) in [0, 1]."""
    values = torch.linspace(0, 1, levels)
    return torch.tensor(list(itertools.product(values.tolist(), repeat=3)))


class LearnedPalette(nn.Module):
    """TF: beta_k = onehot(gumbel_softmax(a_k, hard)) @ candidates, initialised at the nearest candidate to ``init``."""

    def __init__(self, init: torch.Tensor, levels: int = 6, tau: float = 1.0):
        super().__init__()
        self.register_buffer("candidates", candidate_colours(levels), persistent=False)
        start = torch.cdist(init, self.candidates).argmin(1)
        self.logits = nn.Parameter(F.one_hot(start, len(self.candidates)).float() * 4.0)
        self.tau = tau

    def forward(self) -> torch.Tensor:
        if self.training:
            pick = F.gumbel_softmax(self.logits, tau=self.tau, hard=True)
        else:
            pick = F.one_hot(self.logits.argmax(1), len(self.candidates)).to(self.logits)
        return pick @ self.candidates

    def draw(self, labels: torch.Tensor, ignore_index: int) -> torch.Tensor:
        """A differentiable maskige: onehot(labels) @ beta (ignore pixels: black)."""
        beta = self()
        valid = (labels != ignore_index).unsqueeze(1)
        onehot = F.one_hot(labels.clamp(0, beta.shape[0] - 1), beta.shape[0]).permute(0, 3, 1, 2).to(beta)
        return torch.einsum("bkhw,kc->bchw", onehot, beta) * valid


def build_inverse(name: str, num_classes: int, width: int) -> nn.Module | None:
    """The trainable inverse network for ``name`` (None for the colour-distance inverses)."""
    if name == "ft":
        return ConvInverse(num_classes, width)
    if name == "ft-w":
        return WindowInverse(num_classes, dim=width)
    if name in ("ff", "tf"):
        return None
    raise ValueError(f"unknown maskige inverse {name!r}; known inverses: {', '.join(INVERSES)}")


