"""Universal taxonomies in the manner of MSeg (Lambert et al., CVPR 2020).

A taxonomy is a folder of CSV files (``genseg/data/taxonomies/<name>/``): ``universal.csv``
(``id,name,description``) lists the universal classes, and one ``<dataset>.csv``
(``dataset_id,dataset_class,universal,note``) per dataset says which universal class(es)
each dataset class covers (several joined with ``;``, empty for none).

Two rules use it:

1. Training (:func:`to_universal`): labels are relabelled into universal ids. A dataset
   class covering exactly one universal class becomes that id; one covering several
   (ambiguous per pixel) or none becomes the ignore index.
2. Evaluation (:func:`universal_to_dataset`, :func:`converted_predictions`): universal
   predictions are mapped into the test set's own classes; a universal class the test set
   does not have becomes K, which :mod:`genseg.metrics` counts as wrong.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from genseg.data.base import IGNORE_INDEX, DataError, SplitSpec

TAXONOMY_ROOT = Path(__file__).parent / "taxonomies"
UNIVERSAL_COLUMNS = ("id", "name", "description")
DATASET_COLUMNS = ("dataset_id", "dataset_class", "universal", "note")


@dataclass(frozen=True)
class DatasetMapping:
    """One dataset's classes (in train-id order) and the universal ids each covers."""

    dataset: str
    classes: tuple[str, ...]
    universal: tuple[tuple[int, ...], ...]
    source: Path

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass(frozen=True, eq=False)
class Taxonomy:
    """Universal class names and the per-dataset mappings into them."""

    name: str
    classes: tuple[str, ...]
    mappings: dict[str, DatasetMapping]
    descriptions: tuple[str, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def datasets(self) -> tuple[str, ...]:
        return tuple(sorted(self.mappings))

    def mapping(self, dataset: str) -> DatasetMapping:
        """The mapping of ``dataset``; DataError listing the known datasets otherwise."""
        try:
            return self.mappings[dataset]
        except KeyError:
            raise DataError(
                f"taxonomy {self.name!r} has no {dataset}.csv (datasets: {', '.join(self.datasets)})"
            ) from None


def _read_csv(path: Path, columns: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """Rows of ``path`` as (line number, row); DataError if a column is missing."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [c for c in columns if c not in header]
            if missing:
                raise DataError(
                    f"{path}: missing column(s) {', '.join(missing)} "
                    f"(expected header {','.join(columns)}, found {','.join(header) or 'nothing'})"
                )
            rows = []
            for row in reader:
                if not any((value or "").strip() for value in row.values() if isinstance(value, str)):
                    continue  # blank line
                rows.append((reader.line_num, {c: (row[c] or "").strip() for c in columns}))
            return rows
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"cannot read {path}: {err}") from None


def _integer(path: Path, line: int, column: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise DataError(f"{path}: row {line}: {column} {value!r} is not an integer") from None


def _read_universal(path: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    names, descriptions = [], []
    for line, row in _read_csv(path, UNIVERSAL_COLUMNS):
        ident = _integer(path, line, "id", row["id"])
        if ident != len(names):
            raise DataError(f"{path}: row {line}: id {ident}, expected {len(names)} (ids are 0, 1, 2, ... in order)")
        if not row["name"]:
            raise DataError(f"{path}: row {line}: empty name")
        if row["name"] in names:
            raise DataError(f"{path}: row {line}: duplicate name {row['name']!r} (also id {names.index(row['name'])})")
        if ";" in row["name"]:
            raise DataError(f"{path}: row {line}: name {row['name']!r} contains ';' (the list separator)")
        names.append(row["name"])
        descriptions.append(row["description"])
    if not names:
        raise DataError(f"{path}: no universal classes")
    return tuple(names), tuple(descriptions)


def _read_mapping(path: Path, universal: tuple[str, ...]) -> DatasetMapping:
    index = {name: i for i, name in enumerate(universal)}
    by_id: dict[int, tuple[int, str, tuple[int, ...]]] = {}
    owner: dict[int, tuple[int, str]] = {}
    for line, row in _read_csv(path, DATASET_COLUMNS):
        ident = _integer(path, line, "dataset_id", row["dataset_id"])
        if ident in by_id:
            raise DataError(f"{path}: row {line}: duplicate dataset_id {ident} (first on row {by_id[ident][0]})")
        if not row["dataset_class"]:
            raise DataError(f"{path}: row {line}: empty dataset_class")
        ids = []
        for name in (part.strip() for part in row["universal"].split(";")):
            if not name:
                continue
            if name not in index:
                raise DataError(
                    f"{path}: row {line}: unknown universal class {name!r} "
                    f"(expected one of {', '.join(universal)})"
                )
            uid = index[name]
            if uid in owner:
                other_line, other_class = owner[uid]
                raise DataError(
                    f"{path}: row {line}: universal class {name!r} is already covered by "
                    f"{other_class!r} (row {other_line}); each universal class may map to one dataset class"
                )
            owner[uid] = (line, row["dataset_class"])
            ids.append(uid)
        by_id[ident] = (line, row["dataset_class"], tuple(ids))
    if not by_id:
        raise DataError(f"{path}: no dataset classes")
    if sorted(by_id) != list(range(len(by_id))):
        raise DataError(f"{path}: dataset_id values {sorted(by_id)}, expected 0..{len(by_id) - 1} (train ids)")
    rows = [by_id[i] for i in range(len(by_id))]
    return DatasetMapping(
        dataset=path.stem,
        classes=tuple(r[1] for r in rows),
        universal=tuple(r[2] for r in rows),
        source=path,
    )


def load_taxonomy(name_or_dir: str | Path) -> Taxonomy:
    """Read a taxonomy: a shipped name (``"road"``) or a path to a folder of CSVs."""
    shipped = TAXONOMY_ROOT / str(name_or_dir)
    if isinstance(name_or_dir, str) and "/" not in name_or_dir and shipped.is_dir():
        folder = shipped
    else:
        folder = Path(name_or_dir)
    if not folder.is_dir():
        known = sorted(p.name for p in TAXONOMY_ROOT.iterdir() if p.is_dir()) if TAXONOMY_ROOT.is_dir() else []
        raise DataError(f"no taxonomy folder {folder} (shipped taxonomies: {', '.join(known) or 'none'})")
    universal_csv = folder / "universal.csv"
    if not universal_csv.is_file():
        raise DataError(f"taxonomy folder {folder} has no universal.csv")
    classes, descriptions = _read_universal(universal_csv)
    mappings = {
        path.stem: _read_mapping(path, classes) for path in sorted(folder.glob("*.csv")) if path.name != "universal.csv"
    }
    return Taxonomy(name=folder.name, classes=classes, mappings=mappings, descriptions=descriptions)


def _check_classes(spec: SplitSpec, mapping: DatasetMapping) -> None:
    if tuple(spec.classes) != mapping.classes:
        raise DataError(
            f"split {spec.name!r} has classes {list(spec.classes)} but {mapping.source} "
            f"lists (dataset_class, in dataset_id order) {list(mapping.classes)}"
        )


def to_universal(spec: SplitSpec, taxonomy: Taxonomy, dataset: str) -> SplitSpec:
    """Rule 1: ``spec`` relabelled into universal ids (ambiguous or unmapped classes -> ignore)."""
    mapping = taxonomy.mapping(dataset)
    _check_classes(spec, mapping)
    k = mapping.num_classes
    table = np.array([ids[0] if len(ids) == 1 else IGNORE_INDEX for ids in mapping.universal], dtype=np.int16)
    lut = np.asarray(spec.label_lut).astype(np.int16)
    is_class = (lut >= 0) & (lut < k)
    odd = ~is_class & (lut != IGNORE_INDEX) & (lut != -1)
    if odd.any():
        raise DataError(f"split {spec.name!r}: label_lut has values {np.unique(lut[odd]).tolist()} outside 0..{k - 1}, {IGNORE_INDEX}, -1")
    relabelled = np.where(is_class, table[np.clip(lut, 0, k - 1)], lut).astype(np.int16)
    return SplitSpec(
        name=f"{spec.name}@{taxonomy.name}",
        classes=taxonomy.classes,
        pairs=spec.pairs,
        label_lut=relabelled,
        lut_of_pair=spec.lut_of_pair,
    )


def union(specs: Sequence[SplitSpec], name: str | None = None) -> SplitSpec:
    """Concatenate splits that share ``classes``; each pair keeps its own lut (2-D ``label_lut``)."""
    if not specs:
        raise DataError("union of no splits")
    classes = tuple(specs[0].classes)
    rows: list[np.ndarray] = []
    row_of: dict[bytes, int] = {}
    pairs: list[tuple[Path, Path]] = []
    lut_of_pair: list[int] = []
    for spec in specs:
        if tuple(spec.classes) != classes:
            raise DataError(
                f"cannot unite {spec.name!r} with {specs[0].name!r}: classes differ "
                f"({list(spec.classes)} vs {list(classes)}); relabel both with to_universal first"
            )
        for index in range(len(spec.pairs)):
            lut = np.asarray(spec.lut(index), dtype=np.int16)
            key = lut.tobytes()
            if key not in row_of:
                row_of[key] = len(rows)
                rows.append(lut)
            lut_of_pair.append(row_of[key])
        pairs.extend(spec.pairs)
    label_lut = np.stack(rows) if rows else np.asarray(specs[0].label_lut, dtype=np.int16).reshape(-1, 256)[:1]
    return SplitSpec(
        name=name or "+".join(spec.name for spec in specs),
        classes=classes,
        pairs=tuple(pairs),
        label_lut=label_lut,
        lut_of_pair=tuple(lut_of_pair),
    )


def universal_to_dataset(taxonomy: Taxonomy, dataset: str) -> np.ndarray:
    """Rule 2: int64[U], universal id -> the dataset's class id, or K where it has none."""
    mapping = taxonomy.mapping(dataset)
    table = np.full(taxonomy.num_classes, mapping.num_classes, dtype=np.int64)
    for class_id, ids in enumerate(mapping.universal):
        table[list(ids)] = class_id
    return table


def converted_predictions(pred: torch.Tensor, table: np.ndarray) -> torch.Tensor:
    """Universal-id predictions mapped through ``table`` (from :func:`universal_to_dataset`)."""
    lookup = torch.as_tensor(table, dtype=torch.long, device=pred.device)
    pred = pred.long()
    if pred.numel() and (bool((pred < 0).any()) or bool((pred >= lookup.numel()).any())):
        raise ValueError(f"predictions outside the universal ids 0..{lookup.numel() - 1}")
    return lookup[pred]
