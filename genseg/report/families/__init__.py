"""The report as definitions: each family module (main, cross-domain, FlowSeg, GSS, ablations,
statistics, uncertainty) lists its tables and figures; :func:`definitions` collects them, :func:`report_files`
names every file they write (the workflow's list of expected outputs) and
:func:`genseg.report.build.build_report` writes them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

CI_NOTE = " Several seeds: mean [95% bootstrap CI over seeds]."
SPLIT_NOTE = " Split: {split}."
SPLITS_NOTE = " Splits (each domain's own): {splits}."


@dataclass(frozen=True)
class Inputs:
    """What every table and figure is made from: aggregated results, never a model or data."""

    frame: pd.DataFrame  # metrics.csv
    reported: pd.DataFrame  # the papers' numbers (:func:`genseg.report.reference.load_reported`)
    paired: pd.DataFrame  # paired.csv
    curves: pd.DataFrame  # curves.csv
    split: Any = "test"  # a split name, or {domain: split}
    samples: str = ""  # samples.npz, or "" (no qualitative figure)
    ablations: dict = field(default_factory=lambda: {"ablations": [], "rows": []})  # ablations.json
    uncertainty: pd.DataFrame = field(default_factory=pd.DataFrame)  # uncertainty.csv (genseg uncertainty)
    uncertainty_samples: str = ""  # uncertainty_samples.npz, or "" (no maps)


@dataclass(frozen=True)
class Table:
    """``<name>.md`` and ``<name>.tex`` holding the same (table, caption) blocks."""

    name: str
    blocks: Callable[[Inputs], list[tuple[pd.DataFrame, str]]]
    extensions: tuple[str, ...] = ("md", "tex")


@dataclass(frozen=True)
class Figure:
    """``<name>.png`` and ``<name>.pdf``; ``draw(inputs, stem)`` writes both."""

    name: str
    draw: Callable[[Inputs, Path], Any]
    extensions: tuple[str, ...] = ("png", "pdf")


def split_words(split) -> tuple[str, str]:
    """(caption word for the split, its note): ``test`` and " Split: test.", or, when domains
    are evaluated on different splits, ``evaluation`` and the per-domain list."""
    from ..tables import normal_split, split_text

    split = normal_split(split)
    if isinstance(split, str):
        return split, SPLIT_NOTE.format(split=split)
    return "evaluation", SPLITS_NOTE.format(splits=split_text(split))


def caption(template: str, split, ci: bool = True) -> str:
    """``template`` with the split word filled in (``{split}``, ``{Split}``), the CI note and the split note."""
    word, note = split_words(split)
    return (template + (CI_NOTE if ci else "")).format(split=word, Split=word.capitalize()) + note


def definitions(ablations: list[dict] = ()) -> list[Table | Figure]:
    """Every table and figure of the report, family by family; ``ablations``: the ablation files
    (:class:`genseg.ablations.Ablation` as dicts) that join the config, one table (and figure) each."""
    from . import ablations as ablation_family
    from . import cross_domain, flowseg, gss, main, statistics, uncertainty

    return (main.DEFINITIONS + cross_domain.DEFINITIONS + flowseg.DEFINITIONS + gss.DEFINITIONS
            + statistics.DEFINITIONS + uncertainty.DEFINITIONS + ablation_family.definitions(ablations))


def report_files(ablations: list[dict] = ()) -> dict[str, tuple[str, ...]]:
    """Report file stem -> extensions, for every definition (a table and a figure may share a stem)."""
    files: dict[str, tuple[str, ...]] = {}
    for definition in definitions(ablations):
        files[definition.name] = files.get(definition.name, ()) + definition.extensions
    return files
