"""What a run reads: its config's ``data`` section -> split specs, in the model's taxonomy.

``data.dataset`` names either one dataset layout (``synthetic``, ``camvid``, ...; its
``domains`` are the layout's own, e.g. the synthetic domains) or a universal taxonomy
(``road``, see :mod:`genseg.data.taxonomy`) whose member datasets are then the domains:
training reads the union of the train domains, each relabelled into the universal classes;
evaluation reads one test dataset in its own classes and converts the model's universal
predictions into them (``class_map``). A member's root is ``data.roots[<member>]``, else
``<data.root>/<member>``, else ``$GENSEG_DATA/<member>`` (or the member's archive folder name,
:data:`~genseg.data.layouts.ARCHIVE_NAMES`). A single real dataset's name is also its one domain
(``train_domains: [camvid]``, evaluated on ``camvid``).

Two cross-dataset protocols:

(a) universal training (``data.dataset`` a taxonomy): each member's labels relabelled into the
    universal classes (merged classes for coarse ones; what is dropped must be listed in
    ``data.ignore_classes``), the loss measured before training (:func:`check_ignored`);
(b) single-source transfer (``data.dataset`` one real layout, a test domain another layout):
    the model keeps the source's own classes and is scored through the mapping table
    ``genseg/data/mappings/<source>-to-<target>.csv`` (:mod:`genseg.data.transfer`); the target's
    root is ``data.roots[<target>]``, else ``$GENSEG_DATA/<target>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .base import DataError, SplitSpec
from .layouts import LAYOUTS, find_under, load_split, resolve_root
from .taxonomy import (
    TAXONOMY_ROOT,
    ignored_fraction,
    load_taxonomy,
    to_universal,
    union,
    universal_to_dataset,
)
from .transfer import load_mapping, transfer_table


def is_taxonomy(dataset: str) -> bool:
    """Whether ``dataset`` names a shipped universal taxonomy rather than one layout."""
    return dataset not in LAYOUTS and (TAXONOMY_ROOT / dataset / "universal.csv").is_file()


def known_datasets() -> list[str]:
    """Every name ``data.dataset`` accepts: the layouts, then the shipped taxonomies."""
    return list(LAYOUTS) + sorted(p.parent.name for p in TAXONOMY_ROOT.glob("*/universal.csv"))


def member_root(data, member: str) -> str:
    """Root of one member dataset of a taxonomy collection."""
    if member in data.roots:
        return data.roots[member]
    if data.root:
        return str(find_under(member, data.root, "data.root"))
    return str(resolve_root(member, ""))


def _members(data, domains: Sequence[str]) -> list[str]:
    taxonomy = load_taxonomy(data.dataset)
    members = list(domains) or list(taxonomy.datasets)
    for member in members:
        if member not in taxonomy.datasets:
            raise DataError(f"taxonomy {data.dataset!r} has no dataset {member!r}; it maps {', '.join(taxonomy.datasets)}")
    return members


def _own_domains(data, domains: Sequence[str]) -> list[str]:
    """A single dataset's domains; its own name stands for all of it (``train_domains: [camvid]``)."""
    return [d for d in domains if d and d != data.dataset]


def train_spec(data, split: str, domains: Sequence[str]) -> SplitSpec:
    """The split a model trains (or validates) on, in the model's classes."""
    if not is_taxonomy(data.dataset):
        return load_split(data.dataset, data.root, split, _own_domains(data, domains))
    taxonomy = load_taxonomy(data.dataset)
    specs = [to_universal(load_split(m, member_root(data, m), split), taxonomy, m, _ignored(data, m))
             for m in _members(data, domains)]
    return union(specs)


def _ignored(data, member: str) -> tuple[str, ...]:
    return tuple(data.ignore_classes.get(member, ()))


def ignored_report(data, split: str = "train") -> list[dict]:
    """Protocol (a): per training dataset, the share of its labelled pixels the taxonomy turns
    into ignore (:func:`~genseg.data.taxonomy.ignored_fraction`); [] for a single dataset."""
    if not is_taxonomy(data.dataset):
        return []
    taxonomy = load_taxonomy(data.dataset)
    rows = []
    for member in _members(data, data.train_domains):
        spec = load_split(member, member_root(data, member), split)
        loss = ignored_fraction(spec, to_universal(spec, taxonomy, member, _ignored(data, member)), data.ignored_check_images)
        rows.append({"dataset": member, "split": split, **loss})
    return rows


def check_ignored(data) -> tuple[list[dict], str]:
    """:func:`ignored_report` and its text; DataError (before any training) when a dataset loses
    more than ``data.max_ignored_fraction`` of its labelled pixels."""
    rows = ignored_report(data)
    lines = []
    for r in rows:
        classes = ", ".join(f"{c} {n}" for c, n in r["by_class"].items()) or "none"
        lines.append(f"  {r['dataset']} ({r['split']}, {r['images']} images): {100 * r['fraction']:.1f}% of "
                     f"{r['labelled']} labelled pixels ignored through taxonomy {data.dataset!r} (pixels by class: {classes})")
    text = "labelled pixels lost to the taxonomy:\n" + "\n".join(lines) if rows else ""
    over = [r for r in rows if r["fraction"] > data.max_ignored_fraction]
    if over:
        names = ", ".join(f"{r['dataset']} {100 * r['fraction']:.1f}%" for r in over)
        raise DataError(
            f"{text}\n{names} above data.max_ignored_fraction = {data.max_ignored_fraction:g}: give those classes a merged "
            f"class in the taxonomy, or accept the loss by raising data.max_ignored_fraction (e.g. to 1)"
        )
    return rows, text


def transfer_targets(data, domains: Sequence[str]) -> list[str]:
    """Protocol (b): the test domains that are other real datasets than the one trained on."""
    if is_taxonomy(data.dataset) or data.dataset == "synthetic":
        return []
    return [d for d in domains if d != data.dataset and d in LAYOUTS and d != "synthetic"]


def _transfer_spec(data, split: str, target: str) -> tuple[SplitSpec, np.ndarray]:
    spec = load_split(target, data.roots.get(target, ""), split)
    source = load_split(data.dataset, data.root, "train").classes
    return spec, transfer_table(load_mapping(data.dataset, target), source, spec.classes)


def eval_spec(data, split: str, domain: str) -> tuple[SplitSpec, np.ndarray | None]:
    """One test domain in its own classes, and the model-class -> test-class map (None: same)."""
    if transfer_targets(data, [domain]):
        return _transfer_spec(data, split, domain)
    if not is_taxonomy(data.dataset):
        return load_split(data.dataset, data.root, split, _own_domains(data, [domain])), None
    (member,) = _members(data, [domain])
    taxonomy = load_taxonomy(data.dataset)
    return load_split(member, member_root(data, member), split), universal_to_dataset(taxonomy, member)


def validation_specs(data, domains: Sequence[str]) -> list[tuple[SplitSpec, np.ndarray | None]]:
    """What validation during training scores: the val split of each domain in the classes the
    evaluation will use (a taxonomy run: each member in its own classes, through the class map)."""
    if not is_taxonomy(data.dataset):
        return [(train_spec(data, "val", domains), None)]
    return [eval_spec(data, "val", member) for member in _members(data, domains)]


def model_num_classes(data, split: str = "train") -> int:
    """Number of classes the model predicts: the universal taxonomy's, or the dataset's."""
    if is_taxonomy(data.dataset):
        count, where = len(load_taxonomy(data.dataset).classes), f"taxonomy {data.dataset!r}"
    else:
        count, where = load_split(data.dataset, data.root, split, _own_domains(data, data.train_domains)).num_classes, f"{data.root}"
    if data.num_classes and count != data.num_classes:
        raise DataError(f"data.num_classes is {data.num_classes} but {where} has {count} classes")
    return count
