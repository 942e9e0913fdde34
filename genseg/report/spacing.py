"""Centroid spacing against mIoU: an ablation's runs with the minimum pairwise distance of their
class centroids, min_{i != j} ||c_i - c_j||_2 (:func:`genseg.encodings.encoding_min_distance`).

Each run is read from its results only: the encoding from its model options (``encoding``,
``encoding_seed``), N from the classes its evaluation scored, validation mIoU from the last
point of its validation curve, test mIoU from its in-domain default evaluation (means over seeds).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from .stats import correlation
from .tables import select_split

COLUMNS = ["variant", "encoding", "N", "min_distance", "val_miou", "test_miou", "budget"]


def _min_distance(options: dict, num_classes: int) -> float:
    from ..encodings import ENCODINGS, encoding_min_distance

    name = options.get("encoding")
    if name not in ENCODINGS or num_classes < 2:
        return float("nan")
    return encoding_min_distance(name, num_classes, int(options.get("encoding_seed", 0)))


def points(frame: pd.DataFrame, curves: pd.DataFrame, rows: list[dict], split="test") -> pd.DataFrame:
    """One row per ablation row (``{label, experiment}``) with results: :data:`COLUMNS`."""
    sel = select_split(frame, split)
    sel = sel[sel.in_domain & (sel.variant == "default")]
    last = curves.sort_values("step").groupby("run_id").tail(1) if not curves.empty else curves
    out = []
    for row in rows:
        part = sel[sel.experiment == row["experiment"]]
        miou = part[part.metric == "miou"]
        if miou.empty:
            continue
        num_classes = int(part[part.metric.str.startswith("iou/")].metric.nunique())
        options = json.loads(miou.model_options.iloc[0])
        val = last[last.experiment == row["experiment"]].val_miou if not last.empty else pd.Series([], dtype=float)
        out.append({"variant": row["label"], "encoding": options.get("encoding", "–"), "N": num_classes,
                    "min_distance": _min_distance(options, num_classes),
                    "val_miou": float(val.mean()) if len(val) else float("nan"),
                    "test_miou": float(miou.value.mean()), "budget": " / ".join(sorted(set(miou.budget.astype(str))))})
    return pd.DataFrame(out, columns=COLUMNS)


def table(data: pd.DataFrame) -> pd.DataFrame:
    """Encoding, N, min distance (3 decimals), val and test mIoU (%), sorted by N then distance."""
    data = data.sort_values(["N", "min_distance"], kind="stable")
    return pd.DataFrame({
        "Encoding": data.encoding.to_numpy(), "N": data.N.to_numpy(),
        "min distance": [f"{v:.3f}" for v in data.min_distance],
        "val mIoU": [_percent(v) for v in data.val_miou], "test mIoU": [_percent(v) for v in data.test_miou],
    }).set_index("Encoding")


def _percent(value: float) -> str:
    return "–" if np.isnan(value) else f"{100 * value:.1f}"


def correlations(data: pd.DataFrame, **kw) -> pd.DataFrame:
    """Spearman and Pearson correlation of min distance with val and test mIoU: per N, pooled over
    every run, and within N (distance and mIoU centred per N, bootstrap resampled within N, so
    N's own effect on both does not count), each with its 95% percentile-bootstrap CI."""
    rows = []
    groups = [(f"N = {n}", part, None) for n, part in data.groupby("N", sort=True)]
    if data.N.nunique() > 1:
        groups += [("pooled", data, None), ("within N", _centred(data), data.N.to_numpy())]
    for name, part, strata in groups:
        row = {"Runs": name, "n": len(part)}
        for split in ("val", "test"):
            c = correlation(part.min_distance, part[f"{split}_miou"], groups=strata, **kw)
            row[f"{split} Spearman"] = _with_ci(c, "spearman")
            row[f"{split} Pearson"] = _with_ci(c, "pearson")
        rows.append(row)
    return pd.DataFrame(rows, columns=["Runs", "n", "val Spearman", "val Pearson", "test Spearman", "test Pearson"]).set_index("Runs")


def _centred(data: pd.DataFrame) -> pd.DataFrame:
    by = data.groupby("N")
    centred = {c: data[c] - by[c].transform("mean") for c in ("min_distance", "val_miou", "test_miou")}
    return data.assign(**centred)


def _with_ci(c: dict, name: str) -> str:
    if np.isnan(c[name]):
        return "–"
    if np.isnan(c[f"{name}_low"]):
        return f"{c[name]:+.2f}"
    return f"{c[name]:+.2f} [{c[f'{name}_low']:+.2f}, {c[f'{name}_high']:+.2f}]"
