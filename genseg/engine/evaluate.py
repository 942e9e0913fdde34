"""Evaluation: predict a split, accumulate the confusion matrix, write a metrics JSON.

Each evaluation writes ``<out>.json`` (scores, grid ratio, provenance, the autocast precision,
speed as ``images_per_s``, memory) and ``<out>.npz`` with per-image, per-class areas (intersect,
union, pred_area, label_area), so statistics over images need no re-inference.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..config import load_run_config
from ..data.base import IGNORE_INDEX, SegmentationDataset
from ..data.sources import eval_spec, model_num_classes
from ..data.taxonomy import converted_predictions
from ..data.transfer import unreachable
from ..devices import claim_device
from ..io import atomic_path, write_json
from ..methods import build_method, method_options
from ..metrics import ConfusionMatrix, GridArtifacts, per_image_areas
from .checkpoint import load_weights
from .inference import predict_batch
from .precision import autocast, check_precision, eval_precision, resolve_precision
from .provenance import peak_memory_mb, provenance, reset_peak_memory


def same_size_batches(items: list[dict]):
    """Collate: consecutive items of one image size stacked together (sizes may differ, e.g. ADE20K)."""
    groups: list[list[dict]] = []
    for item in items:
        if groups and groups[-1][0]["label"].shape == item["label"].shape:
            groups[-1].append(item)
        else:
            groups.append([item])
    return [(torch.stack([i["image"] for i in g]), torch.stack([i["label"] for i in g])) for g in groups]


SAMPLES_PER_EVALUATION = 4  # (image, label, prediction) kept from each default-variant evaluation


@torch.no_grad()
def predict_split(
    model,
    dataset: SegmentationDataset,
    device: torch.device,
    *,
    batch_size: int,
    predict_options: dict | None = None,
    max_images: int = 0,
    per_image: bool = False,
    progress: bool = False,
    window: dict | None = None,
    class_map: np.ndarray | None = None,
    keep_samples: int = 0,
    num_workers: int = 0,
) -> dict:
    """Run ``model.predict`` over ``dataset``; returns scores, timing and optional per-image areas.

    ``window``: :func:`eval_window`'s inference mode (whole or slide, scale, size divisor).
    ``class_map``: model class id -> the dataset's class id (a universal-taxonomy model
    evaluated in the test set's own taxonomy; see :mod:`genseg.data.taxonomy`).
    ``keep_samples``: also return the first N (image, label, prediction) triples as uint8
    arrays (``out["samples"]``), for qualitative figures drawn from results alone.
    ``num_workers``: DataLoader worker processes (0: the main process); batches are pinned in
    page-locked memory and copied without blocking when ``device`` is an accelerator.
    Precision: the caller's autocast, if any, applies to ``model.predict`` (see :func:`evaluate_loaded`).

    ``out["grid_ratio"]``: :class:`~genseg.metrics.GridArtifacts` ratios at 8 and 16 px
    (keys "8", "16"; None when undefined), on the predictions at the model's input
    resolution (nearest upsampling to the labels' would add a grid of its own)."""
    model.eval()
    num_classes = dataset.spec.num_classes
    model_classes = len(class_map) if class_map is not None else num_classes
    indices = range(len(dataset)) if not max_images else range(min(max_images, len(dataset)))
    subset = torch.utils.data.Subset(dataset, list(indices))
    # Its own generator: creating a loader draws a seed, which must not come from the global
    # stream a training run is using (validation cadence would change the training).
    # Workers: the order and the images are the same (shuffle off, deterministic eval transforms).
    loader = torch.utils.data.DataLoader(subset, batch_size=batch_size, shuffle=False, collate_fn=same_size_batches,
                                         generator=torch.Generator(), num_workers=num_workers,
                                         pin_memory=device.type != "cpu")
    matrix = ConfusionMatrix(num_classes, IGNORE_INDEX, device=device)
    grid = GridArtifacts((8, 16))
    areas: dict[str, list] = {"intersect": [], "union": [], "pred_area": [], "label_area": []}
    seconds, images = 0.0, 0
    samples: dict[str, np.ndarray] = {}
    for groups in tqdm(loader, desc=f"eval {dataset.spec.name}", disable=not progress, leave=False):
        for x, y in groups:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            start = time.perf_counter()
            pred, native = predict_batch(model, x, y, model_classes, **(window or {}), return_native=True,
                                         **(predict_options or {}))
            if class_map is not None:
                pred = converted_predictions(pred, class_map)
            if device.type != "cpu":
                torch.accelerator.synchronize(device)
            seconds += time.perf_counter() - start
            images += x.shape[0]
            matrix.update(pred, y)
            grid.update(converted_predictions(native, class_map) if class_map is not None else native)
            for i in range(min(x.shape[0], keep_samples - images + x.shape[0])):
                n = images - x.shape[0] + i
                samples[f"sample_image_{n}"] = x[i].mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
                samples[f"sample_label_{n}"] = y[i].byte().cpu().numpy()
                samples[f"sample_pred_{n}"] = pred[i].clamp(0, 255).byte().cpu().numpy()
            if per_image:
                for key, value in per_image_areas(pred, y, num_classes, IGNORE_INDEX).items():
                    areas[key].append(value.cpu().numpy())
    out = {
        "nfe": getattr(model, "last_nfe", None) or None,
        "scores": matrix.compute(),
        "grid_ratio": {str(p): r for p, r in grid.ratios().items()},
        "num_images": images,
        "predict_seconds": seconds,
        "images_per_s": images / seconds if seconds > 0 else float("nan"),
    }
    if per_image:
        out["per_image"] = {k: np.concatenate(v) for k, v in areas.items()}
    if keep_samples:
        out["samples"] = samples
    return out


def load_trained(run_dir: Path, device: str | None = None, gpus: int | None = None):
    """(config, model on its device, device) of a trained run (``config.yaml`` + ``model.safetensors``).

    ``gpus``: devices the job asks for (genseg.devices: checked, a free slot taken, before loading)."""
    cfg = load_run_config(run_dir / "config.yaml")
    dev = claim_device(device or cfg.device, gpus)
    model = build_method(cfg.model, model_num_classes(cfg.data), IGNORE_INDEX)
    load_weights(run_dir / "model.safetensors", model)
    return cfg, model.to(dev), dev


SMOKE_WEIGHTS = "random (smoke)"  # what a smoke run's outputs say about its weights


def training_budget(cfg, run_dir: Path) -> dict:
    """What a run's training cost: iterations, batch size, train wall seconds and the commit it
    was trained from (from its ``train_metrics.json``), and the same for each run whose files it
    starts from (a model option naming ``<run>/model.safetensors``: GSS's posterior and prior)."""
    metrics = run_dir / "train_metrics.json"
    trained = json.loads(metrics.read_text()) if metrics.exists() else {}
    wall = trained.get("wall_seconds")
    upstream = []
    for value in cfg.model.options.values():
        config = Path(value).parent / "config.yaml" if isinstance(value, str) and value.endswith(".safetensors") else None
        if config is not None and config.is_file():
            other = load_run_config(config)
            upstream.append({"experiment": other.name, "iterations": other.optim.iterations, "batch_size": other.data.batch_size})
    return {"iterations": cfg.optim.iterations, "batch_size": cfg.data.batch_size, "train_wall_seconds": wall, "upstream": upstream,
            "train_git_commit": trained.get("provenance", {}).get("git_commit", "unknown")}


def evaluate_loaded(cfg, model, dev, run_id: str, split: str, domain: str, out: Path, predict_options: dict | None = None,
                    progress: bool = False, spec=None, budget: dict | None = None, window: dict | None = None) -> dict:
    """Evaluate a loaded model on one split of one domain; writes ``out`` (.json) and its .npz.

    ``spec``: ``eval_spec``'s (split, class map) already listed, to reuse across variants;
    ``budget``: :func:`training_budget` of the run, recorded as is; ``window``: this domain's
    overrides of the run's inference window (``{"scale": s}``, the workflow's per-domain scale).
    """
    options = {**cfg.eval.predict, **(predict_options or {})}
    precision, key = eval_precision(cfg)  # eval.precision, default: the precision it was trained in
    precision = resolve_precision(precision, dev)  # auto: bf16 on an accelerator that supports it, else fp32
    check_precision(precision, dev, key)  # before any image is read
    spec, class_map = spec or eval_spec(cfg.data, split, domain)
    window = {**eval_window(cfg), **(window or {})}
    reset_peak_memory(dev)
    start = time.perf_counter()
    with autocast(precision, dev):
        result = predict_split(
            model, SegmentationDataset(spec), dev, batch_size=cfg.eval.batch_size, predict_options=options, per_image=True,
            progress=progress, window=window, class_map=class_map,
            keep_samples=SAMPLES_PER_EVALUATION if not predict_options else 0, num_workers=cfg.eval.num_workers,
        )
    wall = time.perf_counter() - start
    per_image = {**result.pop("per_image"), **result.pop("samples", {})}
    record = {
        "run_id": run_id,
        "experiment": cfg.name,
        "method": cfg.model.method,
        "dataset": cfg.data.dataset,
        "train_domains": list(cfg.data.train_domains),
        "split": split,
        "domains": [domain] if domain else [],
        "predict_options": options,
        "precision": precision,
        "num_workers": cfg.eval.num_workers,
        "model": {"method": cfg.model.method, **dataclasses.asdict(method_options(cfg.model))},
        "classes": list(spec.classes),
        "eval_scale": window["scale"],
        "unreachable_classes": unreachable(class_map, spec.classes) if class_map is not None else [],
        "budget": budget,
        "pretrained": SMOKE_WEIGHTS if cfg.smoke else "",
        **result,
        "wall_seconds": wall,
        "peak_memory_mb": peak_memory_mb(dev),
        "provenance": provenance(cfg.hash(), cfg.seed, dev),
    }
    with atomic_path(out.with_suffix(".npz")) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **per_image)
    write_json(out.with_suffix(".json"), record)
    return record


def evaluate_run(
    run_dir: str | Path,
    split: str,
    domains: list[str],
    out: str | Path,
    *,
    predict_options: dict | None = None,
    device: str | None = None,
    progress: bool = True,
    gpus: int | None = None,
) -> dict:
    """Evaluate a trained run on one split of one domain (or all, for ``[]``); writes ``out`` (.json) and its .npz."""
    run_dir = Path(run_dir)
    if len(domains) > 1:
        raise ValueError(f"evaluate one domain at a time, got {domains}")
    cfg, model, dev = load_trained(run_dir, device, gpus)
    return evaluate_loaded(cfg, model, dev, run_dir.name, split, domains[0] if domains else "", Path(out), predict_options, progress,
                           budget=training_budget(cfg, run_dir))


def evaluate_plan(run_dir: str | Path, split: str, plan: list[tuple], out_dir: str | Path, device: str | None = None,
                  gpus: int | None = None) -> Path:
    """Evaluate one run on several (domain, predict options[, window overrides]) entries with the model loaded once.

    Writes ``<out_dir>/<domain>/<variant>.json`` (+ .npz) per pair, then ``<out_dir>/index.json``
    listing them (relative paths), last, so a complete index means complete results.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    cfg, model, dev = load_trained(run_dir, device, gpus)
    written, specs, budget = [], {}, training_budget(cfg, run_dir)
    for domain, options, *window in plan:
        if domain not in specs:  # list each domain's files once, whatever the number of variants
            specs[domain] = eval_spec(cfg.data, split, domain)
        out = out_dir / domain / f"{variant_name(options)}.json"
        evaluate_loaded(cfg, model, dev, run_dir.name, split, domain, out, options, spec=specs[domain], budget=budget,
                        window=window[0] if window else None)
        written.append(str(out.relative_to(out_dir)))
    index = out_dir / "index.json"
    write_json(index, {"run_id": run_dir.name, "split": split, "records": written})
    return index


def eval_window(cfg) -> dict:
    """The run's inference mode as ``predict_batch`` keywords."""
    return {"mode": cfg.eval.mode, "crop": cfg.eval.crop, "stride": cfg.eval.stride, "scale": cfg.eval.scale, "size_divisor": cfg.eval.size_divisor,
            "resize": tuple(cfg.eval.resize)}


def variant_name(options: dict) -> str:
    """``default`` for no options, else ``key=value`` pairs joined by commas (sorted)."""
    return ",".join(f"{k}={v}" for k, v in sorted(options.items())) or "default"
