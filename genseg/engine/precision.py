"""Mixed precision and device speed settings (``train.precision``, ``tf32``, fused AdamW, ``compile``,
``activation_checkpointing``), device-generic."""

from __future__ import annotations

import contextlib

import torch

from ..config import ConfigError

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto``: ``bf16`` on an accelerator whose device module says it supports bfloat16, ``fp32``
    elsewhere (the CPU, where bf16 autocast is slower); any other value as it is."""
    if precision != "auto":
        return precision
    if device.type == "cpu" or not torch.amp.is_autocast_available(device.type):
        return "fp32"
    supported = getattr(torch.get_device_module(device.type), "is_bf16_supported", None)
    return "bf16" if supported is not None and supported() else "fp32"


def check_precision(precision: str, device: torch.device, key: str = "train.precision") -> None:
    """ConfigError naming ``key`` (the config key that chose ``precision``) and the device when the
    device cannot run it."""
    if precision == "fp32":
        return
    if not torch.amp.is_autocast_available(device.type):
        raise ConfigError(f"{key} {precision!r}: device {device} has no autocast; use fp32")
    module = torch.get_device_module(device.type) if device.type != "cpu" else None
    supported = getattr(module, "is_bf16_supported", None)
    if precision == "bf16" and supported is not None and not supported():
        raise ConfigError(f"{key} 'bf16': device {device} does not support bfloat16; use fp16 or fp32")


def eval_precision(cfg) -> tuple[str, str]:
    """(precision, the key that set it) of a run's evaluation: ``eval.precision``, else ``train.precision``."""
    return (cfg.eval.precision, "eval.precision") if cfg.eval.precision else (cfg.train.precision, "train.precision")


def autocast(precision: str, device: torch.device):
    """``torch.autocast`` to the precision's dtype; no autocast for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[precision])


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """Loss scaling for fp16; a disabled scaler (plain backward and step) otherwise."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def set_tf32(enabled: bool, device: torch.device) -> None:
    """TF32 matmuls and cuDNN convolutions on CUDA(-like) devices; nothing elsewhere."""
    if device.type != "cpu" and torch.get_device_module(device.type) is torch.cuda:
        torch.backends.cuda.matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled


def fused_optimizer(device: torch.device) -> bool:
    """Fused AdamW on accelerators; the CPU keeps the default (foreach) implementation."""
    return device.type != "cpu"


def speed_options(model: torch.nn.Module, cfg) -> None:
    """``train.activation_checkpointing`` (the method's ``set_grad_checkpointing``; a ConfigError naming the key
    and the method when it has no part that supports it) and ``train.compile`` (the training loss through
    ``torch.compile``: an instance attribute, so weights and checkpoint keys stay the module's own)."""
    train = cfg.train
    if train.activation_checkpointing:
        try:
            model.set_grad_checkpointing(True)
        except (NotImplementedError, AttributeError) as err:
            raise ConfigError(f"train.activation_checkpointing: method {cfg.model.method!r} cannot checkpoint activations "
                              f"({err}); set it to false") from None
    if train.compile:
        model.training_loss = torch.compile(model.training_loss, backend=train.compile_backend)
