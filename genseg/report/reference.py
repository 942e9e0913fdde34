"""Numbers the papers report (FlowSeg, GSS), read from ``results/reference/paper_reported.csv``.

Every row is a number a paper printed, never one of ours: :func:`load_reported` labels each
row ``kind = "reported"`` so reported and reproduced numbers are never mixed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

REFERENCE_CSV = Path(__file__).resolve().parents[2] / "results/reference/paper_reported.csv"

COLUMNS = ("paper", "table", "method", "backbone", "pretraining", "dataset", "split", "metric", "value", "setting", "source")

TABLES = (
    "flowseg_main_ade20k",
    "flowseg_main_cocostuff",
    "flowseg_steps",
    "flowseg_objective",
    "flowseg_repa",
    "flowseg_distance",
    "gss_main_cityscapes",
    "gss_main_ade20k",
    "gss_cross_domain",
    "gss_reconstruction",
    "gss_posterior",
    "gss_prior",
)


def load_reported(path: str | Path | None = None) -> pd.DataFrame:
    """The reported numbers (``value`` in percent, as printed) with ``kind = "reported"``.

    Text columns stay strings (an empty ``setting`` is ``""``). Raises ``ValueError`` naming
    the file for missing or extra columns, a non-numeric ``value`` or an unknown table id.
    """
    path = Path(path) if path is not None else REFERENCE_CSV
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in frame.columns]
    extra = [c for c in frame.columns if c not in COLUMNS]
    if missing or extra:
        raise ValueError(f"{path}: missing columns {missing}, extra columns {extra}; expected {list(COLUMNS)}")
    values = pd.to_numeric(frame["value"].str.strip(), errors="coerce")
    bad = values.isna()
    if bad.any():
        i = int(bad.idxmax())
        raise ValueError(f"{path}: row {i + 1} (line {i + 2}: {frame.at[i, 'table']} / {frame.at[i, 'method']}) has non-numeric value {frame.at[i, 'value']!r}")
    unknown = sorted(set(frame["table"]) - set(TABLES))
    if unknown:
        raise ValueError(f"{path}: unknown table ids {unknown}; known: {list(TABLES)}")
    frame = frame[list(COLUMNS)].copy()
    frame["value"] = values.astype(float)
    frame["kind"] = "reported"
    return frame


def reported(table: str, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """The rows of one reported table (see ``TABLES``); ``frame`` defaults to :func:`load_reported`."""
    if table not in TABLES:
        raise ValueError(f"unknown reported table {table!r}; known: {list(TABLES)}")
    frame = load_reported() if frame is None else frame
    return frame[frame["table"] == table].reset_index(drop=True)
