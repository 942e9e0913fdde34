"""Single-source transfer: a model trained in one dataset's own classes, scored on another's.

A mapping table ``genseg/data/mappings/<source>-to-<target>.csv`` (``source_id,source_class,
target_class,note``) gives each source class (train-id order) the one target class it counts
as (many to one), or none (empty: a prediction of it is always wrong). A target class that no
source class maps to is *unreachable*: every pixel of it is an error, and reports say how many
there are. Decisions are written down in ``genseg/data/mappings/README.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .base import DataError
from .taxonomy import _integer, _read_csv

MAPPING_ROOT = Path(__file__).parent / "mappings"
MAPPING_COLUMNS = ("source_id", "source_class", "target_class", "note")


@dataclass(frozen=True)
class TransferMapping:
    source: str
    target: str
    source_classes: tuple[str, ...]
    targets: tuple[str, ...]  # per source class: its target class name, "" for none
    path: Path


def mapping_path(source: str, target: str) -> Path:
    return MAPPING_ROOT / f"{source}-to-{target}.csv"


def shipped_mappings() -> list[str]:
    return sorted(p.stem for p in MAPPING_ROOT.glob("*-to-*.csv"))


def load_mapping(source: str, target: str, path: str | Path | None = None) -> TransferMapping:
    """Read ``<source>-to-<target>.csv`` (or ``path``); DataError naming the file, row and problem."""
    path = Path(path) if path else mapping_path(source, target)
    if not path.is_file():
        raise DataError(
            f"no class mapping {path.name} for transfer from {source} to {target} (shipped: "
            f"{', '.join(shipped_mappings()) or 'none'}); write one in {MAPPING_ROOT} (see its README.md)"
        )
    by_id: dict[int, tuple[str, str]] = {}
    for line, row in _read_csv(path, MAPPING_COLUMNS):
        ident = _integer(path, line, "source_id", row["source_id"])
        if ident in by_id:
            raise DataError(f"{path}: row {line}: duplicate source_id {ident}")
        if not row["source_class"]:
            raise DataError(f"{path}: row {line}: empty source_class")
        by_id[ident] = (row["source_class"], row["target_class"])
    if sorted(by_id) != list(range(len(by_id))):
        raise DataError(f"{path}: source_id values {sorted(by_id)}, expected 0..{len(by_id) - 1} (the source's train ids)")
    rows = [by_id[i] for i in range(len(by_id))]
    return TransferMapping(source, target, tuple(r[0] for r in rows), tuple(r[1] for r in rows), path)


def transfer_table(mapping: TransferMapping, source_classes: Sequence[str], target_classes: Sequence[str]) -> np.ndarray:
    """int64[K_source]: source class id -> target class id, or K_target (counted wrong) for none.

    Checks the table's source classes against the model's and its targets against the test set's."""
    if tuple(source_classes) != mapping.source_classes:
        raise DataError(
            f"{mapping.path}: source_class column {list(mapping.source_classes)} is not the model's classes "
            f"{list(source_classes)} (in train-id order)"
        )
    table = np.full(len(source_classes), len(target_classes), dtype=np.int64)
    for i, target in enumerate(mapping.targets):
        if target:
            if target not in target_classes:
                raise DataError(f"{mapping.path}: row of {source_classes[i]!r}: unknown target_class {target!r} "
                                f"(expected one of {', '.join(target_classes)}, or empty for none)")
            table[i] = list(target_classes).index(target)
    return table


def unreachable(table: np.ndarray, target_classes: Sequence[str]) -> list[str]:
    """Target classes no model class maps to (every pixel of them is counted wrong)."""
    reached = set(np.asarray(table).tolist())
    return [name for i, name in enumerate(target_classes) if i not in reached]
