"""Metrics JSONs -> one tidy CSV: a row per run x split x domain x predict options x metric."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..io import atomic_path

SUMMARY_METRICS = ("miou", "macc", "aacc")
COLUMNS = [
    "run_id", "experiment", "method", "seed", "dataset", "train_domains", "split", "domain",
    "in_domain", "predict_options", "metric", "value",
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
        "predict_options": json.dumps(record["predict_options"], sort_keys=True),
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
    for path in paths:
        rows += tidy_rows(json.loads(Path(path).read_text()))
    frame = pd.DataFrame(rows, columns=COLUMNS).sort_values(["experiment", "seed", "split", "domain", "metric"])
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False)
    return frame
