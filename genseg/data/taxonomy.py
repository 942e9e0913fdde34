"""Universal taxonomies in the manner of MSeg (Lambert et al., CVPR 2020).

A taxonomy is a folder of CSV files (``genseg/data/taxonomies/<name>/``): ``universal.csv``
(``id,name,description[,parts]``) lists the universal classes, and one ``<dataset>.csv``
(``dataset_id,dataset_class,universal,note``) per dataset says which universal class(es)
each dataset class covers (several joined with ``;``, empty for none); several dataset classes
may cover the same universal class (MSeg's many-to-one merges: such a dataset trains, but
cannot be evaluated in its own classes). A universal class
with ``parts`` (``;``-separated names of other universal classes) is a *merged* class: the
union of its parts, for dataset classes that do not tell the parts apart.

Two rules use it:

1. Training (:func:`to_universal`): labels are relabelled into universal ids. A dataset
   class covering exactly one universal class becomes that id; one covering several becomes
   the merged class whose parts are exactly those (if the taxonomy has one). Any other
   class (several without a merged class, or none) is an error unless the run lists it in
   ``ignore`` (config ``data.ignore_classes``): nothing is dropped silently.
   :func:`ignored_fraction` measures, from the labels, the share of labelled pixels so lost.
2. Evaluation (:func:`universal_to_dataset`, :func:`converted_predictions`): universal
   predictions are mapped into the test set's own classes; a universal class the test set
   does not have becomes K, which :mod:`genseg.metrics` counts as wrong. A merged class
   becomes the test-set class holding all its parts, else the one holding its first part.
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
UNIVERSAL_COLUMNS = ("id", "name", "description")  # + optional "parts" (merged classes)
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

    def shared(self) -> dict[int, tuple[str, ...]]:
        """Universal ids covered by several of this dataset's classes (MSeg's many-to-one merges,
        e.g. ADE20K's house and skyscraper -> building), with those classes."""
        covers: dict[int, list[str]] = {}
        for name, ids in zip(self.classes, self.universal):
            for uid in ids:
                covers.setdefault(uid, []).append(name)
        return {uid: tuple(names) for uid, names in covers.items() if len(names) > 1}


@dataclass(frozen=True, eq=False)
class Taxonomy:
    """Universal class names and the per-dataset mappings into them."""

    name: str
    classes: tuple[str, ...]
    mappings: dict[str, DatasetMapping]
    descriptions: tuple[str, ...] = ()
    parts: tuple[tuple[int, ...], ...] = ()  # per class: the universal ids it merges (() for a plain class)

    def merged(self, ids: Sequence[int]) -> int | None:
        """The merged class whose parts are exactly ``ids``, or None."""
        wanted = set(ids)
        return next((i for i, p in enumerate(self.parts) if p and set(p) == wanted), None)

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


def _read_csv(path: Path, columns: Sequence[str], optional: Sequence[str] = ()) -> list[tuple[int, dict[str, str]]]:
    """Rows of ``path`` as (line number, row); DataError if a column is missing (``optional``: "" if absent)."""
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
                rows.append((reader.line_num, {c: (row.get(c) or "").strip() for c in (*columns, *optional)}))
            return rows
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"cannot read {path}: {err}") from None


def _integer(path: Path, line: int, column: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise DataError(f"{path}: row {line}: {column} {value!r} is not an integer") from None


def _read_universal(path: Path) -> tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[int, ...], ...]]:
    names, descriptions, part_names = [], [], []
    for line, row in _read_csv(path, UNIVERSAL_COLUMNS, optional=("parts",)):
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
        part_names.append((line, [p.strip() for p in row["parts"].split(";") if p.strip()]))
    if not names:
        raise DataError(f"{path}: no universal classes")
    parts = []
    for (line, listed), name in zip(part_names, names):
        for part in listed:
            if part not in names or part == name:
                raise DataError(f"{path}: row {line}: part {part!r} of merged class {name!r} is not another universal class")
            if part_names[names.index(part)][1]:
                raise DataError(f"{path}: row {line}: part {part!r} of merged class {name!r} is itself merged (parts are plain classes)")
        if len(listed) == 1:
            raise DataError(f"{path}: row {line}: merged class {name!r} has one part {listed[0]!r} (a merged class needs two or more)")
        parts.append(tuple(names.index(p) for p in listed))
    return tuple(names), tuple(descriptions), tuple(parts)


def _read_mapping(path: Path, universal: tuple[str, ...], merged: frozenset[str] = frozenset()) -> DatasetMapping:
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
            if name in merged:
                raise DataError(
                    f"{path}: row {line}: {name!r} is a merged universal class; list its parts instead "
                    f"(a class covering exactly a merged class's parts trains as it)"
                )
            uid = index[name]
            if uid in owner and owner[uid][0] == line:
                raise DataError(f"{path}: row {line}: universal class {name!r} listed twice")
            owner.setdefault(uid, (line, row["dataset_class"]))
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
    classes, descriptions, parts = _read_universal(universal_csv)
    merged = frozenset(name for name, p in zip(classes, parts) if p)
    mappings = {
        path.stem: _read_mapping(path, classes, merged) for path in sorted(folder.glob("*.csv")) if path.name != "universal.csv"
    }
    return Taxonomy(name=folder.name, classes=classes, mappings=mappings, descriptions=descriptions, parts=parts)


def _check_classes(spec: SplitSpec, mapping: DatasetMapping) -> None:
    if tuple(spec.classes) != mapping.classes:
        raise DataError(
            f"split {spec.name!r} has classes {list(spec.classes)} but {mapping.source} "
            f"lists (dataset_class, in dataset_id order) {list(mapping.classes)}"
        )


def training_table(taxonomy: Taxonomy, dataset: str, ignore: Sequence[str] = ()) -> np.ndarray:
    """Rule 1 as int16[K]: dataset class id -> universal id (the class itself, or the merged
    class of exactly its parts), or the ignore index for the classes listed in ``ignore``.

    A class that covers several universal classes without a merged class, or none, and is not
    in ``ignore``, is a DataError naming it: a taxonomy never drops labels silently."""
    mapping = taxonomy.mapping(dataset)
    unknown = [c for c in ignore if c not in mapping.classes]
    if unknown:
        raise DataError(f"data.ignore_classes.{dataset}: {unknown} are not classes of {dataset} ({', '.join(mapping.classes)})")
    table, problems = [], []
    for name, ids in zip(mapping.classes, mapping.universal):
        target = ids[0] if len(ids) == 1 else taxonomy.merged(ids) if ids else None
        if name in ignore:
            target = IGNORE_INDEX
        elif target is None:
            covers = ", ".join(taxonomy.classes[i] for i in ids) or "no universal class"
            problems.append(f"{name!r} (covers {covers})")
        table.append(IGNORE_INDEX if target is None else target)
    if problems:
        raise DataError(
            f"taxonomy {taxonomy.name!r} cannot train {dataset} class(es) {', '.join(problems)}: no universal class "
            f"or merged class (universal.csv `parts`) equals them in {mapping.source}. Add a merged class to the "
            f"taxonomy, or drop them explicitly with data.ignore_classes: {{{dataset}: [...]}}"
        )
    return np.array(table, dtype=np.int16)


def to_universal(spec: SplitSpec, taxonomy: Taxonomy, dataset: str, ignore: Sequence[str] = ()) -> SplitSpec:
    """Rule 1: ``spec`` relabelled into universal ids (:func:`training_table`)."""
    mapping = taxonomy.mapping(dataset)
    _check_classes(spec, mapping)
    k = mapping.num_classes
    table = training_table(taxonomy, dataset, ignore)
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
        parts=spec.parts,
    )


def union(specs: Sequence[SplitSpec], name: str | None = None) -> SplitSpec:
    """Concatenate splits that share ``classes``; each pair keeps its own lut (2-D ``label_lut``),
    each split is one of the union's ``parts``."""
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
    parts = tuple(n for spec in specs for n in (spec.parts or (len(spec.pairs),)))
    return SplitSpec(
        name=name or "+".join(spec.name for spec in specs),
        classes=classes,
        pairs=tuple(pairs),
        label_lut=label_lut,
        lut_of_pair=tuple(lut_of_pair),
        parts=parts if len(parts) > 1 else (),
    )


def universal_to_dataset(taxonomy: Taxonomy, dataset: str) -> np.ndarray:
    """Rule 2: int64[U], universal id -> the dataset's class id, or K where it has none."""
    mapping = taxonomy.mapping(dataset)
    shared = mapping.shared()
    if shared:
        uid, names = next(iter(shared.items()))
        raise DataError(
            f"{dataset} cannot be evaluated through taxonomy {taxonomy.name!r}: universal class {taxonomy.classes[uid]!r} "
            f"covers several {dataset} classes ({', '.join(names)}) in {mapping.source}, so a prediction of it names no one "
            f"{dataset} class ({len(shared)} such universal class(es)). Train on {dataset}; evaluate on another dataset"
        )
    table = np.full(taxonomy.num_classes, mapping.num_classes, dtype=np.int64)
    for class_id, ids in enumerate(mapping.universal):
        table[list(ids)] = class_id
    for merged, parts in enumerate(taxonomy.parts):
        if parts:  # the class holding all its parts, else the one holding its first part
            holders = {int(table[p]) for p in parts}
            table[merged] = holders.pop() if len(holders) == 1 else table[parts[0]]
    return table


def ignored_fraction(spec: SplitSpec, relabelled: SplitSpec, max_images: int = 0) -> dict:
    """The share of ``spec``'s labelled pixels that ``relabelled`` (its :func:`to_universal`)
    turns into ignore, counted from the label files (evenly spaced ``max_images`` of them if
    > 0). Returns ``{labelled, lost, fraction, images, by_class: {class: lost pixels}}``."""
    from .base import read_label

    n = len(spec.pairs)
    indices = range(n) if not max_images or n <= max_images else np.linspace(0, n - 1, max_images).round().astype(int)
    k = spec.num_classes
    labelled, lost = np.zeros(k, dtype=np.int64), np.zeros(k, dtype=np.int64)
    for index in indices:
        path = spec.pairs[index][1]
        before = read_label(path, np.asarray(spec.lut(index)), k)
        after = read_label(path, np.asarray(relabelled.lut(index)), relabelled.num_classes)
        known = before != IGNORE_INDEX
        labelled += np.bincount(before[known].ravel(), minlength=k)[:k]
        lost += np.bincount(before[known & (after == IGNORE_INDEX)].ravel(), minlength=k)[:k]
    total = int(labelled.sum())
    return {
        "labelled": total, "lost": int(lost.sum()), "fraction": float(lost.sum() / total) if total else 0.0,
        "images": len(indices), "by_class": {spec.classes[c]: int(lost[c]) for c in np.flatnonzero(lost)},
    }


def converted_predictions(pred: torch.Tensor, table: np.ndarray) -> torch.Tensor:
    """Universal-id predictions mapped through ``table`` (from :func:`universal_to_dataset`)."""
    lookup = torch.as_tensor(table, dtype=torch.long, device=pred.device)
    pred = pred.long()
    if pred.numel() and (bool((pred < 0).any()) or bool((pred >= lookup.numel()).any())):
        raise ValueError(f"predictions outside the universal ids 0..{lookup.numel() - 1}")
    return lookup[pred]
