"""What a run reads: its config's ``data`` section -> split specs, in the model's taxonomy.

``data.dataset`` names either one dataset layout (``synthetic``, ``camvid``, ...; its
``domains`` are the layout's own, e.g. the synthetic domains) or a universal taxonomy
(``road``, see :mod:`genseg.data.taxonomy`) whose member datasets are then the domains:
training reads the union of the train domains, each relabelled into the universal classes;
evaluation reads one test dataset in its own classes and converts the model's universal
predictions into them (``class_map``). A member's root is ``data.roots[<member>]``, else
``<data.root>/<member>``, else ``$GENSEG_DATA/<member>``. A single real dataset's name is also its one domain
(``train_domains: [camvid]``, evaluated on ``camvid``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .base import DataError, SplitSpec
from .layouts import LAYOUTS, load_split, resolve_root
from .taxonomy import (
    TAXONOMY_ROOT,
    load_taxonomy,
    to_universal,
    union,
    universal_to_dataset,
)


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
        return str(Path(data.root).expanduser() / member)
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
    specs = [to_universal(load_split(m, member_root(data, m), split), taxonomy, m) for m in _members(data, domains)]
    return union(specs)


def eval_spec(data, split: str, domain: str) -> tuple[SplitSpec, np.ndarray | None]:
    """One test domain in its own classes, and the model-class -> test-class map (None: same)."""
    if not is_taxonomy(data.dataset):
        return load_split(data.dataset, data.root, split, _own_domains(data, [domain])), None
    (member,) = _members(data, [domain])
    taxonomy = load_taxonomy(data.dataset)
    return load_split(member, member_root(data, member), split), universal_to_dataset(taxonomy, member)


def model_num_classes(data, split: str = "train") -> int:
    """Number of classes the model predicts: the universal taxonomy's, or the dataset's."""
    if is_taxonomy(data.dataset):
        return len(load_taxonomy(data.dataset).classes)
    return load_split(data.dataset, data.root, split, _own_domains(data, data.train_domains)).num_classes
