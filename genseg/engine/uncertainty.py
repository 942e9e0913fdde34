"""Uncertainty of a trained run on one test domain (``genseg uncertainty``): how well a per-pixel
predictive distribution ranks and calibrates the run's errors.

The distribution p (B, C, H, W) comes from the method, as its spec says
(:attr:`~genseg.methods.spec.MethodSpec.uncertainty`): ``softmax``, the model's class
probabilities; ``samples``, the vote frequencies of K label maps drawn with seeds
``seed`` .. ``seed + K - 1`` (:func:`~genseg.metrics.vote_frequencies`). From p: the prediction
argmax p (the majority vote), its confidence max p, its entropy H(p) in nats; scored by
:class:`~genseg.metrics.UncertaintyMeter` (mIoU of the prediction and of one sample, AUROC of
entropy for "the prediction is wrong", ECE of the confidence over 15 equal-width bins). Ignore
pixels are dropped everywhere. Writes ``<out>.json`` and ``<out>.npz`` (the first images with
their label, prediction and entropy map, for the report's figure).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..config import ConfigError
from ..data.base import IGNORE_INDEX, SegmentationDataset
from ..data.sources import eval_spec
from ..io import atomic_path, write_json
from ..methods import method_spec
from ..metrics import AUROC_BINS, ECE_BINS, UncertaintyMeter, vote_frequencies
from .evaluate import eval_window, load_trained, same_size_batches
from .inference import predict_batch
from .precision import autocast, check_precision, eval_precision, resolve_precision
from .provenance import provenance

KEEP_IMAGES = 4  # (image, label, prediction, entropy) kept per run for the report's figure


def run_kind(cfg) -> str:
    """``softmax`` or ``samples``, as the run's method spec says; a ConfigError naming the run otherwise."""
    kind = method_spec(cfg.model.method).uncertainty(cfg.model.options)
    if not kind:
        raise ConfigError(f"run {cfg.name!r} (model.method {cfg.model.method!r}) gives no predictive distribution "
                          "(its method spec declares no uncertainty: an oracle, or a deterministic generative run)")
    return kind


def softmax_batch(model, images: torch.Tensor, size: tuple[int, int], window: dict) -> torch.Tensor:
    """``model.probabilities`` on the whole image (scaled by ``window['scale']``, padded to its size
    divisor), resized (bilinear) to the labels' ``size``."""
    from ..methods.base import pad_to_multiple

    if window["mode"] != "whole" or min(window["resize"]) > 0:
        raise ConfigError(f"eval.mode {window['mode']!r} / eval.resize: the softmax uncertainty runs whole-image inference only")
    if window["scale"] != 1.0:
        images = F.interpolate(images, scale_factor=window["scale"], mode="bilinear", align_corners=False, antialias=True)
    h, w = images.shape[-2:]
    p = model.probabilities(pad_to_multiple(images, window["size_divisor"]))[..., :h, :w].float()
    return F.interpolate(p, size=size, mode="bilinear", align_corners=False) if (h, w) != tuple(size) else p


def distribution(model, kind: str, x: torch.Tensor, y: torch.Tensor, num_classes: int, window: dict, options: dict,
                 k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(p (B, C, H, W), one sample's labels (B, H, W)) at the labels' resolution."""
    if kind == "softmax":
        p = softmax_batch(model, x, y.shape[-2:], window)
        return p, p.argmax(1)
    draws = torch.stack([predict_batch(model, x, y, num_classes, **window, **options, seed=seed + i) for i in range(k)])
    return vote_frequencies(draws, num_classes), draws[0]


@torch.no_grad()
def uncertainty_run(run_dir: str | Path, split: str, domain: str, out: str | Path, *, k: int = 8, max_images: int = 100,
                    seed: int = 0, device: str | None = None, gpus: int | None = None) -> dict:
    """Score one run's predictive distribution on ``domain``'s ``split`` (its first ``max_images``
    images; 0: all); writes ``out`` (.json) and its .npz; returns the record."""
    if k < 1 or max_images < 0:
        raise ConfigError(f"uncertainty: k must be >= 1 and max_images >= 0, got k={k}, max_images={max_images}")
    start = time.perf_counter()
    run_dir, out = Path(run_dir), Path(out)
    cfg, model, dev = load_trained(run_dir, device, gpus)
    kind = run_kind(cfg)
    spec = method_spec(cfg.model.method)
    data_spec, class_map = eval_spec(cfg.data, split, domain)
    if class_map is not None:
        raise ConfigError(f"run {cfg.name!r} predicts another taxonomy than {domain!r}'s: the uncertainty step needs the test set's own classes")
    precision = resolve_precision(eval_precision(cfg)[0], dev)
    check_precision(precision, dev, eval_precision(cfg)[1])
    dataset = SegmentationDataset(data_spec)
    count = min(max_images, len(dataset)) if max_images else len(dataset)
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, list(range(count))), batch_size=cfg.eval.batch_size,
                                         shuffle=False, collate_fn=same_size_batches, generator=torch.Generator())
    num_classes, window = data_spec.num_classes, eval_window(cfg)
    options = {key: v for key, v in {**cfg.eval.predict, **spec.sample_options}.items() if key != "seed"}  # the draws' seeds are ours
    meter = UncertaintyMeter(num_classes, IGNORE_INDEX, dev)
    kept: dict[str, np.ndarray] = {}
    seconds, images = 0.0, 0
    model.eval()
    for groups in loader:
        for x, y in groups:
            x, y = x.to(dev), y.to(dev)
            tick = time.perf_counter()
            with autocast(precision, dev):
                p, single = distribution(model, kind, x, y, num_classes, window, options, k, seed)
            if dev.type != "cpu":
                torch.accelerator.synchronize(dev)
            seconds += time.perf_counter() - tick
            pred, ent = meter.update(p, y, single)
            for i in range(min(x.shape[0], KEEP_IMAGES - images)):
                n = images + i
                kept[f"image_{n}"] = x[i].mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
                kept[f"label_{n}"] = y[i].byte().cpu().numpy()
                kept[f"pred_{n}"] = pred[i].clamp(0, 255).byte().cpu().numpy()
                kept[f"entropy_{n}"] = ent[i].half().cpu().numpy()
            images += x.shape[0]
    scores = meter.compute()
    record = {
        "run_id": run_dir.name,
        "experiment": cfg.name,
        "method": cfg.model.method,
        "display_name": spec.display(cfg.model.options),
        "split": split,
        "domain": domain,
        "kind": kind,
        "k": k if kind == "samples" else 1,
        "sample_seed": seed if kind == "samples" else None,
        "predict_options": options if kind == "samples" else {},
        "max_images": max_images,
        "num_images": images,
        "num_classes": num_classes,
        "ece_bins": ECE_BINS,
        "auroc_bins": AUROC_BINS,
        "precision": precision,
        "scores": scores,
        "predict_seconds": seconds,
        "images_per_s": images / seconds if seconds > 0 else float("nan"),
        "provenance": provenance(cfg.hash(), cfg.seed, dev),
    }
    with atomic_path(out.with_suffix(".npz")) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **kept)
    record["wall_seconds"] = time.perf_counter() - start  # loading the model included
    write_json(out.with_suffix(".json"), record)
    return record
