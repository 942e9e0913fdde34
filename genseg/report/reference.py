"""Numbers the papers report (FlowSeg, GSS), read from the package's ``data/paper_reported.csv``
(``results/reference/paper_reported.csv`` in the repository is a symlink to it).

Every row is a number a paper printed, never one of ours: :func:`load_reported` labels each
row ``kind = "reported"`` so reported and reproduced numbers are never mixed. Every row cites
its paper (``paper``, ``venue``, ``arxiv``) and where in it the number is (``location``);
``arxiv`` names a version (``2303.11316v2``) only where the numbers were seen in that version's
text, and a bare id's ``note`` says "version not verified" (tests/test_reference.py).
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pandas as pd

REFERENCE_CSV = resources.files("genseg.report") / "data" / "paper_reported.csv"

COLUMNS = (
    "paper", "table", "method", "backbone", "pretraining", "dataset", "split", "metric", "value", "setting",
    "venue", "arxiv", "location", "note",
)
# What each paper's rows must cite (venue, arXiv id); the same for every row of one paper.
PAPERS = {"GSS": ("CVPR 2023", "2303.11316"), "FlowSeg": ("arXiv preprint", "2603.19218")}
ARXIV_ID = re.compile(r"\d{4}\.\d{4,5}(v\d+)?")

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
    the file for missing or extra columns, a non-numeric ``value``, an unknown table id or a
    row without its citation (unknown paper, wrong venue or arXiv id, empty ``location``).
    """
    if path is None:
        with resources.as_file(REFERENCE_CSV) as packaged:
            return load_reported(packaged)
    path = Path(path)
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
    for i, row in frame.iterrows():
        where = f"{path}: row {i + 1} (line {i + 2}: {row['table']} / {row['method']})"
        if row["paper"] not in PAPERS:
            raise ValueError(f"{where}: unknown paper {row['paper']!r}; known: {list(PAPERS)}")
        venue, arxiv = PAPERS[row["paper"]]
        if row["venue"] != venue or not ARXIV_ID.fullmatch(row["arxiv"]) or row["arxiv"].split("v")[0] != arxiv:
            raise ValueError(f"{where}: cites venue {row['venue']!r}, arXiv {row['arxiv']!r}; "
                             f"{row['paper']} is {venue!r}, arXiv {arxiv} (optionally with its version, {arxiv}v2)")
        if not row["location"].strip():
            raise ValueError(f"{where}: empty location (the paper's table or figure, or why it is not recorded)")
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
