"""Tiny datasets in the real layouts (ADE20K, COCO-Stuff-164k, Cityscapes, CamVid, IDD-Lite, and the
MSeg datasets of :data:`MSEG_FIXTURE_DATASETS`) for smoke runs and tests.

Each image is a few coloured rectangles over a background; its label gives each rectangle a
class in the dataset's raw encoding (ADE20K 1..150 with 0 "other"; CamVid 0..10 with 11 void;
Cityscapes label ids for KITTI and WildDash; NYU40 ids for ScanNet; Mapillary 0..64 with 65
Unlabeled; SUN RGB-D 1..37 with 0 unlabeled, in its archive's ``label38/``; the others train ids
with 255 ignore), with a few unlabelled pixels. Split lists (PASCAL Context, ScanNet) are written
too. CamVid also gets a test split (SegNet's layout has one); IDD-Lite is written inside
``idd20k_lite/``, the folder its official archive unpacks to.
``write_smoke_dvae`` writes a random tiny DALL-E dVAE file for smoke runs of GSS.
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
    if dataset == "mapillary":
        folder = {"train": "training", "val": "validation"}[split]
        return f"{folder}/images/{split}{i:05d}.jpg", f"{folder}/labels/{split}{i:05d}.png"
    if dataset == "bdd":
        stem = f"{split[0]}{i:07d}-0000000{i}"
        return f"bdd100k/seg/images/{split}/{stem}.jpg", f"bdd100k/seg/labels/{split}/{stem}_train_id.png"
    if dataset == "coco_panoptic":
        return f"{split}2017/{i:012d}.jpg", f"panoptic_semseg_{split}2017/{i:012d}.png"
    if dataset == "pascal_context":
        stem = f"2008_{i:06d}" if split == "train" else f"2010_{i:06d}"
        return f"VOCdevkit/VOC2010/JPEGImages/{stem}.jpg", f"VOCdevkit/VOC2010/SegmentationClassContext/{stem}.png"
    if dataset == "kitti":
        return f"training/image_2/{i:06d}_10.png", f"training/semantic/{i:06d}_10.png"
    if dataset == "wilddash":
        stem = f"{['at', 'cn', 'us'][i % 3]}{i:04d}_100000"
        return f"wd_val_01/{stem}.png", f"wd_val_01/{stem}_labelIds.png"
    if dataset == "idd":
        stem = f"{i % 2}/{i:06d}"
        return f"IDD_Segmentation/leftImg8bit/{split}/{stem}_leftImg8bit.png", f"IDD_Segmentation/gtFine/{split}/{stem}_gtFine_labelids.png"
    if dataset == "scannet":
        scene = f"scene{700 * (split == 'val') + i // 2:04d}_00"
        return f"scannet_frames_25k/{scene}/color/{100 * (i % 2):06d}.jpg", f"scannet_frames_25k/{scene}/label/{100 * (i % 2):06d}.png"
    if dataset == "sunrgbd":
        folder = {"train": "train", "val": "test"}[split]
        return f"image/{folder}/img-{i + 1:06d}.jpg", f"label38/{folder}/{i + 1:08d}.png"
    raise ValueError(f"no fixture layout for dataset {dataset!r}; expected one of {', '.join(FIXTURE_DATASETS + MSEG_FIXTURE_DATASETS)}")


FIXTURE_DATASETS = ("ade20k", "cocostuff", "cityscapes", "camvid", "idd_lite")
# what `genseg write-fixture` writes for paper-gss-mseg.yaml's smoke overlay (also linked as <root>/mseg/<member>)
MSEG_SMOKE_MEMBERS = ("cityscapes", "bdd", "sunrgbd", "pascal_context", "wilddash")
MSEG_FIXTURE_DATASETS = ("mapillary", "bdd", "coco_panoptic", "idd", "pascal_context", "kitti", "wilddash", "scannet", "sunrgbd")

# raw label values drawn for rectangles, and the unlabelled value, per dataset
_CITYSCAPES_IDS = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33, 1, 4)  # 1, 4: ignored ids
_RAW = {
    "ade20k": (range(1, 151), 0),
    "cocostuff": (range(0, 171), 255),
    "cityscapes": (range(0, 19), 255),
    "camvid": (range(0, 11), 11),
    "idd_lite": (range(0, 7), 255),
    "mapillary": (range(0, 65), 65),
    "bdd": (range(0, 19), 255),
    "coco_panoptic": (range(0, 133), 255),
    "pascal_context": (range(1, 60), 0),  # 0 is the background class
    "kitti": (_CITYSCAPES_IDS, 0),
    "wilddash": (_CITYSCAPES_IDS, 0),
    "scannet": (range(1, 41), 0),
    "idd": (range(0, 40), 35),
    "sunrgbd": (range(1, 38), 0),
}


def _indices(dataset: str, split: str, count: int) -> list[int]:
    """Which pairs a split holds: KITTI's val is MSeg's 50-image list, its train other images; SUN RGB-D's val
    MSeg's 475-image list; WildDash has val only."""
    if dataset == "sunrgbd" and split == "val":
        from .class_lists import SUNRGBD_MSEG_VAL

        return [n - 1 for n in SUNRGBD_MSEG_VAL]  # image number n = i + 1
    if dataset == "kitti":
        from .class_lists import KITTI_MSEG_VAL

        return list(KITTI_MSEG_VAL) if split == "val" else [i for i in range(200) if i not in KITTI_MSEG_VAL][:count]
    if dataset == "wilddash" and split == "train":
        return []
    return list(range(count))


def _write_lists(dataset: str, root: Path, split: str, indices: list[int]) -> None:
    if dataset == "pascal_context":
        path = root / "VOCdevkit/VOC2010/ImageSets/SegmentationContext" / f"{split}.txt"
        lines = [Path(_paths(dataset, split, i)[0]).stem for i in indices]
    elif dataset == "scannet":
        path = root / f"scannetv2_{split}.txt"
        lines = sorted({Path(_paths(dataset, split, i)[0]).parts[1] for i in indices})
    else:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))


def write_fixture(dataset: str, root: str | Path, num_train: int = 2, num_val: int = 2, size: tuple[int, int] = (48, 64),
                  seed: int = 0, num_test: int = 0) -> Path:
    """``num_train`` / ``num_val`` (/ ``num_test``, CamVid and Cityscapes) image-label pairs of
    ``size`` (h, w) under ``root`` in ``dataset``'s layout."""
    root, rng = Path(root), np.random.default_rng(seed)
    if dataset not in _RAW:
        _paths(dataset, "train", 0)  # raises naming the known datasets
    classes, unlabelled = np.array(list(_RAW[dataset][0])), _RAW[dataset][1]
    h, w = size
    if num_test and dataset not in ("camvid", "cityscapes"):
        raise ValueError(f"{dataset} has no labelled test split in its published layout; num_test must be 0")
    for split, count in (("train", num_train), ("val", num_val), ("test", num_test)):
        indices = _indices(dataset, split, count)
        _write_lists(dataset, root, split, indices)
        for i in indices:
            ids = rng.choice(classes, size=4, replace=False)
            label = np.full((h, w), ids[0], np.uint8)
            for cls in ids[1:]:
                y, x = rng.integers(0, h // 2), rng.integers(0, w // 2)
                label[y : y + h // 2, x : x + w // 2] = cls
            label[:2, :2] = unlabelled  # a few unlabelled pixels
            colours = rng.integers(0, 256, size=(256, 3), dtype=np.uint8)
            image = colours[label] // 2 + rng.integers(0, 128, size=(h, w, 3), dtype=np.uint8)
            image_rel, label_rel = _paths(dataset, split, i)
            label_image = Image.fromarray(label)
            if dataset == "mapillary":  # Vistas labels are palette PNGs whose indices are the class ids
                label_image = label_image.convert("P")
                label_image.putpalette(colours.reshape(-1).tolist())
            for rel, picture in ((image_rel, Image.fromarray(image)), (label_rel, label_image)):
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                picture.save(root / rel, quality=95)
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
