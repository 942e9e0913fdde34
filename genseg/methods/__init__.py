"""Methods behind one interface (:class:`SegmentationMethod`); ``build_method`` makes one from config.

``METHODS`` maps a config name to (options dataclass, builder). Options are checked
strictly, so a typo in ``model.*`` names the key and the allowed ones.
"""

from __future__ import annotations

from typing import Any, Callable

from ..config import ConfigError, ModelConfig, from_dict
from . import baselines
from .base import SegmentationMethod
from .flowseg.method import FlowSegOptions, build_flowseg
from .gss.method import (
    GSSOptions,
    MaskigeOptions,
    VQVAEOptions,
    build_gss,
    build_maskige,
    build_vqvae,
)
from .mask2former import Mask2FormerOptions, build_mask2former
from .maskformer import MaskFormerOptions, build_maskformer
from .ocrnet import OCRNetOptions, build_ocrnet

METHODS: dict[str, tuple[type, Callable[..., SegmentationMethod]]] = {
    "deeplabv3plus": (baselines.SmpOptions, baselines.build_deeplabv3plus),
    "segformer": (baselines.SegformerOptions, baselines.build_segformer),
    "upernet": (baselines.UPerNetOptions, baselines.build_upernet),
    "maskformer": (MaskFormerOptions, build_maskformer),
    "mask2former": (Mask2FormerOptions, build_mask2former),
    "ocrnet": (OCRNetOptions, build_ocrnet),
    "flowseg": (FlowSegOptions, build_flowseg),
    "vqvae": (VQVAEOptions, build_vqvae),
    "maskige": (MaskigeOptions, build_maskige),
    "gss": (GSSOptions, build_gss),
}


def method_options(model: ModelConfig) -> Any:
    """The method's typed options; unknown methods or keys raise :class:`ConfigError`."""
    if model.method not in METHODS:
        raise ConfigError(f"unknown model.method {model.method!r}; known methods: {', '.join(METHODS)}")
    options_cls, _ = METHODS[model.method]
    options = from_dict(options_cls, model.options, "model")
    if hasattr(options, "check"):
        try:
            options.check()
        except ValueError as err:
            raise ConfigError(str(err)) from None
    return options


def build_method(model: ModelConfig, num_classes: int, ignore_index: int = 255) -> SegmentationMethod:
    _, builder = METHODS[model.method]
    return builder(method_options(model), num_classes, ignore_index)
