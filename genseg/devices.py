"""One accelerator per job: a file-lock slot allocator for concurrent train/evaluate jobs.

Snakemake counts GPUs (the ``gpu`` resource) but does not say *which* GPU a job gets, so
every job whose device is ``auto`` would otherwise land on device 0. A job that resolves to
an accelerator and sees more devices than it needs takes free slots here: one lock file per
device index in :func:`lock_dir`, held with ``fcntl.flock`` for the life of the process (the
OS releases it when the process exits, crashes included). The job then uses
``torch.device(<type>, slot)`` and makes it the current device before any model or tensor is
placed, so no other device gets a context.

* The request is ``--gpus N`` (the workflow passes the job's ``gpu`` resource, i.e. the
  config's ``resources.gpus_per_job`` or the profile's ``set-resources``); none given: 1.
* Asking for more devices than are visible is an error naming the key, before any compute.
* Seeing exactly as many devices as requested (e.g. a SLURM job given its own GPUs) takes
  them all without locks; a CPU device takes none.
* All slots held: the job waits, polling, for one to free up (``GENSEG_DEVICE_WAIT_S``
  seconds, default: no limit), then fails with a message naming the holders' pids.
* ``GENSEG_NUM_DEVICES`` overrides the visible count (tests, or to use fewer devices);
  ``GENSEG_DEVICE_LOCK_DIR`` the lock directory.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .config import ConfigError

if TYPE_CHECKING:  # torch is imported where needed: the allocator alone stays light
    import torch

GPUS_KEY = "resources.gpus_per_job"  # the workflow config key behind the job's `gpu` resource / --gpus

_HELD: dict[int, int] = {}  # slot -> open file descriptor holding its lock (released at process exit)


class DeviceError(ConfigError):
    """The job asks for more devices than it can have."""


def visible_device_count() -> int:
    """Devices of the current accelerator this process sees (``GENSEG_NUM_DEVICES`` overrides); 0 without one."""
    override = os.environ.get("GENSEG_NUM_DEVICES", "").strip()
    if override:
        try:
            count = int(override)
        except ValueError:
            count = -1
        if count < 0:
            raise DeviceError(f"GENSEG_NUM_DEVICES must be a non-negative integer, got {override!r}")
        return count
    import torch

    return torch.accelerator.device_count() if torch.accelerator.is_available() else 0


def lock_dir() -> Path:
    """Per-host, per-user directory of the slot locks (``$GENSEG_DEVICE_LOCK_DIR`` overrides)."""
    if os.environ.get("GENSEG_DEVICE_LOCK_DIR"):
        return Path(os.environ["GENSEG_DEVICE_LOCK_DIR"])
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"genseg-devices-{os.getuid()}-{socket.gethostname()}"


def check_request(gpus: int, visible: int) -> None:
    if gpus < 0:
        raise DeviceError(f"{GPUS_KEY} (--gpus) must be >= 0, got {gpus}")
    if gpus > visible:
        raise DeviceError(
            f"{GPUS_KEY} (--gpus, the job's `gpu` resource) asks for {gpus} device(s) but {visible} "
            f"{'is' if visible == 1 else 'are'} visible on {socket.gethostname()}; lower it (or the profile's "
            "set-resources gpu), or run where more devices are visible"
        )


def _holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "?"
    except OSError:
        return "?"


def acquire(n: int, count: int, *, directory: Path | None = None, timeout: float | None = None, poll: float = 0.2) -> list[int]:
    """Lock ``n`` of the slots ``0..count-1`` for this process and return them (lowest free first).

    Takes all ``n`` at once or none (no hold-and-wait between jobs); waits while fewer are free,
    up to ``timeout`` seconds (None: ``GENSEG_DEVICE_WAIT_S``, unset: forever).
    """
    check_request(n, count)
    directory = Path(directory or lock_dir())
    directory.mkdir(parents=True, exist_ok=True)
    if timeout is None and os.environ.get("GENSEG_DEVICE_WAIT_S"):
        timeout = float(os.environ["GENSEG_DEVICE_WAIT_S"])
    start, announced = time.monotonic(), False
    while True:
        got: dict[int, int] = {}
        for slot in range(count):
            if len(got) == n:
                break
            if slot in _HELD:
                continue
            fd = os.open(directory / f"slot-{slot}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            got[slot] = fd
        if len(got) == n:
            for slot, fd in got.items():
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            _HELD.update(got)
            return sorted(got)
        for fd in got.values():
            os.close(fd)  # closing releases the flock
        waited = time.monotonic() - start
        if timeout is not None and waited >= timeout:
            holders = ", ".join(f"{s}: pid {_holder(directory / f'slot-{s}.lock')}" for s in range(count))
            raise DeviceError(
                f"no {n} free device slot(s) of {count} after {waited:.0f} s (GENSEG_DEVICE_WAIT_S={timeout:g}); "
                f"held in {directory} by {holders}"
            )
        if not announced:
            print(f"genseg: all {count} device slots in {directory} are busy; waiting for {n}", file=sys.stderr, flush=True)
            announced = True
        time.sleep(poll)


def release() -> None:
    """Release this process's slots (the OS does it at exit anyway)."""
    for fd in _HELD.values():
        os.close(fd)
    _HELD.clear()


def held_slots() -> list[int]:
    return sorted(_HELD)


def claim_device(name: str, gpus: int | None = None) -> torch.device:
    """Resolve a config's ``device`` and, on an accelerator with devices to choose from, take free slots.

    Runs before any data or model is touched, so a bad request costs no compute.
    """
    import torch

    from .engine.provenance import resolve_device

    wants_accelerator = name != "cpu"
    if not wants_accelerator:
        return torch.device("cpu")
    visible = visible_device_count()
    if gpus is not None:
        check_request(gpus, visible)
    device = resolve_device(name)
    if device.type == "cpu" or device.index is not None:  # no accelerator, or pinned to one device by the config
        return device
    need = max(gpus or 1, 1)
    if visible <= need:
        return device
    slots = acquire(need, visible)
    device = torch.device(device.type, slots[0])
    torch.accelerator.set_device_index(device)
    print(f"genseg: device slot(s) {slots} of {visible} -> {device}", file=sys.stderr, flush=True)
    return device
