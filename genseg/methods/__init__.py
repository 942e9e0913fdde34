"""Methods behind one interface (:class:`SegmentationMethod`); ``build_method`` makes one from config.

``METHODS`` is the method table: config name -> :class:`MethodSpec` (options dataclass,
builder, display name, training stage, oracle flag, sweeps, the tables it feeds, its uncertainty), each spec
defined in its method's module. Adding a method is one module and one entry here. Options
are checked strictly, so a typo in ``model.*`` names the key and the allowed ones.
"""

from __future__ import annotations

from typing import Any

from ..config import ConfigError, ModelConfig, from_dict
from .base import SegmentationMethod
from .baselines import DEEPLABV3PLUS_SPEC, SEGFORMER_SPEC, UPERNET_SPEC
from .flowseg.method import FLOWSEG_SPEC
from .gss.method import GSS_SPEC, MASKIGE_SPEC, VQVAE_SPEC
from .mask2former import MASK2FORMER_SPEC
from .maskformer import MASKFORMER_SPEC
from .ocrnet import OCRNET_SPEC
from .spec import MethodSpec

METHODS: dict[str, MethodSpec] = {
    "deeplabv3plus": DEEPLABV3PLUS_SPEC,
    "segformer": SEGFORMER_SPEC,
    "upernet": UPERNET_SPEC,
    "maskformer": MASKFORMER_SPEC,
    "mask2former": MASK2FORMER_SPEC,
    "ocrnet": OCRNET_SPEC,
    "flowseg": FLOWSEG_SPEC,
    "vqvae": VQVAE_SPEC,
    "maskige": MASKIGE_SPEC,
    "gss": GSS_SPEC,
}


def method_spec(method: str) -> MethodSpec:
    """The spec of ``method`` (a ``model.method`` value); an unknown one raises :class:`ConfigError`."""
    if method not in METHODS:
        raise ConfigError(f"unknown model.method {method!r}; known methods: {', '.join(METHODS)}")
    return METHODS[method]


def methods_feeding(table: str) -> list[str]:
    """The methods whose runs feed the method-specific report table or figure ``table``."""
    return [name for name, spec in METHODS.items() if table in spec.tables]


def method_options(model: ModelConfig) -> Any:
    """The method's typed options; unknown methods or keys raise :class:`ConfigError`."""
    options = from_dict(method_spec(model.method).options, model.options, "model")
    if hasattr(options, "check"):
        try:
            options.check()
        except ValueError as err:
            raise ConfigError(str(err)) from None
    return options


def build_method(model: ModelConfig, num_classes: int, ignore_index: int = 255) -> SegmentationMethod:
    return method_spec(model.method).build(method_options(model), num_classes, ignore_index)
