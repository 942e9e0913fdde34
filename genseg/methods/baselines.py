"""Discriminative baselines from segmentation_models_pytorch with timm (``tu-``) encoders.

Random initialisation by default. ``pretrained_file`` names a local timm checkpoint
(safetensors or a state dict) loaded through timm's ``pretrained_cfg_overlay`` -- never a
hub download.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import segmentation_models_pytorch as smp

from .base import PixelClassifier


@dataclass(frozen=True)
class SmpOptions:
    encoder: str = "tu-resnet18"
    pretrained_file: str = ""
    encoder_depth: int = 5
    output_stride: int = 16


def encoder_kwargs(options: SmpOptions) -> dict:
    """Arguments for an smp model's encoder: local pretrained weights or none."""
    if not options.pretrained_file:
        return {"encoder_weights": None}
    path = Path(options.pretrained_file).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"model.pretrained_file {path} does not exist; expected a timm checkpoint "
            f"(.safetensors or a torch state dict) for encoder {options.encoder!r}"
        )
    if not options.encoder.startswith("tu-"):
        raise ValueError(f"model.pretrained_file needs a timm encoder ('tu-...'), got {options.encoder!r}")
    return {"encoder_weights": True, "pretrained_cfg_overlay": {"file": str(path)}}


def build_deeplabv3plus(options: SmpOptions, num_classes: int, ignore_index: int) -> PixelClassifier:
    """DeepLabV3+ (Chen et al., ECCV 2018): atrous encoder, ASPP, a light decoder."""
    net = smp.DeepLabV3Plus(
        encoder_name=options.encoder,
        encoder_depth=options.encoder_depth,
        encoder_output_stride=options.output_stride,
        classes=num_classes,
        **encoder_kwargs(options),
    )
    return PixelClassifier(net, num_classes, ignore_index)
