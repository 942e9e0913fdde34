"""Atomic file writes: write to a temporary name beside the target, then rename."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import yaml


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path; on success it is renamed onto ``path``, on error removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class LockedError(RuntimeError):
    """Another process holds the lock."""


@contextmanager
def locked(path: str | Path, what: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (it records the holder's pid and host) for the block;
    LockedError naming ``what`` and the holder if another process has it. The OS releases it when
    the process dies."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
            raise LockedError(f"{what} is in use by another process ({holder}; lock {path}); wait for it or stop it") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
        yield
    finally:
        os.close(fd)


_HELD: list[int] = []  # descriptors of locks held for the life of the process


def hold_for_process(path: str | Path) -> bool:
    """Take an exclusive ``flock`` on ``path`` until the process exits (True), or False if another
    live process holds it. The OS drops it when the process dies, SIGKILL included."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    _HELD.append(fd)
    return True


def clear_stale_snakemake_locks(workdir: str | Path = ".") -> list[Path]:
    """Snakemake's own locks (``.snakemake/locks``) survive a killed run and make the rerun stop with
    a LockException. Every genseg snakemake process holds ``.snakemake/genseg-main.lock`` for its
    life: whoever takes it knows no other one is running here, so the remaining Snakemake locks
    are stale; they are removed (returned). Call while parsing the Snakefile, before Snakemake locks."""
    state = Path(workdir) / ".snakemake"
    if not hold_for_process(state / "genseg-main.lock"):
        return []  # another genseg snakemake runs here: its locks are live
    stale = sorted((state / "locks").glob("*.lock"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def sha256(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_yaml(path: str | Path, data: Any) -> None:
    write_text(path, yaml.safe_dump(data, sort_keys=False))


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
