"""Tiny datasets in the real layouts (ADE20K, COCO-Stuff-164k, Cityscapes, CamVid, IDD-Lite) for smoke runs and tests.

Each image is a few coloured rectangles over a background; its label gives each rectangle a
class (in the dataset's raw encoding: ADE20K 1..150 with 0 "other", CamVid 0..10 with 11 void,
the others train ids with 255 ignore). CamVid also gets a test split (SegNet's layout has one);
IDD-Lite is written inside ``idd20k_lite/``, the folder its official archive unpacks to. ``write_smoke_dvae`` writes a random tiny DALL-E dVAE file for smoke runs of GSS.
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
    if dataset == "camvid":
        stem = f"0001TP_{i:06d}"
        return f"{split}/{stem}.png", f"{split}annot/{stem}.png"
    if dataset == "idd_lite":
        stem = f"{i:03d}/{i:06d}"
        return f"idd20k_lite/leftImg8bit/{split}/{stem}_image.jpg", f"idd20k_lite/gtFine/{split}/{stem}_label.png"
    raise ValueError(f"no fixture layout for dataset {dataset!r}; expected one of {', '.join(FIXTURE_DATASETS)}")


FIXTURE_DATASETS = ("ade20k", "cocostuff", "cityscapes", "camvid", "idd_lite")
VOID = {"ade20k": 0, "camvid": 11}  # the unlabelled value of each layout (else 255)


def write_fixture(dataset: str, root: str | Path, num_train: int = 2, num_val: int = 2, size: tuple[int, int] = (48, 64),
                  seed: int = 0, num_test: int = 0) -> Path:
    """``num_train`` / ``num_val`` (/ ``num_test``, CamVid and Cityscapes) image-label pairs of
    ``size`` (h, w) under ``root`` in ``dataset``'s layout."""
    root, rng = Path(root), np.random.default_rng(seed)
    classes = {"ade20k": range(1, 151), "cocostuff": range(0, 171), "cityscapes": range(0, 19), "camvid": range(0, 11),
               "idd_lite": range(0, 7)}[dataset]
    classes = np.array(list(classes))
    h, w = size
    if num_test and dataset not in ("camvid", "cityscapes"):
        raise ValueError(f"{dataset} has no labelled test split in its published layout; num_test must be 0")
    for split, count in (("train", num_train), ("val", num_val), ("test", num_test)):
        for i in range(count):
            ids = rng.choice(classes, size=4, replace=False)
            label = np.full((h, w), ids[0], np.uint8)
            for cls in ids[1:]:
                y, x = rng.integers(0, h // 2), rng.integers(0, w // 2)
                label[y : y + h // 2, x : x + w // 2] = cls
            label[:2, :2] = VOID.get(dataset, 255)  # a few unlabelled pixels
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
