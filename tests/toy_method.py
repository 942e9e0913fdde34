"""A toy method, as a new method is added: options, builder and spec in one module."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from genseg.methods.base import PixelClassifier
from genseg.methods.spec import MethodSpec


@dataclass(frozen=True)
class ToyOptions:
    """One 1x1 convolution from RGB to class logits."""

    bias: bool = True


def build_toy(options: ToyOptions, num_classes: int, ignore_index: int) -> PixelClassifier:
    return PixelClassifier(nn.Conv2d(3, num_classes, 1, bias=options.bias), num_classes, ignore_index, size_divisor=1)


TOY_SPEC = MethodSpec(ToyOptions, build_toy, "ToyNet")
