"""The one interface the engine calls: a loss on a training batch, labels for a test batch."""

from __future__ import annotations

import inspect
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SegmentationMethod(nn.Module):
    """Images arrive as (B, 3, H, W) floats in [0, 1]; labels as (B, H, W) int64 with
    ``ignore_index`` for unlabelled pixels. Each method normalises its own input."""

    num_classes: int
    ignore_index: int

    def training_loss(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def predict(self, images: torch.Tensor, **options) -> torch.Tensor:
        """Class ids (B, H, W) int64 at the input resolution."""
        raise NotImplementedError

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Per-pixel class probabilities (B, C, H, W) at the input resolution (spec ``uncertainty: softmax``)."""
        raise NotImplementedError(f"{type(self).__name__} gives no class probabilities")

    def check_predict_options(self, options: dict) -> None:
        """ConfigError naming ``eval.predict`` unless ``options`` are keyword options of ``predict``
        (methods add range checks); called before training, whose validation uses them."""
        from ..config import ConfigError

        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        known = [n for n, p in inspect.signature(self.predict).parameters.items() if p.kind in kinds and n not in ("images", "labels")]
        unknown = sorted(set(options) - set(known))
        if unknown:
            takes = f"it takes {', '.join(known)}" if known else "it takes none"
            raise ConfigError(f"eval.predict: {type(self).__name__}.predict has no option {', '.join(map(repr, unknown))}; {takes}")
    def set_grad_checkpointing(self, enable: bool = True) -> list[str]:
        """timm's convention: while training, the blocks of every part that supports it (timm models,
        PixNerd, transformers models) recompute their activations in the backward pass. Returns the
        parts' names; NotImplementedError when none does (e.g. smp's own encoders, HRNet)."""
        names = set_grad_checkpointing(self, enable)
        if not names:
            raise NotImplementedError(f"{type(self).__name__} has no part that supports activation checkpointing")
        return names


def set_grad_checkpointing(module: nn.Module, enable: bool, prefix: str = "") -> list[str]:
    """Switch activation checkpointing on the outermost submodules that offer it (timm's
    ``set_grad_checkpointing``; transformers' ``gradient_checkpointing_enable``, non-reentrant);
    returns their names. A module whose method refuses (timm's HRNet asserts) is looked into instead."""
    names = []
    for name, child in module.named_children():
        path = f"{prefix}{name}"
        if getattr(child, "supports_gradient_checkpointing", False) and hasattr(child, "gradient_checkpointing_enable"):
            if enable:
                child.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            else:
                child.gradient_checkpointing_disable()
            names.append(path)
            continue
        if callable(getattr(child, "set_grad_checkpointing", None)):
            try:
                child.set_grad_checkpointing(enable)
                names.append(path)
                continue
            except (AssertionError, NotImplementedError):
                pass
        names += set_grad_checkpointing(child, enable, f"{path}.")
    return names


class ImageNorm(nn.Module):
    """(x - mean) / std with fixed ImageNet statistics, as timm encoders expect."""

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def pad_to_multiple(x: torch.Tensor, divisor: int, value: float = 0.0) -> torch.Tensor:
    """Pad H and W (bottom, right) with ``value`` (default zero) up to multiples of ``divisor`` (< 1: 1)."""
    h, w = x.shape[-2:]
    divisor = max(divisor, 1)
    ph, pw = (-h) % divisor, (-w) % divisor
    return F.pad(x, (0, pw, 0, ph), value=value) if ph or pw else x


class PixelClassifier(SegmentationMethod):
    """A network that maps images to per-pixel class logits, trained with cross-entropy."""

    def __init__(self, net: nn.Module, num_classes: int, ignore_index: int = 255, size_divisor: int = 32):
        super().__init__()
        self.net = net
        self.norm = ImageNorm()
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.size_divisor = size_divisor

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[-2:]
        out = self.net(pad_to_multiple(self.norm(images), self.size_divisor))[..., :h, :w]
        return out

    def training_loss(self, images, labels):
        loss = F.cross_entropy(self.logits(images), labels, ignore_index=self.ignore_index)
        return loss, {"loss": loss.item()}

    @torch.no_grad()
    def predict(self, images, **options):
        if options:
            raise ValueError(f"{type(self).__name__}.predict takes no options, got {sorted(options)}")
        return self.logits(images).argmax(1)

    @torch.no_grad()
    def probabilities(self, images):
        """softmax(logits) over the classes."""
        return self.logits(images).float().softmax(1)


def check_timm_file(path: str, encoder: str, key: str = "model.pretrained_file") -> Path:
    """``path`` as a Path if it is a readable safetensors file; else an error naming ``key``, the file and the timm model."""
    from safetensors import safe_open

    file = Path(path).expanduser()
    expected = f"expected a safetensors file of timm model {encoder!r} (see `genseg weights`)"
    if not file.is_file():
        raise FileNotFoundError(f"{key} {file} does not exist; {expected}")
    try:
        with safe_open(str(file), framework="pt") as f:
            f.keys()
    except Exception as err:  # noqa: BLE001 -- any parser error: not a safetensors file
        raise ValueError(f"{key} {file} is not a readable safetensors file ({type(err).__name__}: {err}); {expected}") from None
    return file


def check_timm_fits(file: Path, encoder: str, key: str, kwargs: dict | None = None) -> None:
    """Every tensor of the timm model (its classifier aside) in ``file`` with its shape; else an error naming the key.
    (timm itself loads a features_only model non-strictly: a file of another model would half load.)"""
    from ..weights import file_shapes, first_mismatch

    build = {k: v for k, v in (kwargs or {}).items() if k not in ("out_indices", "feature_location", "feature_cls", "flatten_sequential")}
    try:
        with torch.device("meta"):  # shapes only: no memory, no init
            full = timm.create_model(encoder, pretrained=False, **build)
    except RuntimeError:  # a model that reads a tensor value while it builds
        full = timm.create_model(encoder, pretrained=False, **build)
    classifier = full.pretrained_cfg.get("classifier") or ()
    ignore = tuple(f"{c}." for c in ([classifier] if isinstance(classifier, str) else classifier))
    expected = {k: tuple(v.shape) for k, v in full.state_dict().items()}
    problem = first_mismatch(expected, file_shapes(file), f"timm model {encoder!r}", f"{key} {file}", ignore)
    if problem:
        raise ValueError(f"{problem}; expected a safetensors file of timm model {encoder!r}")


def timm_features(encoder: str, pretrained_file: str = "", key: str = "model.pretrained_file", **kwargs) -> nn.Module:
    """A timm backbone with ``features_only=True``; weights only from a local ``pretrained_file``
    (checked first: errors name ``key`` and the file)."""
    if not pretrained_file:
        return timm.create_model(encoder, pretrained=False, features_only=True, **kwargs)
    file = check_timm_file(pretrained_file, encoder, key)
    check_timm_fits(file, encoder, key, kwargs)
    try:
        return timm.create_model(encoder, pretrained=True, features_only=True, pretrained_cfg_overlay={"file": str(file)}, **kwargs)
    except RuntimeError as err:  # load_state_dict: missing, unexpected or reshaped keys
        first = str(err).splitlines()[1].strip() if len(str(err).splitlines()) > 1 else str(err)
        raise ValueError(f"{key} {file} does not fit timm model {encoder!r}: {first}") from None
