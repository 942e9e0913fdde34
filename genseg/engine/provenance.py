"""What every metrics file records: code, config, versions, seed, device, speed, memory."""

from __future__ import annotations

import platform
import resource
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import torch

_PACKAGES = ("torch", "torchvision", "timm", "segmentation-models-pytorch", "numpy", "genseg")
_REPO = Path(__file__).resolve().parents[2]


def resolve_device(name: str) -> torch.device:
    """``auto`` picks the current accelerator (CUDA, MPS, XPU ...) if any, else the CPU."""
    if name == "auto":
        acc = torch.accelerator.current_accelerator() if torch.accelerator.is_available() else None
        return acc if acc is not None else torch.device("cpu")
    return torch.device(name)


def git_commit() -> str:
    """HEAD of the repository genseg is imported from, '+dirty' if it has changes; 'unknown' outside git."""
    try:
        run = lambda *args: subprocess.run(  # noqa: E731
            ["git", "-C", str(_REPO), *args], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        commit = run("rev-parse", "HEAD")
        dirty = run("status", "--porcelain", "--untracked-files=no")
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def device_name(device: torch.device) -> str:
    if device.type == "cpu":
        return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    module = torch.get_device_module(device.type)
    name = module.get_device_name(device) if hasattr(module, "get_device_name") else ""
    return f"{device} ({name})" if name else str(device)


def reset_peak_memory(device: torch.device) -> None:
    if device.type != "cpu":
        torch.accelerator.memory.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> float:
    """Peak accelerator memory allocated by torch, or the process's peak RSS on the CPU."""
    if device.type != "cpu":
        return torch.accelerator.memory.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _held_slots() -> list[int]:
    from ..devices import held_slots

    return held_slots()


def provenance(config_hash: str, seed: int, device: torch.device) -> dict:
    return {
        "git_commit": git_commit(),
        "config_hash": config_hash,
        "seed": seed,
        "device": str(device),
        "device_name": device_name(device),
        "device_slots": _held_slots(),  # the slots this job locked (genseg.devices); [] when it took none
        "host": platform.node(),
        "versions": versions(),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
