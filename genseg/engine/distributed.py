"""Multi-process training inside one job: N processes, one device each, DDP over a process group.

``genseg train --gpus N`` (N > 1, an accelerator) or ``--processes N`` (any device; on the CPU
the ``gloo`` backend, which is how the tests run it) starts N processes with
``torch.multiprocessing`` (spawn). Rank ``r`` uses the job's ``r``-th device, reads its share of
every global batch (``data.batch_size`` is the global batch; each rank takes a contiguous
``batch_size / N`` slice, :class:`~genseg.data.base.StreamSampler`), and only rank 0 writes
files. Gradients are averaged over ranks, so N processes at global batch B follow one process at
batch B (exactly, up to float order, for models without batch statistics; BatchNorm sees B / N
images per rank unless ``train.sync_bn``).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket

import torch
import torch.distributed as dist

from ..config import ConfigError

# Collective timeout: ranks wait this long for rank 0's validation (rank 0 alone validates).
TIMEOUT_MIN = int(os.environ.get("GENSEG_DIST_TIMEOUT_MIN", "60"))


def world_size(device: torch.device, gpus: int | None, processes: int | None) -> int:
    """Processes for this run: ``--processes`` if given, else ``--gpus`` on an accelerator, else 1."""
    if processes is not None:
        if processes < 1:
            raise ConfigError(f"--processes must be >= 1, got {processes}")
        if device.type != "cpu" and gpus is not None and processes > max(gpus, 1):
            raise ConfigError(f"--processes {processes} needs one device each but the job has --gpus {gpus}")
        return processes
    return max(gpus or 1, 1) if device.type != "cpu" else 1


def check_world(cfg, device: torch.device, world: int) -> None:
    """Before any compute: the global batch splits evenly; SyncBN only where torch runs it."""
    if cfg.data.batch_size % world:
        raise ConfigError(
            f"data.batch_size {cfg.data.batch_size} is the global batch and must divide evenly over {world} processes"
        )
    if cfg.train.sync_bn and world > 1 and device.type == "cpu":
        raise ConfigError("train.sync_bn: torch's SyncBatchNorm runs on accelerators only; set it false on the CPU")


def rank_devices(device: torch.device, world: int, slots: list[int]) -> list[torch.device]:
    """The device of each rank: the job's held slots, else indices 0..N-1; the CPU for every rank on the CPU."""
    if device.type == "cpu":
        return [device] * world
    indices = slots or ([device.index] if device.index is not None and world == 1 else list(range(world)))
    return [torch.device(device.type, i) for i in indices[:world]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(fn, world: int, args: tuple) -> None:
    """Run ``fn(rank, world, *args)`` in ``world`` fresh processes joined by a process group."""
    port = free_port()
    torch.multiprocessing.spawn(_entry, args=(fn, world, port, args), nprocs=world, join=True)


def _entry(rank: int, fn, world: int, port: int, args: tuple) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    fn(rank, world, *args)


@contextlib.contextmanager
def process_group(device: torch.device, rank: int, world: int):
    """The default process group for this rank (``gloo`` on the CPU, the device's default backend elsewhere)."""
    if world == 1:
        yield
        return
    if device.type != "cpu":
        torch.accelerator.set_device_index(device)
    backend = dist.get_default_backend_for_device(device)
    dist.init_process_group(backend, rank=rank, world_size=world, timeout=datetime.timedelta(minutes=TIMEOUT_MIN),
                            device_id=device if device.type != "cpu" else None)
    try:
        yield
    finally:
        dist.destroy_process_group()


class LossModule(torch.nn.Module):
    """``forward`` = the method's ``training_loss``, so DDP sees the call it hooks."""

    def __init__(self, method: torch.nn.Module):
        super().__init__()
        self.method = method

    def forward(self, images, labels):
        return self.method.training_loss(images, labels)


def wrap(model: torch.nn.Module, device: torch.device, world: int, sync_bn: bool) -> torch.nn.Module:
    """A module whose call is ``model.training_loss``: DDP (SyncBN if asked) across ``world`` processes."""
    module = LossModule(model)
    if world == 1:
        return module
    if sync_bn:
        torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # in place: BatchNorm children replaced, weights kept
    return torch.nn.parallel.DistributedDataParallel(module, device_ids=[device.index] if device.type != "cpu" else None)


def no_sync(module: torch.nn.Module, skip: bool):
    """Skip DDP's gradient all-reduce for a micro-batch that is not the step's last."""
    return module.no_sync() if skip and isinstance(module, torch.nn.parallel.DistributedDataParallel) else contextlib.nullcontext()


def any_rank(flag: bool, world: int, device: torch.device) -> bool:
    """True if ``flag`` holds on any rank (all ranks must call)."""
    if world == 1:
        return flag
    value = torch.tensor([float(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def mean_over_ranks(value: float, world: int, device: torch.device) -> float:
    """The mean of ``value`` over ranks (all ranks must call)."""
    if world == 1:
        return value
    tensor = torch.tensor([value], device=device)
    dist.all_reduce(tensor)
    return tensor.item() / world


def gather(obj, world: int) -> list:
    """Every rank's ``obj`` (all ranks must call)."""
    if world == 1:
        return [obj]
    out = [None] * world
    dist.all_gather_object(out, obj)
    return out


def barrier(world: int) -> None:
    if world > 1:
        dist.barrier()
