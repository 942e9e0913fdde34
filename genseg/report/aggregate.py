"""Metrics JSONs -> one tidy CSV: a row per run x split x domain x predict options x metric."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..engine.evaluate import variant_name
from ..experiments import RUN_ID
from ..io import atomic_path

SUMMARY_METRICS = ("miou", "macc", "aacc")
COLUMNS = [
    "run_id", "experiment", "method", "seed", "dataset", "train_domains", "split", "domain",
    "in_domain", "variant", "predict_options", "steps", "nfe", "model_options", "metric", "value",
]


def tidy_rows(record: dict) -> list[dict]:
    """Rows for one evaluation record (the JSON written by ``genseg evaluate``)."""
    domain = "+".join(record["domains"])
    key = {
        "run_id": record["run_id"],
        "experiment": record["experiment"],
        "method": record["method"],
        "seed": record["provenance"]["seed"],
        "dataset": record["dataset"],
        "train_domains": "+".join(record["train_domains"]),
        "split": record["split"],
        "domain": domain,
        "in_domain": set(record["domains"]) <= set(record["train_domains"]),
        "variant": variant_name(record["predict_options"]),
        "predict_options": json.dumps(record["predict_options"], sort_keys=True),
        "steps": record["predict_options"].get("steps", record["model"].get("steps")),
        "nfe": record.get("nfe"),
        "model_options": json.dumps(record["model"], sort_keys=True),
    }
    scores = record["scores"]
    rows = [dict(key, metric=m, value=scores[m]) for m in SUMMARY_METRICS]
    rows += [dict(key, metric=f"iou/{c}", value=v) for c, v in zip(record["classes"], scores["iou"])]
    rows += [
        dict(key, metric="images_per_s", value=record["images_per_s"]),
        dict(key, metric="peak_memory_mb", value=record["peak_memory_mb"]),
    ]
    return rows


def aggregate(paths: list[str | Path], out: str | Path) -> pd.DataFrame:
    rows = []
    for path in map(Path, paths):
        data = json.loads(path.read_text())
        if "records" in data:  # an index written by evaluate_plan
            rows += [r for rel in data["records"] for r in tidy_rows(json.loads((path.parent / rel).read_text()))]
        else:
            rows += tidy_rows(data)
    frame = pd.DataFrame(rows, columns=COLUMNS).sort_values(["experiment", "seed", "split", "domain", "variant", "metric"])
    _write_csv(frame, out)
    return frame


def aggregate_curves(paths: list[str | Path], out: str | Path) -> pd.DataFrame:
    """Validation curves (``runs/<run_id>/val_curve.csv``) -> one CSV with run id, experiment, seed."""
    frames = []
    for path in map(Path, paths):
        curve = pd.read_csv(path)
        run_id = path.parent.name
        match = RUN_ID.fullmatch(run_id)
        if match is None:
            raise ValueError(f"{path}: folder {run_id!r} is not a run id (<experiment>-s<seed>)")
        frames.append(curve.assign(run_id=run_id, experiment=match["experiment"], seed=int(match["seed"])))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["run_id", "experiment", "seed", "step", "val_miou"])
    _write_csv(frame, out)
    return frame


def _write_csv(frame: pd.DataFrame, out: str | Path) -> None:
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False)
