"""Checkpoints: one safetensors file, written atomically (tensors, and the JSON state in its metadata).

``<stem>.safetensors`` holds ``model.*``, ``ema.*`` (the EMA copy of the weights, when the
run keeps one) and ``optim.<param>.<name>`` tensors, the torch CPU RNG state and, when the model
is on an accelerator, that device's RNG state (``rng.accelerator``, its device type in the
metadata; restored into the device the resumed run uses; ranks 1.. of a multi-process run under
``rng.rank<r>.*``); its metadata ``state`` holds the step, the optimizer's param groups, the
scheduler, the numpy/python RNG states and the loop's extras (config hash, validation curve,
counters). ``<stem>.json`` is a readable copy written after it; loading never needs it (older
checkpoints, whose state lived only there, still load). Nothing here unpickles.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, safe_open, save_file

from ..io import atomic_path, write_json


def save_weights(path: Path, model: torch.nn.Module, metadata: dict[str, str] | None = None) -> None:
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata or {})


def load_weights(path: Path, model: torch.nn.Module, prefix: str = "") -> None:
    """Load ``prefix``-ed tensors into ``model`` strictly; errors name the file."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"weights file {path} does not exist (expected safetensors)")
    tensors = load_file(str(path))
    if prefix:
        tensors = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise RuntimeError(f"{path} does not match the model: {err}") from None


def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """This process's torch RNG state and, on an accelerator, that device's."""
    state = {"torch": torch.get_rng_state()}
    if device.type != "cpu":
        module = torch.get_device_module(device.type)
        if hasattr(module, "get_rng_state"):
            state["accelerator"] = module.get_rng_state(device).contiguous().cpu()
    return state


def _rng_prefix(rank: int) -> str:
    return "rng." if rank == 0 else f"rng.rank{rank}."


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be written (non-finite tensors) or read (truncated, foreign, torn)."""


def non_finite(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Names of floating-point tensors holding NaN or inf."""
    return [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]


def save_checkpoint(stem: Path, *, step: int, model, optimizer, scheduler, ema=None, extra: dict | None = None,
                    rng: list[dict] | None = None) -> None:
    """One file, one atomic rename: a crash at any instant leaves the previous checkpoint or this one.

    The tensors and the JSON state (step, param groups, scheduler, python/numpy RNG, ``extra``) go
    into ``<stem>.safetensors`` (the state in its metadata); ``<stem>.json`` is a readable copy
    written after it. ``rng``: every rank's :func:`rng_state` in a multi-process run (rank 0 under
    the plain keys). Refuses (CheckpointError) to write non-finite tensors, so a diverged run keeps
    its last good checkpoint."""
    opt_state = optimizer.state_dict()
    tensors = {f"model.{k}": v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    if ema is not None:
        tensors.update({f"ema.{k}": v.detach().contiguous().cpu() for k, v in ema.state_dict().items()})
    for param_id, state in opt_state["state"].items():
        for name, value in state.items():
            tensors[f"optim.{param_id}.{name}"] = torch.as_tensor(value).detach().contiguous().cpu()
    bad = non_finite(tensors)
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise CheckpointError(f"step {step}: non-finite values in {shown}; {stem}.safetensors not written (the previous one is kept)")
    device = _device_of(model)
    for rank, states in enumerate(rng or [rng_state(device)]):
        tensors.update({_rng_prefix(rank) + name: value for name, value in states.items()})
    np_state = np.random.get_state()
    state = {
        "step": step,
        "param_groups": opt_state["param_groups"],
        "scheduler": scheduler.state_dict(),
        "rng": {"python": _listify(random.getstate()), "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]]},
        **(extra or {}),
    }
    metadata = {"step": str(step), "state": json.dumps(state, default=_json_value)}
    if device.type != "cpu" and "rng.accelerator" in tensors:
        metadata["rng_accelerator"] = device.type
    with atomic_path(stem.with_suffix(".safetensors")) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    write_json(stem.with_suffix(".json"), state)  # a copy for people and tools; loading reads the safetensors


def has_checkpoint(stem: Path) -> bool:
    return stem.with_suffix(".safetensors").exists()


def checkpoint_state(stem: Path) -> dict:
    """The JSON state stored in ``<stem>.safetensors`` (older checkpoints: the ``.json`` beside it,
    checked against the step in the weights); CheckpointError naming the file if it is unreadable."""
    weights = stem.with_suffix(".safetensors")
    try:
        with safe_open(str(weights), framework="pt") as f:
            metadata = f.metadata() or {}
    except Exception as err:  # safetensors raises its own error types for truncated or foreign files
        raise CheckpointError(
            f"checkpoint {weights} is unreadable ({err}); it is truncated or not a genseg checkpoint. "
            "Delete it (and the .json beside it) to restart the run from step 0"
        ) from None
    if "state" in metadata:
        return json.loads(metadata["state"])
    legacy = stem.with_suffix(".json")
    if "step" not in metadata or not legacy.exists():
        raise CheckpointError(f"checkpoint {weights} has no training state (expected a genseg checkpoint with 'state' metadata)")
    state = json.loads(legacy.read_text())
    if int(metadata["step"]) != state["step"]:
        raise CheckpointError(f"{weights} is from step {metadata['step']} but {legacy} says {state['step']}")
    return state


def load_checkpoint(stem: Path, *, model, optimizer, scheduler, ema=None, rank: int = 0) -> dict:
    """Restore model (and its EMA copy), optimizer, scheduler and RNG (``rank``'s, in a multi-process
    run) in place; returns the JSON state."""
    state = checkpoint_state(stem)
    weights = stem.with_suffix(".safetensors")
    with safe_open(str(weights), framework="pt") as f:
        metadata = f.metadata() or {}
    tensors = load_file(str(weights))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True)
    if ema is not None:
        ema_state = {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}
        ema.load_state_dict(ema_state or model.state_dict(), strict=True)  # a checkpoint from before EMA was on: start from the weights
    opt_state: dict = {"state": {}, "param_groups": state["param_groups"]}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, param_id, name = key.split(".", 2)
            opt_state["state"].setdefault(int(param_id), {})[name] = value
    optimizer.load_state_dict(opt_state)
    scheduler.load_state_dict(state["scheduler"])
    prefix = _rng_prefix(rank)
    if prefix + "torch" in tensors:  # another rank count's checkpoint lacks this rank's: it keeps its seed's stream
        torch.set_rng_state(tensors[prefix + "torch"])
    device = _device_of(model)
    # The accelerator's RNG, when saved from the same kind of device (older checkpoints have none).
    if prefix + "accelerator" in tensors and metadata.get("rng_accelerator") == device.type != "cpu":
        module = torch.get_device_module(device.type)
        if hasattr(module, "set_rng_state"):
            module.set_rng_state(tensors[prefix + "accelerator"], device)
    random.setstate(_tuplify(state["rng"]["python"]))
    kind, keys, *rest = state["rng"]["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), *rest))
    return state


def remove_checkpoint(stem: Path) -> None:
    for suffix in (".safetensors", ".json"):
        stem.with_suffix(suffix).unlink(missing_ok=True)


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete ``*.tmp-<pid>`` files left by killed atomic writes (call while holding the folder's lock)."""
    stale = [p for p in Path(folder).glob("*.tmp-*") if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def _json_value(value):
    return value.item() if hasattr(value, "item") else str(value)


def _device_of(model) -> torch.device:
    """The device of the model's first parameter (or buffer); the CPU for an empty model."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _listify(value):
    return [_listify(v) for v in value] if isinstance(value, (tuple, list)) else value


def _tuplify(value):
    return tuple(_tuplify(v) for v in value) if isinstance(value, list) else value
