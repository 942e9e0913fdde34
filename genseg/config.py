"""Typed run configuration, loaded strictly from YAML or dicts.

A run is fully described by one :class:`RunConfig`. Unknown or misspelled keys are
rejected with the key's dotted path and the allowed keys; values are checked against
the field types. Method-specific options (``model.*`` besides ``method``) are checked by
the method's own options dataclass (see :mod:`genseg.methods`).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration value or key is wrong; the message names it."""


@dataclass(frozen=True)
class DataConfig:
    """Which data to read and how to augment it for training."""

    dataset: str = "synthetic"  # a layout (genseg.data.layouts) or a taxonomy (genseg.data.sources)
    root: str = ""
    num_classes: int = 0  # 0: the dataset's own; else it must have this many (the workflow generates synthetic data with it)
    roots: dict = field(default_factory=dict)  # other datasets' roots (taxonomy members, transfer targets), by name
    ignore_classes: dict = field(default_factory=dict)  # taxonomy: dataset -> [classes dropped on purpose]
    max_ignored_fraction: float = 0.05  # taxonomy: stop if a train dataset loses more labelled pixels than this
    ignored_check_images: int = 300  # images (evenly spaced) the loss is counted on; 0: all
    train_domains: tuple[str, ...] = ()
    val_domains: tuple[str, ...] = ()
    crop_size: int = 64
    scale_range: tuple[float, float] = (0.75, 1.5)
    hflip: bool = True
    photometric: bool = True
    pipeline: str = "default"  # or "mmseg": genseg.data.transforms.MmsegTransform
    resize_scale: tuple[int, int] = (2048, 512)  # mmseg: RandomResize's (long, short) scale, x scale_range
    cat_max_ratio: float = 1.0  # mmseg: RandomCrop retries a crop one class fills more than this (1: never)
    batch_size: int = 16
    num_workers: int = 0
    balance: str = "none"  # or "equal": each training dataset 1/D of the stream (genseg.data.base.StreamSampler)


@dataclass(frozen=True)
class ModelConfig:
    """``method`` picks the method; every other key is that method's option."""

    method: str = "deeplabv3plus"
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class OptimConfig:
    """AdamW or SGD with a poly schedule (to ``min_lr``) after a linear warm-up (mmsegmentation's recipe).

    ``custom_keys``: parameter-name substring -> ``{lr_mult, decay_mult}`` (mmseg's
    ``paramwise_cfg.custom_keys``: the longest matching key wins, ties alphabetically).
    ``decay_1d``: weight decay on biases and norms too (mmseg's default; norm layers x
    ``norm_decay_mult`` unless a custom key matches); false: none on any 1-D tensor."""

    optimizer: str = "adamw"  # or "sgd"
    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)  # adamw
    momentum: float = 0.9  # sgd
    nesterov: bool = False  # sgd
    iterations: int = 500
    warmup_iters: int = 50
    poly_power: float = 1.0
    min_lr: float = 0.0
    grad_clip: float = 0.0
    decay_1d: bool = False
    norm_decay_mult: float = 1.0  # with decay_1d: normalisation layers' decay multiplier (mmseg's norm_decay_mult)
    custom_keys: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TrainConfig:
    """Logging, validation and checkpoint cadence (in iterations; 0 disables); ``ema_decay`` > 0
    keeps an exponential moving average of the weights, validated, evaluated and saved in their place.

    ``precision``: ``auto`` (the default: bf16 autocast on an accelerator that supports bfloat16,
    fp32 elsewhere, so CPU results are plain fp32), ``fp32``, ``bf16`` (autocast) or ``fp16``
    (autocast + GradScaler).
    ``tf32``: TF32 matmuls and convolutions on CUDA devices (ignored elsewhere). ``accumulate``:
    micro-batches of ``data.batch_size`` per optimizer step (an iteration is one optimizer step).
    ``sync_bn``: BatchNorm statistics over all processes of a multi-process run (accelerators only).
    ``compile``: the training loss (forward and loss) through ``torch.compile`` with ``compile_backend``
    (weights and checkpoint keys unchanged). ``activation_checkpointing``: the method's blocks (transformer
    blocks, timm backbones) recompute their activations in the backward pass (timm's ``set_grad_checkpointing``);
    a method with no part that supports it is an error naming the key and the method."""

    ema_decay: float = 0.0
    log_every: int = 10
    val_every: int = 100
    val_max_images: int = 100
    checkpoint_every: int = 100
    progress: bool = True
    precision: str = "auto"
    tf32: bool = True
    channels_last: bool = False
    accumulate: int = 1
    sync_bn: bool = False
    compile: bool = False
    compile_backend: str = "inductor"  # torch.compile's backend: inductor, aot_eager, eager, ...
    activation_checkpointing: bool = False


PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class EvalConfig:
    """Inference settings; ``predict`` is passed to the method's ``predict``."""

    batch_size: int = 16
    predict: dict = field(default_factory=dict)
    mode: str = "whole"  # or "slide": windows of crop x crop every stride pixels
    crop: int = 0
    stride: int = 0
    scale: float = 1.0  # images resized by this before inference; predictions back to label size
    resize: tuple[int, int] = (0, 0)  # (long, short) > 0: images resized to fit it, ratio kept (mmseg's test Resize)
    size_divisor: int = 32  # whole mode pads images to a multiple of this
    precision: str = ""  # autocast of evaluation: fp32, bf16 or fp16; "" (default): train.precision
    num_workers: int = 0  # DataLoader worker processes of evaluation (0: load in the main process)


@dataclass(frozen=True)
class UncertaintyConfig:
    """The workflow's ``uncertainty`` block (``genseg uncertainty``): the runs of ``experiments`` with
    a seed in ``seeds`` are scored on their in-domain test domains, over the first ``max_images``
    images (0: all); a sampling method draws ``k`` label maps per image, seeds ``sample_seed`` ..
    ``sample_seed + k - 1``."""

    experiments: tuple[str, ...] = ()
    seeds: tuple[int, ...] = (0,)
    k: int = 8
    max_images: int = 100
    sample_seed: int = 0

    def check(self) -> None:
        if self.k < 1:
            raise ConfigError(f"uncertainty.k must be >= 1 (samples per image), got {self.k}")
        if self.max_images < 0:
            raise ConfigError(f"uncertainty.max_images must be >= 0 (0: every image), got {self.max_images}")
        if not self.seeds or any(s < 0 for s in self.seeds):
            raise ConfigError(f"uncertainty.seeds must be a non-empty list of integers >= 0, got {list(self.seeds)}")
        if self.sample_seed < 0:
            raise ConfigError(f"uncertainty.sample_seed must be >= 0, got {self.sample_seed}")


@dataclass(frozen=True)
class RunConfig:
    name: str = "run"
    seed: int = 0
    smoke: bool = False  # a smoke variant (workflow overlay ``smoke``): random weights allowed, flagged in outputs
    device: str = "auto"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        data = dict(data)
        model = data.get("model")
        if isinstance(model, dict) and "options" not in model:
            # Flat form in YAML: {method: x, encoder: y} -> options {encoder: y}.
            model = dict(model)
            method = model.pop("method", ModelConfig.method)
            data["model"] = {"method": method, "options": model}
        cfg = from_dict(cls, data, "")
        _check_values(cfg)
        from .methods import method_options  # the method checks its own options

        method_options(cfg.model)
        return cfg

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["model"] = {"method": self.model.method, **self.model.options}
        return _plain(out)

    def hash(self) -> str:
        """sha256 (first 16 hex digits) of the canonical JSON of the config."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _check_values(cfg: RunConfig) -> None:
    positive = {
        "data.crop_size": cfg.data.crop_size,
        "data.batch_size": cfg.data.batch_size,
        "optim.lr": cfg.optim.lr,
        "eval.batch_size": cfg.eval.batch_size,
    }
    for key, value in positive.items():
        if not 0 < value < math.inf:  # also NaN
            raise ConfigError(f"{key} must be > 0 (and finite), got {value!r}")
    non_negative = {
        "optim.weight_decay": cfg.optim.weight_decay, "optim.min_lr": cfg.optim.min_lr, "optim.grad_clip": cfg.optim.grad_clip,
        "optim.momentum": cfg.optim.momentum, "optim.poly_power": cfg.optim.poly_power,
        "optim.norm_decay_mult": cfg.optim.norm_decay_mult, "train.log_every": cfg.train.log_every,
        "train.val_every": cfg.train.val_every, "train.val_max_images": cfg.train.val_max_images,
        "train.checkpoint_every": cfg.train.checkpoint_every,
    }
    for key, value in non_negative.items():
        if not 0 <= value < math.inf:
            raise ConfigError(f"{key} must be >= 0 (and finite), got {value!r}")
    if not all(0 <= b < 1 for b in cfg.optim.betas):
        raise ConfigError(f"optim.betas must be two numbers in [0, 1), got {list(cfg.optim.betas)!r}")
    from .data.sources import known_datasets

    if cfg.data.dataset not in known_datasets():
        raise ConfigError(f"data.dataset {cfg.data.dataset!r} is not a known layout or taxonomy; known: {', '.join(known_datasets())}")
    if cfg.eval.mode not in ("whole", "slide"):
        raise ConfigError(f"eval.mode must be 'whole' or 'slide', got {cfg.eval.mode!r}")
    if not cfg.eval.scale > 0 or cfg.eval.size_divisor < 1:
        raise ConfigError(f"eval.scale must be > 0 and eval.size_divisor >= 1, got {cfg.eval.scale}, {cfg.eval.size_divisor}")
    if cfg.eval.mode == "slide" and not 0 < cfg.eval.stride <= cfg.eval.crop:
        raise ConfigError(f"eval.mode 'slide' needs eval.crop > 0 and 0 < eval.stride <= eval.crop, got crop {cfg.eval.crop}, stride {cfg.eval.stride}")
    if cfg.optim.optimizer not in ("adamw", "sgd"):
        raise ConfigError(f"optim.optimizer must be 'adamw' or 'sgd', got {cfg.optim.optimizer!r}")
    for key, mults in cfg.optim.custom_keys.items():
        if not isinstance(mults, dict) or set(mults) - {"lr_mult", "decay_mult"} or not all(
                isinstance(v, (int, float)) and v >= 0 for v in mults.values()):
            raise ConfigError(f"optim.custom_keys.{key}: expected a mapping of lr_mult and/or decay_mult to numbers >= 0, got {mults!r}")
    from .data.base import BALANCES

    if cfg.data.balance not in BALANCES:
        raise ConfigError(f"data.balance must be one of {', '.join(BALANCES)}, got {cfg.data.balance!r}")
    if cfg.data.pipeline not in ("default", "mmseg"):
        raise ConfigError(f"data.pipeline must be 'default' or 'mmseg', got {cfg.data.pipeline!r}")
    if cfg.data.num_classes < 0:
        raise ConfigError(f"data.num_classes must be >= 0 (0: the dataset's own class count), got {cfg.data.num_classes!r}")
    if not 0 <= cfg.data.max_ignored_fraction <= 1:
        raise ConfigError(f"data.max_ignored_fraction must be in [0, 1] (1 accepts any loss), got {cfg.data.max_ignored_fraction!r}")
    for dataset, names in cfg.data.ignore_classes.items():
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"data.ignore_classes.{dataset}: expected a list of class names, got {names!r}")
    if not 0 < cfg.data.cat_max_ratio <= 1 or min(cfg.data.resize_scale) < 1:
        raise ConfigError(f"data.cat_max_ratio must be in (0, 1] and data.resize_scale two sizes >= 1, got {cfg.data.cat_max_ratio!r}, {cfg.data.resize_scale!r}")
    if min(cfg.eval.resize) < 0 or (0 in cfg.eval.resize and max(cfg.eval.resize) > 0):
        raise ConfigError(f"eval.resize must be [long, short] > 0, or [0, 0] for none; got {list(cfg.eval.resize)}")
    if not 0 <= cfg.train.ema_decay < 1:
        raise ConfigError(f"train.ema_decay must be in [0, 1) (0: no EMA), got {cfg.train.ema_decay!r}")
    if cfg.train.precision not in PRECISIONS:
        raise ConfigError(f"train.precision must be one of {', '.join(PRECISIONS)}, got {cfg.train.precision!r}")
    if cfg.eval.precision not in ("", *PRECISIONS):
        raise ConfigError(f"eval.precision must be one of {', '.join(PRECISIONS)} or '' (train.precision), got {cfg.eval.precision!r}")
    if cfg.eval.num_workers < 0:
        raise ConfigError(f"eval.num_workers must be >= 0 (0: load in the main process), got {cfg.eval.num_workers!r}")
    if cfg.train.accumulate < 1:
        raise ConfigError(f"train.accumulate must be an integer >= 1 (micro-batches per optimizer step), got {cfg.train.accumulate!r}")
    if cfg.train.compile:
        import torch

        backends = torch.compiler.list_backends(exclude_tags=())
        if cfg.train.compile_backend not in backends:
            raise ConfigError(f"train.compile_backend must be one of {', '.join(backends)}, got {cfg.train.compile_backend!r}")
    lo, hi = cfg.data.scale_range
    if not 0 < lo <= hi:
        raise ConfigError(f"data.scale_range must be 0 < low <= high, got {cfg.data.scale_range!r}")
    if cfg.optim.iterations < 0 or cfg.optim.warmup_iters < 0 or cfg.data.num_workers < 0:
        raise ConfigError("optim.iterations, optim.warmup_iters and data.num_workers must be >= 0 (iterations 0: nothing to train)")


def load_run_config(path: str | Path) -> RunConfig:
    """Read a run config YAML file; errors name the file and the key."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return RunConfig.from_dict(data)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def from_dict(cls: type, data: Any, where: str) -> Any:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(str(key), names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"unknown key {_join(where, key)!r}{hint}; allowed keys: {', '.join(names)}"
        )
    kwargs = {k: _coerce(hints[k], v, _join(where, k)) for k, v in data.items()}
    return cls(**kwargs)


def _join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{where}: expected {len(args)} values, got {value!r}")
        return tuple(_coerce(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if tp is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):
            try:
                return float(value)  # YAML reads 1e-3 as a string
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively, so the dict is YAML/JSON friendly."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def merge(base: dict, override: dict) -> dict:
    """Recursive dict merge: ``override`` wins; neither input is modified."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out
