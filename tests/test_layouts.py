"""Layout adapters of the real datasets, on tiny trees written in each dataset's own formats."""

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from conftest import CAMVID_ROOT as CAMVID
from PIL import Image

from genseg.data.base import IGNORE_INDEX, DataError, SegmentationDataset
from genseg.data.layouts import LAYOUTS, load_split

H, W = 6, 8


def voc_colormap() -> list[int]:
    """The PASCAL VOC palette (bit-interleaved colour map), flattened for ``putpalette``."""
    palette = []
    for index in range(256):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette += [r, g, b]
    return palette


def write_image(path: Path, index: int) -> None:
    """A solid colour (red = 40 * index) as JPEG or PNG, after the file's extension."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((H, W, 3), (40 * index, 90, 160), np.uint8)).save(path, quality=95)


def label_array(values, index: int = 0) -> np.ndarray:
    return np.resize(np.roll(np.array(values, np.uint8), index), H * W).reshape(H, W)


def write_label(path: Path, values, index: int = 0, palette: bool = False) -> None:
    """An 8-bit label: L mode, or P mode with the VOC colour map (indices are the values)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = label_array(values, index)
    if palette:
        image = Image.frombytes("P", (W, H), array.tobytes())
        image.putpalette(voc_colormap())
    else:
        image = Image.fromarray(array, "L")
    image.save(path)


@dataclass(frozen=True)
class Fmt:
    """How one dataset lays out pair ``i`` of a split (paths relative to the root given)."""

    name: str
    image: Callable[[str, int], str]
    label: Callable[[str, int], str]
    label_dir: str  # the train split's label folder
    num_classes: int
    raw: tuple[int, ...]
    mapped: tuple[int, ...]
    undefined: int
    palette: bool = False
    list_file: Callable[[str], str] | None = None
    list_line: Callable[[str, int], str] | None = None
    decoys: Callable[[str, int], tuple[str, ...]] = lambda split, i: ()  # other files the adapter must skip

    def __str__(self):
        return self.name


ADE_SPLIT = {"train": "training", "val": "validation"}
CITY = ["aachen", "aachen", "bochum", "frankfurt"]


def _ade(kind, ext):
    def path(split, i):
        folder = ADE_SPLIT[split]
        return f"ADEChallengeData2016/{kind}/{folder}/ADE_{split}_{i:08d}.{ext}"

    return path


def _city(kind, suffix, ext):
    return lambda split, i: f"{kind}/{split}/{CITY[i]}/{CITY[i]}_{i:06d}_000019_{suffix}.{ext}"


FORMATS = [
    Fmt(
        "ade20k",
        image=_ade("images", "jpg"),
        label=_ade("annotations", "png"),
        label_dir="ADEChallengeData2016/annotations/training",
        num_classes=150,
        raw=(0, 1, 150, 75),
        mapped=(IGNORE_INDEX, 0, 149, 74),
        undefined=151,
    ),
    Fmt(
        "cocostuff",
        image=lambda split, i: f"images/{split}2017/{i:012d}.jpg",
        label=lambda split, i: f"annotations/{split}2017/{i:012d}_labelTrainIds.png",
        label_dir="annotations/train2017",
        num_classes=171,
        raw=(0, 170, 255, 42),
        mapped=(0, 170, IGNORE_INDEX, 42),
        undefined=171,
        decoys=lambda split, i: (f"annotations/{split}2017/{i:012d}.png",),  # the raw COCO ids
    ),
    Fmt(
        "cityscapes",
        image=_city("leftImg8bit", "leftImg8bit", "png"),
        label=_city("gtFine", "gtFine_labelTrainIds", "png"),
        label_dir="gtFine/train",
        num_classes=19,
        raw=(0, 18, 255, 7),
        mapped=(0, 18, IGNORE_INDEX, 7),
        undefined=19,
        decoys=lambda split, i: tuple(
            _city("gtFine", suffix, ext)(split, i)
            for suffix, ext in [("gtFine_color", "png"), ("gtFine_labelIds", "png"), ("gtFine_instanceIds", "png"), ("gtFine_polygons", "json")]
        ),
    ),
    Fmt(
        "camvid",
        image=lambda split, i: f"{split}/0001TP_{i:06d}.jpg",
        label=lambda split, i: f"{split}annot/0001TP_{i:06d}.png",
        label_dir="trainannot",
        num_classes=11,
        raw=(0, 10, 11, 5),
        mapped=(0, 10, IGNORE_INDEX, 5),
        undefined=12,
        list_file=lambda split: f"{split}.txt",
        list_line=lambda split, i: f"{split}/0001TP_{i:06d}.jpg {split}annot/0001TP_{i:06d}.png",
    ),
    Fmt(
        "idd_lite",
        image=lambda split, i: f"idd20k_lite/leftImg8bit/{split}/{i % 2}/{i:06d}_image.jpg",
        label=lambda split, i: f"idd20k_lite/gtFine/{split}/{i % 2}/{i:06d}_label.png",
        label_dir="idd20k_lite/gtFine/train",
        num_classes=7,
        raw=(0, 6, 255, 3),
        mapped=(0, 6, IGNORE_INDEX, 3),
        undefined=7,
        decoys=lambda split, i: (f"idd20k_lite/gtFine/{split}/{i % 2}/{i:06d}_inst_label.png",),
    ),
    Fmt(
        "voc",
        image=lambda split, i: f"VOCdevkit/VOC2012/JPEGImages/2007_{i:06d}.jpg",
        label=lambda split, i: f"VOCdevkit/VOC2012/SegmentationClass/2007_{i:06d}.png",
        label_dir="VOCdevkit/VOC2012/SegmentationClass",
        num_classes=21,
        raw=(0, 15, 255, 20),
        mapped=(0, 15, IGNORE_INDEX, 20),
        undefined=21,
        palette=True,
        list_file=lambda split: f"VOCdevkit/VOC2012/ImageSets/Segmentation/{split}.txt",
        list_line=lambda split, i: f"2007_{i:06d}",
    ),
    Fmt(
        "mapillary",
        image=lambda split, i: f"{ADE_SPLIT[split]}/images/{i:03d}MapillaryKey.jpg",
        label=lambda split, i: f"{ADE_SPLIT[split]}/labels/{i:03d}MapillaryKey.png",
        label_dir="training/labels",
        num_classes=65,
        raw=(0, 64, 65, 30),
        mapped=(0, 64, IGNORE_INDEX, 30),
        undefined=66,
        palette=True,
        decoys=lambda split, i: (f"{ADE_SPLIT[split]}/instances/{i:03d}MapillaryKey.png",),
    ),
    Fmt(
        "bdd",
        image=lambda split, i: f"bdd100k/seg/images/{split}/{i:04d}abc-12345678.jpg",
        label=lambda split, i: f"bdd100k/seg/labels/{split}/{i:04d}abc-12345678_train_id.png",
        label_dir="bdd100k/seg/labels/train",
        num_classes=19,
        raw=(0, 18, 255, 7),
        mapped=(0, 18, IGNORE_INDEX, 7),
        undefined=19,
        decoys=lambda split, i: (f"bdd100k/seg/color_labels/{split}/{i:04d}abc-12345678_train_color.png",),
    ),
    Fmt(
        "coco_panoptic",
        image=lambda split, i: f"{split}2017/{i:012d}.jpg",
        label=lambda split, i: f"panoptic_semseg_{split}2017/{i:012d}.png",
        label_dir="panoptic_semseg_train2017",
        num_classes=133,
        raw=(0, 132, 255, 80),
        mapped=(0, 132, IGNORE_INDEX, 80),
        undefined=133,
        decoys=lambda split, i: (f"panoptic_{split}2017/{i:012d}.png",),  # the RGB panoptic ids, not read
    ),
    Fmt(
        "pascal_context",
        image=lambda split, i: f"VOCdevkit/VOC2010/JPEGImages/2008_{i:06d}.jpg",
        label=lambda split, i: f"VOCdevkit/VOC2010/SegmentationClassContext/2008_{i:06d}.png",
        label_dir="VOCdevkit/VOC2010/SegmentationClassContext",
        num_classes=60,
        raw=(0, 59, 255, 20),
        mapped=(0, 59, IGNORE_INDEX, 20),
        undefined=60,
        list_file=lambda split: f"VOCdevkit/VOC2010/ImageSets/SegmentationContext/{split}.txt",
        list_line=lambda split, i: f"2008_{i:06d}",
        decoys=lambda split, i: (f"VOCdevkit/VOC2010/SegmentationClass/2008_{i:06d}.png",),  # VOC's own 21 classes
    ),
    Fmt(
        "idd",
        image=lambda split, i: f"IDD_Segmentation/leftImg8bit/{split}/{i % 2}/{i:06d}_leftImg8bit.png",
        label=lambda split, i: f"IDD_Segmentation/gtFine/{split}/{i % 2}/{i:06d}_gtFine_labelids.png",
        label_dir="IDD_Segmentation/gtFine/train",
        num_classes=39,
        raw=(0, 34, 35, 39, 36),  # 35 unlabeled; 36..39 shift down past it
        mapped=(0, 34, IGNORE_INDEX, 38, 35),
        undefined=40,
        decoys=lambda split, i: (f"IDD_Segmentation/gtFine/{split}/{i % 2}/{i:06d}_gtFine_labellevel3Ids.png",),
    ),
    Fmt(
        "scannet",
        image=lambda split, i: f"scannet_frames_25k/scene{i:04d}_00/color/000100.jpg",
        label=lambda split, i: f"scannet_frames_25k/scene{i:04d}_00/label/000100.png",
        label_dir="scannet_frames_25k/scene0000_00/label",
        num_classes=20,
        raw=(0, 1, 39, 13, 24),  # NYU40 ids: 0 unannotated, 13 (pillow) not a benchmark class
        mapped=(IGNORE_INDEX, 0, 19, IGNORE_INDEX, 14),
        undefined=41,
        list_file=lambda split: f"scannetv2_{split}.txt",
        list_line=lambda split, i: f"scene{i:04d}_00",
    ),
]
SPLITS = {"train": [0, 1, 2], "val": [3]}


def order(fmt: Fmt, split: str) -> list[int]:
    """The pair indices of a split in the order the adapter lists them (list file, else path)."""
    if fmt.list_file:
        return SPLITS[split]
    return sorted(SPLITS[split], key=lambda i: fmt.image(split, i))


def build(fmt: Fmt, root: Path) -> Path:
    for split, indices in SPLITS.items():
        for i in indices:
            write_image(root / fmt.image(split, i), i)
            write_label(root / fmt.label(split, i), fmt.raw, i, fmt.palette)
            for decoy in fmt.decoys(split, i):
                path = root / decoy
                if path.suffix == ".json":
                    path.write_text(json.dumps({"objects": []}))
                else:
                    write_label(path, [200, 33])  # values no train-id table defines
        if fmt.list_file:
            (root / fmt.list_file(split)).parent.mkdir(parents=True, exist_ok=True)
            (root / fmt.list_file(split)).write_text("".join(fmt.list_line(split, i) + "\n" for i in indices))
    return root


@pytest.fixture(params=FORMATS, ids=str)
def dataset(request, tmp_path):
    fmt = request.param
    return fmt, build(fmt, tmp_path / fmt.name)


def test_adapter_pairs_and_relabels(dataset):
    fmt, root = dataset
    for split, indices in SPLITS.items():
        spec = load_split(fmt.name, str(root), split)
        assert spec.num_classes == fmt.num_classes and len(spec.pairs) == len(indices)
        expected = [(fmt.image(split, i), fmt.label(split, i)) for i in order(fmt, split)]
        assert [(p.relative_to(root).as_posix(), q.relative_to(root).as_posix()) for p, q in spec.pairs] == expected
        data = SegmentationDataset(spec)
        for position, i in enumerate(order(fmt, split)):
            item = data[position]
            assert item["image"].shape == (3, H, W)
            assert abs(item["image"][0].mean().item() * 255 - 40 * i) < 4  # the image paired with label i
            lut = dict(zip(fmt.raw, fmt.mapped))
            assert item["label"].numpy().tolist() == np.vectorize(lut.get)(label_array(fmt.raw, i)).tolist()


def test_voc_palette_png_gives_indices(tmp_path):
    path = tmp_path / "a.png"
    write_label(path, [0, 15, 255, 20], palette=True)
    with Image.open(path) as image:
        assert image.mode == "P" and image.getpalette()[15 * 3 : 16 * 3] == [192, 128, 128]  # person
        assert set(np.unique(np.asarray(image)).tolist()) == {0, 15, 20, 255}


def test_missing_root_names_path_and_layout(dataset, tmp_path):
    fmt, _ = dataset
    with pytest.raises(DataError, match="does not exist; expected layout") as err:
        load_split(fmt.name, str(tmp_path / "nowhere"), "train")
    assert str(tmp_path / "nowhere") in str(err.value) and LAYOUTS[fmt.name][1] in str(err.value)


def test_missing_label_folder_names_path_and_layout(dataset):
    fmt, root = dataset
    shutil.rmtree(root / fmt.label_dir)
    with pytest.raises(DataError, match="missing folder") as err:
        load_split(fmt.name, str(root), "train")
    assert str(root / fmt.label_dir) in str(err.value) and LAYOUTS[fmt.name][1] in str(err.value)


def test_image_without_label_is_named(dataset):
    fmt, root = dataset
    first = order(fmt, "train")[0]
    (root / fmt.label("train", first)).unlink()
    with pytest.raises(DataError) as err:
        load_split(fmt.name, str(root), "train")
    assert str(root / fmt.image("train", first)) in str(err.value)
    assert str(root / fmt.label("train", first)) in str(err.value)  # the label it expected


def test_label_without_image_is_named(dataset):
    fmt, root = dataset
    first = order(fmt, "train")[0]
    image = root / fmt.image("train", first)
    image.unlink()
    with pytest.raises(DataError) as err:
        load_split(fmt.name, str(root), "train")
    assert str(root / fmt.label("train", first)) in str(err.value)
    assert str(image.with_suffix("")) in str(err.value)  # the image it expected


def test_undefined_label_value_names_file_and_values(dataset):
    fmt, root = dataset
    first = order(fmt, "train")[0]
    write_label(root / fmt.label("train", first), (*fmt.raw, fmt.undefined), palette=fmt.palette)
    spec = load_split(fmt.name, str(root), "train")
    with pytest.raises(DataError, match=rf"label .*{Path(fmt.label('train', first)).name} has values \[{fmt.undefined}\]"):
        SegmentationDataset(spec)[0]


def test_corrupt_image_is_named(dataset):
    fmt, root = dataset
    first = order(fmt, "train")[0]
    (root / fmt.image("train", first)).write_bytes(b"\xff\xd8 garbage, not an image")
    spec = load_split(fmt.name, str(root), "train")
    with pytest.raises(DataError, match="cannot read image") as err:
        SegmentationDataset(spec)[0]
    assert str(root / fmt.image("train", first)) in str(err.value)


def test_unknown_split_and_domains_are_refused(dataset):
    fmt, root = dataset
    with pytest.raises(DataError, match=rf"{fmt.name}: unknown split 'bogus'; known splits: train, val"):
        load_split(fmt.name, str(root), "bogus")
    with pytest.raises(DataError, match=rf"{fmt.name} has no domains"):
        load_split(fmt.name, str(root), "train", ["clean"])


@pytest.mark.parametrize(
    "name, nest, aliases",
    [
        ("ade20k", "ADEChallengeData2016", {"training": 3, "validation": 1}),
        ("cocostuff", "", {"train2017": 3, "val2017": 1}),
        ("idd_lite", "idd20k_lite", {}),
        ("voc", "VOCdevkit/VOC2012", {"trainval": 2}),
        ("mapillary", "", {"training": 3, "validation": 1}),
        ("bdd", "bdd100k/seg", {}),
        ("coco_panoptic", "", {"train2017": 3, "val2017": 1}),
        ("pascal_context", "VOCdevkit/VOC2010", {}),
        ("idd", "IDD_Segmentation", {}),
    ],
)
def test_dataset_folder_itself_and_split_aliases(tmp_path, name, nest, aliases):
    fmt = next(f for f in FORMATS if f.name == name)
    root = build(fmt, tmp_path / name)
    if name == "voc":  # trainval is a list of its own
        (root / fmt.list_file("trainval")).write_text("2007_000000\n2007_000003\n")
    assert len(load_split(name, str(root / nest), "val").pairs) == 1
    for split, count in aliases.items():
        assert len(load_split(name, str(root), split).pairs) == count


def test_voc_under_a_voc2012_folder(tmp_path):
    fmt = next(f for f in FORMATS if f.name == "voc")
    root = build(fmt, tmp_path / "voc")
    (root / "VOCdevkit" / "VOC2012").rename(root / "VOC2012")
    assert len(load_split("voc", str(root), "train").pairs) == 3


def test_camvid_list_names_png_images_that_are_jpeg(tmp_path):
    """SegNet's lists name .png images (its absolute /SegNet/CamVid/ paths too); a JPEG copy still pairs."""
    fmt = next(f for f in FORMATS if f.name == "camvid")
    root = build(fmt, tmp_path / "camvid")
    (root / "train.txt").write_text(
        "train/0001TP_000000.png trainannot/0001TP_000000.png\n"
        "/SegNet/CamVid/train/0001TP_000002.png /SegNet/CamVid/trainannot/0001TP_000002.png\n"
    )
    spec = load_split("camvid", str(root), "train")
    assert [(p.name, q.name) for p, q in spec.pairs] == [
        ("0001TP_000000.jpg", "0001TP_000000.png"),
        ("0001TP_000002.jpg", "0001TP_000002.png"),
    ]


def test_camvid_without_list_pairs_the_folders_by_stem(tmp_path):
    fmt = next(f for f in FORMATS if f.name == "camvid")
    root = build(fmt, tmp_path / "camvid")
    (root / "train.txt").unlink()
    spec = load_split("camvid", str(root), "train")
    assert [(p.name, q.name) for p, q in spec.pairs] == [(f"0001TP_{i:06d}.jpg", f"0001TP_{i:06d}.png") for i in range(3)]
    (root / "trainannot" / "0001TP_000001.png").unlink()
    with pytest.raises(DataError, match=r"image .*0001TP_000001\.jpg has no label"):
        load_split("camvid", str(root), "train")


@pytest.mark.camvid
def test_real_camvid():
    if not (CAMVID / "train.txt").is_file():
        pytest.skip(f"the real CamVid copy is not at {CAMVID}")
    for split, count in {"train": 367, "val": 101, "test": 233}.items():
        spec = load_split("camvid", str(CAMVID), split)
        assert len(spec.pairs) == count and spec.num_classes == 11
    item = SegmentationDataset(spec)[0]
    assert item["image"].shape == (3, 360, 480)
    assert set(item["label"].unique().tolist()) <= set(range(11)) | {IGNORE_INDEX}
