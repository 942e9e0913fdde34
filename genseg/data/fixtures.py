"""Tiny datasets in the real layouts (ADE20K, COCO-Stuff-164k, Cityscapes) for smoke runs and tests.

Each image is a few coloured rectangles over a background; its label gives each rectangle a
class (in the dataset's raw encoding: ADE20K 1..150 with 0 "other", the others train ids with
255 ignore). ``write_smoke_dvae`` writes a random tiny DALL-E dVAE file for smoke runs of GSS.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SMOKE_DVAE = "dall-e-dvae-random-smoke.safetensors"  # the smoke overlays' posterior_file, under {weights}


def _paths(dataset: str, split: str, i: int) -> tuple[str, str]:
    if dataset == "ade20k":
        folder = {"train": "training", "val": "validation"}[split]
        stem = f"ADE_{folder[:5]}_{i:08d}"
        return f"ADEChallengeData2016/images/{folder}/{stem}.jpg", f"ADEChallengeData2016/annotations/{folder}/{stem}.png"
    if dataset == "cocostuff":
        return f"images/{split}2017/{i:012d}.jpg", f"annotations/{split}2017/{i:012d}_labelTrainIds.png"
    if dataset == "cityscapes":
        stem = f"aachen/aachen_{i:06d}_000019"
        return f"leftImg8bit/{split}/{stem}_leftImg8bit.png", f"gtFine/{split}/{stem}_gtFine_labelTrainIds.png"
    raise ValueError(f"no fixture layout for dataset {dataset!r}; expected ade20k, cocostuff or cityscapes")


FIXTURE_DATASETS = ("ade20k", "cocostuff", "cityscapes")


def write_fixture(dataset: str, root: str | Path, num_train: int = 2, num_val: int = 2, size: tuple[int, int] = (48, 64),
                  seed: int = 0) -> Path:
    """``num_train`` / ``num_val`` image-label pairs of ``size`` (h, w) under ``root`` in ``dataset``'s layout."""
    root, rng = Path(root), np.random.default_rng(seed)
    classes = {"ade20k": range(1, 151), "cocostuff": range(0, 171), "cityscapes": range(0, 19)}[dataset]
    classes = np.array(list(classes))
    h, w = size
    for split, count in (("train", num_train), ("val", num_val)):
        for i in range(count):
            ids = rng.choice(classes, size=4, replace=False)
            label = np.full((h, w), ids[0], np.uint8)
            for cls in ids[1:]:
                y, x = rng.integers(0, h // 2), rng.integers(0, w // 2)
                label[y : y + h // 2, x : x + w // 2] = cls
            label[:2, :2] = 0 if dataset == "ade20k" else 255  # a few unlabelled pixels
            colours = rng.integers(0, 256, size=(256, 3), dtype=np.uint8)
            image = colours[label] // 2 + rng.integers(0, 128, size=(h, w, 3), dtype=np.uint8)
            image_rel, label_rel = _paths(dataset, split, i)
            for rel, array in ((image_rel, image), (label_rel, label)):
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(array).save(root / rel, quality=95)
    return root


def write_smoke_dvae(path: str | Path, seed: int = 0) -> Path:
    """A random dVAE (8 wide, 64 codes) in ``genseg convert-dvae``'s format: for smoke runs only."""
    import torch
    from safetensors.torch import save_file

    from ..methods.gss.dvae import FORMAT, DalleDecoder, DalleDVAE, DalleEncoder

    torch.manual_seed(seed)
    model = DalleDVAE(DalleEncoder(n_hid=8, n_blk_per_group=1, vocab_size=64), DalleDecoder(n_init=8, n_hid=8, n_blk_per_group=1, vocab_size=64))
    metadata = {"format": FORMAT, **{k: str(v) for k, v in model.config().items()}, "source": "random (smoke)"}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path), metadata=metadata)
    return Path(path)
