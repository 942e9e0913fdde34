"""Every table and figure of the report from aggregated results alone (no model, no data).

Inputs are the files ``genseg aggregate`` writes under ``results/<config>/`` (``metrics.csv``,
``curves.csv``, ``paired.csv``, each read from its ``.parquet`` when present, ``samples.npz``,
``uncertainty.csv``, ``uncertainty_samples.npz``) and the workflow's ``ablations.json``; the
papers' numbers come from ``results/reference/paper_reported.csv`` and are always shown as
"reported", in their own columns or blocks, never mixed with ours. What is written is the
list of definitions in :mod:`genseg.report.families`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..io import write_text
from . import tables
from .aggregate import UNCERTAINTY_COLUMNS, read_results, with_identity
from .families import Inputs, Table, definitions
from .reference import load_reported

PAIRED_COLUMNS = ["a", "b", "seed", "domain", "delta", "ci_low", "ci_high", "p_value", "n_images"]


def table_blocks(name: str, frame: pd.DataFrame, reported: pd.DataFrame, paired: pd.DataFrame,
                 split: str = "test") -> list[tuple[pd.DataFrame, str]]:
    """The (table, caption) blocks of the report table ``name`` from ``split``'s rows: ours first, then reported blocks."""
    inputs = Inputs(with_identity(frame), reported, paired, pd.DataFrame(), tables.normal_split(split))
    table = next((d for d in definitions() if isinstance(d, Table) and d.name == name), None)
    if table is None:
        raise ValueError(f"no report table {name!r}; tables: {[d.name for d in definitions() if isinstance(d, Table)]}")
    return table.blocks(inputs)


def write_table(out: Path, name: str, blocks: list[tuple[pd.DataFrame, str]]) -> None:
    """``<name>.md`` and ``<name>.tex`` with the same blocks."""
    write_text(out / f"{name}.md", "\n".join(tables.to_markdown(t, c) for t, c in blocks))
    label = f"tab:{name.replace('_', '-')}"
    write_text(out / f"{name}.tex", "\n".join(tables.to_latex(t, c, label if i == 0 else f"{label}-{i}") for i, (t, c) in enumerate(blocks)))


def report_inputs(metrics: str | Path, *, curves: str | Path = "", ablations: str | Path = "", paired: str | Path = "",
                  samples: str | Path = "", reported: str | Path | None = None, split="test",
                  uncertainty: str | Path = "", uncertainty_samples: str | Path = "") -> Inputs:
    """The report's :class:`Inputs` from the aggregated files (tidy tables by their CSV path; the
    parquet beside each is read when present, :func:`genseg.report.aggregate.read_results`).
    ``uncertainty`` (and its ``uncertainty_samples``): ``genseg aggregate --uncertainty-out`` (none:
    the uncertainty table says so)."""
    index = json.loads(Path(ablations).read_text()) if ablations else {"ablations": [], "rows": []}
    return Inputs(
        frame=with_identity(read_results(metrics)),
        reported=load_reported(reported),
        paired=read_results(paired) if paired else pd.DataFrame(columns=PAIRED_COLUMNS),
        curves=read_results(curves) if curves else pd.DataFrame(columns=["run_id", "experiment", "step", "val_miou"]),
        split=tables.normal_split(split),
        samples=str(samples) if samples else "",
        ablations=index,
        uncertainty=read_results(uncertainty) if uncertainty else pd.DataFrame(columns=UNCERTAINTY_COLUMNS),
        uncertainty_samples=str(uncertainty_samples) if uncertainty_samples else "",
    )


def build_report(metrics: str | Path, out_dir: str | Path, **files) -> list[str]:
    """Write every table (.md, .tex) and figure (.png, .pdf) of ``split``'s results into
    ``out_dir``; returns the table names. ``files``: :func:`report_inputs`' keywords; ``split``:
    one split for every domain, or ``{domain: split}`` (the workflow's ``evaluate.domains``: each
    domain's own split)."""
    inputs = report_inputs(metrics, **files)
    out = Path(out_dir)
    written = []
    for definition in definitions(inputs.ablations["ablations"]):
        if isinstance(definition, Table):
            write_table(out, definition.name, definition.blocks(inputs))
            written.append(definition.name)
        else:
            definition.draw(inputs, out / definition.name)
    return written
