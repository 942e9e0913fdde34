"""Dataset layouts: each adapter turns a root folder into a :class:`SplitSpec`.

Roots come from the config (``data.root``) or, when that is empty, from
``$GENSEG_DATA/<dataset>``; never from the working directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Sequence

from .base import DataError, SplitSpec, identity_lut, pair_by_stem

DATA_ENV = "GENSEG_DATA"

SYNTHETIC_LAYOUT = """\
<root>/meta.json                                   classes, domains, splits, image size, seed
<root>/<domain>/<split>/images/<id>.png            RGB
<root>/<domain>/<split>/labels/<id>.png            single channel, 0..K-1, 255 ignore"""


def resolve_root(dataset: str, root: str) -> Path:
    """The dataset root: ``root`` if given, else ``$GENSEG_DATA/<dataset>``."""
    if root:
        return Path(root).expanduser()
    base = os.environ.get(DATA_ENV)
    if not base:
        raise DataError(f"data.root is empty for dataset {dataset!r} and ${DATA_ENV} is not set")
    return Path(base).expanduser() / dataset


def synthetic(root: Path, split: str, domains: Sequence[str]) -> SplitSpec:
    """The embedded synthetic dataset written by :func:`genseg.data.synthetic.generate`."""
    meta_path = root / "meta.json"
    if not meta_path.is_file():
        raise DataError(
            f"synthetic dataset root {root} has no meta.json; expected layout:\n{SYNTHETIC_LAYOUT}\n"
            f"(write it with `genseg generate-synthetic {root}`)"
        )
    meta = json.loads(meta_path.read_text())
    known = meta["domains"]
    domains = list(domains) or list(known)
    for domain in domains:
        if domain not in known:
            raise DataError(f"{meta_path}: unknown domain {domain!r}; this dataset has {known}")
    if split not in meta["splits"]:
        raise DataError(f"{meta_path}: unknown split {split!r}; this dataset has {list(meta['splits'])}")
    pairs = []
    for domain in domains:
        folder = root / domain / split
        pairs += pair_by_stem(folder / "images", folder / "labels")
    classes = tuple(meta["classes"])
    return SplitSpec(
        name=f"synthetic/{split}/{'+'.join(domains)}",
        classes=classes,
        pairs=tuple(pairs),
        label_lut=identity_lut(len(classes), (meta.get("ignore_index", 255),)),
    )


# name -> (adapter, the on-disk layout it expects, shown in errors)
LAYOUTS: dict[str, tuple[Callable[[Path, str, Sequence[str]], SplitSpec], str]] = {
    "synthetic": (synthetic, SYNTHETIC_LAYOUT),
}


def load_split(dataset: str, root: str, split: str, domains: Sequence[str] = ()) -> SplitSpec:
    """Look up the layout adapter for ``dataset`` and read one split."""
    if dataset not in LAYOUTS:
        raise DataError(f"unknown dataset {dataset!r}; known layouts: {', '.join(LAYOUTS)}")
    adapter, layout = LAYOUTS[dataset]
    path = resolve_root(dataset, root)
    if not path.is_dir():
        raise DataError(f"dataset root {path} for {dataset!r} does not exist; expected layout:\n{layout}")
    return adapter(path, split, domains)
