"""The training loop, top to bottom: data, model, optimizer, loop, validation, checkpoints.

A run directory holds ``config.yaml`` (resolved), ``checkpoint.{safetensors,json}``
(latest, for resuming), ``model.safetensors`` (final weights), ``val_curve.csv``,
``tb/`` (TensorBoard) and ``train_metrics.json`` (provenance, speed, memory). Running
again on a directory with a checkpoint resumes from it.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from ..config import ConfigError, RunConfig
from ..data.base import IGNORE_INDEX, SegmentationDataset, StreamSampler
from ..data.sources import check_ignored, validation_specs
from ..data.sources import train_spec as load_train_spec
from ..data.transforms import train_transform
from ..devices import claim_device, held_slots
from ..io import locked, write_json, write_text, write_yaml
from ..methods import build_method
from .checkpoint import (checkpoint_state, has_checkpoint, load_checkpoint, remove_checkpoint, remove_stale_temps, rng_state,
                         save_checkpoint, save_weights)
from .distributed import any_rank, barrier, check_world, gather, mean_over_ranks, no_sync, process_group, rank_devices, spawn, world_size, wrap
from .evaluate import SMOKE_WEIGHTS, eval_window, predict_split
from .precision import autocast, check_precision, fused_optimizer, grad_scaler, resolve_precision, set_tf32, speed_options
from .provenance import peak_memory_mb, provenance, reset_peak_memory


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training stopped, the last good checkpoint is kept."""


def poly_schedule(warmup_iters: int, total_iters: int, power: float, min_ratio: float = 0.0):
    """LR factor: linear warm-up to 1, then (1 - min_ratio) (1 - progress) ** power + min_ratio
    (mmsegmentation's poly with ``eta_min`` = ``min_ratio`` x the base lr)."""

    def factor(step: int) -> float:
        if step < warmup_iters:
            return (step + 1) / warmup_iters
        progress = (step - warmup_iters) / max(1, total_iters - warmup_iters)
        return (1 - min_ratio) * max(0.0, 1.0 - progress) ** power + min_ratio

    return factor


def match_key(name: str, keys) -> str | None:
    """The custom key ``name`` contains: the longest, ties alphabetically (mmseg's rule); None if none."""
    for key in sorted(sorted(keys), key=len, reverse=True):
        if key in name:
            return key
    return None


NORM_LAYERS = (torch.nn.modules.batchnorm._NormBase, torch.nn.GroupNorm, torch.nn.LayerNorm, torch.nn.LocalResponseNorm)


def param_groups(model: torch.nn.Module, weight_decay: float, lr: float = 1.0, custom_keys: dict | None = None,
                 decay_1d: bool = False, norm_decay_mult: float = 1.0) -> list[dict]:
    """One group per (lr, weight decay): ``custom_keys`` name substring -> ``lr_mult`` / ``decay_mult``.
    Without ``decay_1d`` biases, norms and other 1-D tensors get no decay; with it, everything
    decays (a matching key's ``decay_mult``, else ``norm_decay_mult`` on normalisation layers), as mmseg."""
    custom_keys = custom_keys or {}
    norms = {id(p) for m in model.modules() if isinstance(m, NORM_LAYERS) or type(m).__name__.endswith("Norm")
             for p in m.parameters(recurse=False)}
    groups: dict[tuple[float, float], list] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        key = match_key(name, custom_keys)
        mults = custom_keys.get(key, {})
        if not decay_1d and param.ndim <= 1:
            decay = 0.0
        elif key is None and id(param) in norms:
            decay = weight_decay * norm_decay_mult
        else:
            decay = weight_decay * mults.get("decay_mult", 1.0)
        groups.setdefault((lr * mults.get("lr_mult", 1.0), decay), []).append(param)
    groups = groups or {(lr, weight_decay): []}  # nothing to train (an oracle run): one empty group
    order = sorted(groups, key=lambda k: k[1] == 0)  # decayed groups first, as before custom keys
    return [{"params": groups[k], "lr": k[0], "weight_decay": k[1]} for k in order]


def build_optimizer(model: torch.nn.Module, optim, fused: bool = False) -> torch.optim.Optimizer:
    """AdamW (``fused``: the fused kernel) or SGD (``optim.optimizer``) over :func:`param_groups`."""
    groups = param_groups(model, optim.weight_decay, optim.lr, optim.custom_keys, optim.decay_1d, optim.norm_decay_mult)
    if optim.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=optim.lr, momentum=optim.momentum, nesterov=optim.nesterov)
    return torch.optim.AdamW(groups, lr=optim.lr, betas=optim.betas, fused=fused or None)


class WeightEMA:
    """theta_ema <- d * theta_ema + (1 - d) * theta after every optimizer step (float tensors;
    integer buffers such as BatchNorm's counter are copied)."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for ema, value in zip(self.module.state_dict().values(), model.state_dict().values()):
            if ema.is_floating_point():
                ema.lerp_(value, 1 - self.decay)
            else:
                ema.copy_(value)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


ON_CHANGE = ("refuse", "restart")


def train(cfg: RunConfig, run_dir: str | Path, gpus: int | None = None, processes: int | None = None,
          on_change: str = "refuse") -> dict:
    """Train one run, resuming from its checkpoint; ``processes`` (default: ``gpus`` on an accelerator,
    else 1) > 1 runs DDP in as many processes (:mod:`genseg.engine.distributed`). A checkpoint of
    another config is refused (``on_change`` 'refuse') or discarded ('restart'). Returns rank 0's
    ``train_metrics.json`` record."""
    device = claim_device(cfg.device, gpus)  # devices: checks the request, takes free slots (before any compute)
    world = world_size(device, gpus, processes)
    check_world(cfg, device, world)
    check_precision(resolve_precision(cfg.train.precision, device), device)
    devices = rank_devices(device, world, held_slots())
    run_dir = Path(run_dir)
    with locked(run_dir / ".lock", what=f"run folder {run_dir}"):  # one training per run folder
        remove_stale_temps(run_dir)  # of writes killed mid-way
        check_resume(cfg, run_dir, on_change)
        ignored, text = check_ignored(cfg.data)  # a taxonomy's dropped labelled pixels, from the data: stops above the threshold
        if ignored:
            print(text, flush=True)
            write_json(run_dir / "ignored_pixels.json", {"max_ignored_fraction": cfg.data.max_ignored_fraction, "datasets": ignored})
        if world == 1:
            return train_process(0, 1, cfg, run_dir, devices)
        spawn(train_process, world, (cfg, run_dir, devices))
        return json.loads((run_dir / "train_metrics.json").read_text())


def check_resume(cfg: RunConfig, run_dir: Path, on_change: str) -> None:
    """A checkpoint trained with another config is refused, or with ``on_change`` 'restart' removed
    with the run's outputs (the workflow restarts runs whose config changed)."""
    if on_change not in ON_CHANGE:
        raise ConfigError(f"on_change must be one of {', '.join(ON_CHANGE)}, got {on_change!r}")
    ckpt = run_dir / "checkpoint"
    if not has_checkpoint(ckpt):
        return
    state = checkpoint_state(ckpt)
    stored = state.get("config_hash", "none (a checkpoint from before config hashes)")
    if stored == cfg.hash():
        return
    if on_change == "refuse":
        raise ConfigError(
            f"{ckpt}.safetensors (step {state['step']}) was trained with config hash {stored}, but "
            f"{run_dir / 'config.yaml'} now hashes to {cfg.hash()}: resuming would mix two configs. Restore "
            "the config, delete the run folder, or restart it (`genseg train --on-config-change restart`)"
        )
    print(f"genseg: config of {run_dir} changed ({stored} -> {cfg.hash()}): restarting from step 0", file=sys.stderr)
    remove_checkpoint(ckpt)
    for name in ("val_curve.csv", "model.safetensors", "train_metrics.json"):
        (run_dir / name).unlink(missing_ok=True)
    shutil.rmtree(run_dir / "tb", ignore_errors=True)


def train_process(rank: int, world: int, cfg: RunConfig, run_dir: Path, devices: list[torch.device]) -> dict | None:
    """One process's training loop; rank 0 alone validates and writes files."""
    device, lead = devices[rank], rank == 0
    if world > 1 and device.type == "cpu":
        torch.set_num_threads(max(1, torch.get_num_threads() // world))  # the job's threads, shared
    with process_group(device, rank, world):
        return _train(rank, world, lead, cfg, run_dir, device)


def _train(rank: int, world: int, lead: bool, cfg: RunConfig, run_dir: Path, device: torch.device) -> dict | None:
    precision, k = resolve_precision(cfg.train.precision, device), cfg.train.accumulate  # k micro-batches per optimizer step
    set_tf32(cfg.train.tf32, device)
    if lead:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_yaml(run_dir / "config.yaml", cfg.to_dict())
    seed_everything(cfg.seed)  # the same initial weights on every rank

    # Data: the train stream is endless and deterministic in (seed, position).
    train_spec = load_train_spec(cfg.data, "train", cfg.data.train_domains)
    transform = train_transform(cfg.data)
    train_set = SegmentationDataset(train_spec, transform, seed=cfg.seed)
    val_domains = cfg.data.val_domains or cfg.data.train_domains
    # scored in the evaluation's classes (a taxonomy run: each dataset's own, mean over them)
    val_sets = [(SegmentationDataset(spec), class_map) for spec, class_map in validation_specs(cfg.data, val_domains)]

    # Model, optimizer, schedule.
    model = build_method(cfg.model, train_spec.num_classes, IGNORE_INDEX).to(device)
    model.check_predict_options(cfg.eval.predict)  # validation uses them: fail now, not after training
    if rank:
        torch.manual_seed(cfg.seed + rank)  # each rank its own draws (noise, t, dropout); rank 0 as one process
    memory_format = torch.channels_last if cfg.train.channels_last else torch.preserve_format
    if cfg.train.channels_last:
        model = model.to(memory_format=memory_format)
    optimizer = build_optimizer(model, cfg.optim, fused=fused_optimizer(device))
    scaler = grad_scaler(precision, device)  # fp16 only; otherwise plain backward and step
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, poly_schedule(cfg.optim.warmup_iters, cfg.optim.iterations, cfg.optim.poly_power, cfg.optim.min_lr / cfg.optim.lr)
    )

    ema = WeightEMA(model, cfg.train.ema_decay) if cfg.train.ema_decay > 0 and lead else None
    evaluated = ema.module if ema else model  # validated, evaluated and saved
    speed_options(model, cfg)  # train.activation_checkpointing, train.compile (after the EMA copy)

    # Resume from the latest checkpoint if there is one.
    ckpt = run_dir / "checkpoint"
    start_step = 0
    state = {}
    if has_checkpoint(ckpt):
        state = load_checkpoint(ckpt, model=model, optimizer=optimizer, scheduler=scheduler, ema=ema and ema.module, rank=rank)
        start_step = state["step"]
        if "scaler" in state:
            scaler.load_state_dict(state["scaler"])
    curve_path = run_dir / "val_curve.csv"
    # the curve and the loop's counters live in the checkpoint: a rerun that deleted the files keeps them
    curve = state.get("curve") or _read_curve(curve_path, max_step=start_step)
    counters = {"train_seconds": 0.0, "data_seconds": 0.0, "images_seen": 0, "wall_seconds": 0.0,
                "loss": float("nan"), **state.get("counters", {})}

    batch = cfg.data.batch_size  # global: each of the world's ranks reads batch / world of it
    loader = torch.utils.data.DataLoader(
        train_set,
        batch_size=batch // world,
        sampler=StreamSampler(len(train_set), cfg.seed, start=start_step * k * batch, rank=rank, world=world, batch=batch,
                              parts=train_spec.parts if cfg.data.balance == "equal" else ()),
        num_workers=cfg.data.num_workers,
        persistent_workers=cfg.data.num_workers > 0,
        generator=torch.Generator().manual_seed(cfg.seed),  # keeps the global RNG (dropout) resumable
        pin_memory=device.type != "cpu",
    )
    net = wrap(model, device, world, cfg.train.sync_bn)  # net(images, labels) = model.training_loss, DDP across ranks
    writer = SummaryWriter(str(run_dir / "tb"), purge_step=start_step) if lead else None
    reset_peak_memory(device)
    batches = iter(loader)
    total = cfg.optim.iterations
    train_seconds, data_seconds, images_seen, loss_value = (counters[k] for k in ("train_seconds", "data_seconds", "images_seen", "loss"))
    wall_start = time.perf_counter() - counters["wall_seconds"]  # wall time over every session of the run
    bar = tqdm(range(start_step, total), initial=start_step, total=total, desc=cfg.name, disable=not (cfg.train.progress and lead))
    model.train()
    for step in bar:
        optimizer.zero_grad(set_to_none=True)
        losses = []
        for micro in range(k):  # gradients summed over k micro-batches, each loss / k: their mean
            tic = time.perf_counter()
            data = next(batches)  # time waiting here is the loader's (all of its work with 0 workers)
            images = data["image"].to(device, memory_format=memory_format, non_blocking=True)
            labels = data["label"].to(device, non_blocking=True)
            data_seconds += time.perf_counter() - tic
            tic = time.perf_counter()
            with no_sync(net, skip=micro < k - 1):  # DDP all-reduces on the step's last micro-batch
                with autocast(precision, device):
                    loss, logs = net(images, labels)  # logs: the last micro-batch's
                if any_rank(not torch.isfinite(loss), world, device):
                    where = f" (rank {rank}: {loss.item()})" if world > 1 else ""
                    raise NonFiniteLossError(
                        f"loss is {loss.item() if world == 1 else 'not finite'} at step {step + 1} of run {cfg.name}{where}; "
                        f"training stopped. {kept_checkpoint(ckpt)}"
                    )
                scaler.scale(loss / k).backward()
            train_seconds += time.perf_counter() - tic
            images_seen += images.shape[0] * world
            losses.append(loss.item())
        tic = time.perf_counter()
        if cfg.optim.grad_clip > 0:
            scaler.unscale_(optimizer)  # clip the true gradients (fp16)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        if ema:
            ema.update(model)
        train_seconds += time.perf_counter() - tic
        loss_value = mean_over_ranks(sum(losses) / k, world, device)
        done = step + 1

        if lead and cfg.train.log_every and done % cfg.train.log_every == 0:
            for key, value in logs.items():
                writer.add_scalar(f"train/{key}", value, done)
            writer.add_scalar("train/lr", scheduler.get_last_lr()[0], done)
            writer.add_scalar("train/images_per_s", images_seen / train_seconds, done)
            writer.add_scalar("train/data_seconds_per_iter", data_seconds / done, done)
            bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
        if lead and ((cfg.train.val_every and done % cfg.train.val_every == 0) or done == total):
            with autocast(precision, device):  # validated as trained
                scores = {"miou": float(np.mean([predict_split(
                    evaluated, val_set, device, batch_size=cfg.eval.batch_size, class_map=class_map,
                    predict_options=cfg.eval.predict, max_images=cfg.train.val_max_images, window=eval_window(cfg),
                )["scores"]["miou"] for val_set, class_map in val_sets]))}
            model.train()
            writer.add_scalar("val/mIoU", scores["miou"], done)
            curve.append({"step": done, "val_miou": scores["miou"], "train_loss": loss_value, "wall_seconds": time.perf_counter() - wall_start})
            _write_curve(curve_path, curve)
        if (cfg.train.checkpoint_every and done % cfg.train.checkpoint_every == 0) or done == total:
            rng = gather(rng_state(device), world)  # every rank's draws, for an exact resume
            if lead:
                counters = {"train_seconds": train_seconds, "data_seconds": data_seconds, "images_seen": images_seen,
                            "wall_seconds": time.perf_counter() - wall_start, "loss": loss_value}
                extra = {"config_hash": cfg.hash(), "curve": curve, "counters": counters}
                save_checkpoint(ckpt, step=done, model=model, optimizer=optimizer, scheduler=scheduler, ema=ema and ema.module,
                                extra=extra | ({"scaler": scaler.state_dict()} if scaler.is_enabled() else {}), rng=rng)
            barrier(world)  # the other ranks wait for rank 0's checkpoint (and validation)
    if not lead:
        return None
    writer.close()
    _write_curve(curve_path, curve)  # also when there was nothing to train (iterations: 0)

    save_weights(run_dir / "model.safetensors", evaluated, {"config_hash": cfg.hash(), "weights": "ema" if ema else "trained"})
    record = {
        "experiment": cfg.name,
        "run_id": run_dir.name,
        "method": cfg.model.method,
        "iterations": total,
        "resumed_from": start_step,
        "final_train_loss": loss_value,
        "final_val_miou": curve[-1]["val_miou"] if curve else None,
        "train_images_per_s": images_seen / train_seconds if train_seconds else None,
        # images/s the loader delivered while the loop waited on it: with num_workers 0 this
        # is the loader's own throughput; with workers, > train_images_per_s means it keeps up
        "loader_images_per_s": images_seen / data_seconds if data_seconds else None,
        "data_wait_fraction": data_seconds / (data_seconds + train_seconds) if train_seconds else None,
        "wall_seconds": time.perf_counter() - wall_start,
        "peak_memory_mb": peak_memory_mb(device),
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "ema_decay": cfg.train.ema_decay,
        "precision": precision,
        "accumulate": k,
        "effective_batch_size": k * batch,
        "processes": world,
        "pretrained": SMOKE_WEIGHTS if cfg.smoke else "",
        "provenance": provenance(cfg.hash(), cfg.seed, device),
    }
    write_json(run_dir / "train_metrics.json", record)
    return record


def kept_checkpoint(ckpt: Path) -> str:
    """What a stopped run keeps: its last checkpoint's step, or that it has none yet."""
    if not has_checkpoint(ckpt):
        return "No checkpoint was written yet: a rerun starts from step 0."
    return f"The last good checkpoint ({ckpt}.safetensors, step {checkpoint_state(ckpt)['step']}) is kept."


_CURVE_FIELDS = ["step", "val_miou", "train_loss", "wall_seconds"]


def _read_curve(path: Path, max_step: int) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]
    return [dict(row, step=int(row["step"])) for row in rows if row["step"] <= max_step]


def _write_curve(path: Path, rows: list[dict]) -> None:
    lines = [",".join(_CURVE_FIELDS)] + [",".join(_fmt(row[k]) for k in _CURVE_FIELDS) for row in rows]
    write_text(path, "\n".join(lines) + "\n")


def _fmt(value) -> str:
    return str(value) if isinstance(value, int) else ("nan" if math.isnan(value) else f"{value:.6g}")
