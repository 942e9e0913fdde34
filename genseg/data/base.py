"""Loader machinery shared by every dataset layout.

A layout adapter (see :mod:`genseg.data.layouts`) turns a root folder into a
:class:`SplitSpec`: the (image, label) file pairs, the class names, and a lookup table
from the raw label values on disk to train ids (0..K-1, or the ignore index). Everything
after that -- reading, checking label values, augmenting -- is this one code path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image

IGNORE_INDEX = 255


class DataError(ValueError):
    """Bad input data; the message names the file or folder and what was expected."""


@dataclass(frozen=True)
class SplitSpec:
    """One split of one dataset (or a union of several), ready to load.

    ``label_lut`` is int16[256] (raw value -> train id, 255 ignore, -1 undefined), or
    int16[P, 256] with ``lut_of_pair[i]`` naming the row for pair ``i`` (a union of
    datasets, each relabelled through its own table). ``parts``: a union's dataset sizes,
    in pair order (what ``data.balance: equal`` balances; empty for one dataset).
    """

    name: str
    classes: tuple[str, ...]
    pairs: tuple[tuple[Path, Path], ...]
    label_lut: np.ndarray
    lut_of_pair: tuple[int, ...] = ()
    parts: tuple[int, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def lut(self, index: int) -> np.ndarray:
        """The raw-value -> train-id table for pair ``index``."""
        return self.label_lut[self.lut_of_pair[index]] if self.label_lut.ndim == 2 else self.label_lut


def identity_lut(num_classes: int, ignore_values: Sequence[int] = (IGNORE_INDEX,)) -> np.ndarray:
    """Raw values 0..K-1 are train ids; ``ignore_values`` map to the ignore index."""
    lut = np.full(256, -1, dtype=np.int16)
    lut[:num_classes] = np.arange(num_classes)
    for value in ignore_values:
        lut[value] = IGNORE_INDEX
    return lut


def pair_by_stem(
    image_dir: Path,
    label_dir: Path,
    *,
    image_suffix: str = "",
    label_suffix: str = "",
    skip_label_suffixes: Sequence[str] = (),
) -> list[tuple[Path, Path]]:
    """Pair images and labels found (recursively) under the two folders whose relative path
    (folder + stem after removing the suffixes) agrees: ``<stem>``, or ``<city>/<stem>``.
    Image extensions are free (``.png``, ``.jpg`` ...).

    Labels are the ``.png`` files whose stem ends with ``label_suffix`` (the other files of a
    label folder, such as Cityscapes' ``_color.png``, are skipped), minus those ending with
    one of ``skip_label_suffixes``. An image without a label, or a label without an image,
    raises :class:`DataError` naming the first unmatched file and the expected path.
    """
    for folder in (image_dir, label_dir):
        if not folder.is_dir():
            raise DataError(f"missing folder {folder}")

    def key(path: Path, folder: Path, suffix: str) -> str:
        rel = path.relative_to(folder).with_suffix("")
        stem = rel.name[: -len(suffix)] if suffix and rel.name.endswith(suffix) else rel.name
        return (rel.parent / stem).as_posix()

    def is_label(path: Path) -> bool:
        stem = path.stem
        return (
            path.suffix.lower() == ".png"
            and stem.endswith(label_suffix)
            and not any(stem.endswith(skip) for skip in skip_label_suffixes)
        )

    images = {key(p, image_dir, image_suffix): p for p in sorted(image_dir.rglob("*")) if p.suffix.lower() in _IMAGE_EXTS}
    labels = {key(p, label_dir, label_suffix): p for p in sorted(label_dir.rglob("*")) if is_label(p)}
    for name, path in sorted(images.items()):
        if name not in labels:
            raise DataError(f"image {path} has no label: expected {label_dir / (name + label_suffix + '.png')}")
    for name, path in sorted(labels.items()):
        if name not in images:
            raise DataError(f"label {path} has no image in {image_dir}: expected {image_dir / (name + image_suffix)}.<ext>")
    if not images:
        raise DataError(f"no images in {image_dir} (expected {', '.join(sorted(_IMAGE_EXTS))} files)")
    return [(images[name], labels[name]) for name in sorted(images)]


_IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}


def read_image(path: Path) -> np.ndarray:
    """RGB uint8 array (H, W, 3); a file that cannot be decoded raises naming it."""
    try:
        with Image.open(path) as img:
            return np.array(img.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as err:
        raise DataError(f"cannot read image {path}: {err}") from None


def read_label(path: Path, lut: np.ndarray, num_classes: int) -> np.ndarray:
    """Train-id label (H, W) uint8 through ``lut``; undefined raw values raise naming file and values."""
    try:
        with Image.open(path) as img:
            if img.mode not in ("L", "P"):
                raise DataError(f"label {path} has mode {img.mode}; expected a single-channel PNG (L or P)")
            raw = np.asarray(img)
    except (OSError, SyntaxError, ValueError) as err:
        raise DataError(f"cannot read label {path}: {err}") from None
    mapped = lut[raw]
    if (mapped < 0).any():
        values = np.unique(raw[mapped < 0]).tolist()
        raise DataError(
            f"label {path} has values {values} that the dataset does not define "
            f"(classes 0..{num_classes - 1}, ignore {IGNORE_INDEX})"
        )
    return mapped.astype(np.uint8)


Transform = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


class SegmentationDataset(torch.utils.data.Dataset):
    """Reads a :class:`SplitSpec`; items are dicts with ``image`` (3, H, W) float in [0, 1],
    ``label`` (H, W) int64 and ``index``.

    Keys are either an index or ``(index, position)``: the position in the sample stream
    seeds the augmentation, so augmentation is deterministic and resumable whatever the
    number of workers.
    """

    def __init__(self, spec: SplitSpec, transform: Transform | None = None, seed: int = 0):
        self.spec = spec
        self.transform = transform
        self.seed = seed

    def __len__(self) -> int:
        return len(self.spec.pairs)

    def __getitem__(self, key):
        index, position = key if isinstance(key, tuple) else (key, key)
        image_path, label_path = self.spec.pairs[index]
        image = read_image(image_path)
        label = read_label(label_path, self.spec.lut(index), self.spec.num_classes)
        if image.shape[:2] != label.shape:
            raise DataError(f"image {image_path} is {image.shape[:2]} but label {label_path} is {label.shape}")
        if self.transform is not None:
            rng = np.random.default_rng([self.seed, position])
            image, label = self.transform(image, label, rng)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255),
            "label": torch.from_numpy(np.ascontiguousarray(label)).long(),
            "index": index,
        }


BALANCES = ("none", "equal")  # data.balance


class StreamSampler(torch.utils.data.Sampler):
    """Endless stream of ``(index, position)``: epoch ``e`` is a permutation seeded by (seed, e).

    Starting at ``start`` reproduces the stream a run would have seen, so a resumed run
    continues with the same batches. With ``world`` > 1 processes, rank ``rank`` takes its
    contiguous ``batch / world`` slice of every global batch of ``batch`` positions (``start``
    is a global position at a batch boundary), so the ranks together read the one-process stream.

    ``parts`` (the sizes of D >= 2 datasets concatenated in index order) balances them, as GSS's
    MSeg config does with RepeatDataset (each dataset repeated to about the largest one's size,
    fudan-zvg/GSS configs/_base_/datasets/mseg_for_vqseg.py): an epoch is ``L = max(parts)``
    draws of every dataset, shuffled together by (seed, e), so each gives 1/D of the stream.
    Dataset d's draws continue its own stream of permutations, the k-th seeded by (seed, d, k, 1):
    each of its images is drawn L/n_d times per epoch, give or take one.
    """

    def __init__(self, size: int, seed: int, start: int = 0, rank: int = 0, world: int = 1, batch: int = 1,
                 parts: Sequence[int] = ()):
        if world > 1 and (batch % world or start % batch):
            raise ValueError(f"StreamSampler: batch {batch} must split over {world} ranks and start {start} be a batch boundary")
        if parts and (sum(parts) != size or min(parts) < 1):
            raise ValueError(f"StreamSampler: parts {list(parts)} must be sizes >= 1 adding up to {size}")
        self.size = size
        self.seed = seed
        self.start = start
        self.rank, self.world, self.batch = rank, world, batch
        self.parts = tuple(parts) if len(parts) > 1 else ()
        self.epoch_size = len(self.parts) * max(self.parts) if self.parts else size

    def epoch(self, epoch: int) -> np.ndarray:
        """The indices of epoch ``epoch``, in stream order."""
        order = np.random.default_rng([self.seed, epoch]).permutation(self.epoch_size)
        if not self.parts:
            return order
        draws, offset = [], 0
        for part, n in enumerate(self.parts):
            draws.append(offset + _draws(self.seed, part, n, epoch * max(self.parts), max(self.parts)))
            offset += n
        return np.concatenate(draws)[order]

    def __iter__(self):
        position = self.start
        share = self.batch // self.world
        while True:
            epoch, offset = divmod(position, self.epoch_size)
            for index in self.epoch(epoch)[offset:]:
                if self.world == 1 or (position % self.batch) // share == self.rank:
                    yield int(index), position
                position += 1


def _draws(seed: int, part: int, n: int, first: int, count: int) -> np.ndarray:
    """Positions ``first .. first + count - 1`` of dataset ``part``'s stream (its n images, permutation after permutation)."""
    k0, k1 = first // n, (first + count - 1) // n
    stream = np.concatenate([np.random.default_rng([seed, part, k, 1]).permutation(n) for k in range(k0, k1 + 1)])
    return stream[first - k0 * n:][:count]
