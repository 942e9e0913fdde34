"""Universal taxonomy: shipped CSVs, relabelling for training, conversion for evaluation."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from genseg.data.base import (
    IGNORE_INDEX,
    DataError,
    SegmentationDataset,
    SplitSpec,
    identity_lut,
)
from genseg.data.taxonomy import (
    TAXONOMY_ROOT,
    converted_predictions,
    load_taxonomy,
    ignored_fraction,
    to_universal,
    training_table,
    union,
    universal_to_dataset,
)
from genseg.metrics import ConfusionMatrix

CAMVID = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist")
IDD_LITE = ("drivable", "non-drivable", "living things", "vehicles", "roadside objects", "far objects", "sky")
CITYSCAPES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)  # fmt: skip


@pytest.fixture(scope="module")
def road():
    return load_taxonomy("road")


def uid(taxonomy, name: str) -> int:
    return taxonomy.classes.index(name)


def write_pair(folder, stem: str, label: np.ndarray):
    folder.mkdir(parents=True, exist_ok=True)
    image, label_path = folder / f"{stem}.png", folder / f"{stem}_L.png"
    Image.fromarray(np.zeros((*label.shape, 3), np.uint8)).save(image)
    Image.fromarray(label.astype(np.uint8)).save(label_path)
    return image, label_path


def test_shipped_road_taxonomy(road):
    assert road.name == "road"
    assert set(road.datasets) == {"camvid", "idd_lite", "cityscapes"}
    assert road.mapping("camvid").classes == CAMVID
    assert road.mapping("idd_lite").classes == IDD_LITE
    assert road.mapping("cityscapes").classes == CITYSCAPES
    assert len(set(road.classes)) == road.num_classes == len(road.descriptions) == len(road.parts)
    # the 19 Cityscapes classes, then 9 merged classes (one per coarse CamVid / IDD-Lite class)
    assert road.classes[:19] == CITYSCAPES and [i for i, p in enumerate(road.parts) if p] == list(range(19, 28))
    assert universal_to_dataset(road, "cityscapes")[:19].tolist() == list(range(19))
    # IDD level 1 is coarse but complete: every universal class falls in one of its classes.
    assert (universal_to_dataset(road, "idd_lite") < len(IDD_LITE)).all()
    # every universal class is trainable: some dataset class trains as it (alone or merged)
    trained = {int(v) for d in road.datasets for v in training_table(road, d)}
    assert trained == set(range(road.num_classes))
    # nothing is dropped: every class of every dataset trains as some universal class
    assert all((training_table(road, d) != IGNORE_INDEX).all() for d in road.datasets)
    # a folder path loads too
    assert load_taxonomy(TAXONOMY_ROOT / "road").classes == road.classes


def test_universal_to_dataset_camvid(road):
    table = universal_to_dataset(road, "camvid")
    assert table.dtype == np.int64 and table.shape == (road.num_classes,)
    camvid = {name: i for i, name in enumerate(CAMVID)}
    assert table[uid(road, "rider")] == table[uid(road, "bicycle")] == camvid["Bicyclist"]
    assert table[uid(road, "motorcycle")] == camvid["Bicyclist"]
    assert table[uid(road, "traffic light")] == table[uid(road, "traffic sign")] == camvid["SignSymbol"]
    assert table[uid(road, "truck")] == table[uid(road, "bus")] == camvid["Car"]
    assert table[uid(road, "wall")] == camvid["Building"]
    assert table[uid(road, "sidewalk")] == camvid["Pavement"]
    assert table[uid(road, "vegetation")] == camvid["Tree"]
    assert table[uid(road, "terrain")] == 11  # CamVid has no terrain: unmapped
    assert (table == 11).sum() == 1


def test_to_universal_and_union(tmp_path, road):
    # CamVid (SegNet layout): raw 0..10 classes, 11 void
    camvid_label = np.array([[10, 3, 11, 0], [8, 6, 4, 5]])
    camvid = SplitSpec(
        name="camvid/train",
        classes=CAMVID,
        pairs=(write_pair(tmp_path / "camvid", "a", camvid_label),),
        label_lut=identity_lut(11, (11,)),
    )
    relabelled = to_universal(camvid, road, "camvid")
    assert relabelled.name == "camvid/train@road" and relabelled.classes == road.classes
    label = SegmentationDataset(relabelled)[0]["label"]
    expected = [  # coarse classes train as the merged class of their parts; void stays ignore
        [uid(road, "rider+two-wheeler"), uid(road, "road"), IGNORE_INDEX, uid(road, "sky")],
        [uid(road, "car+truck+bus+train"), uid(road, "traffic sign+light"), uid(road, "sidewalk"), uid(road, "vegetation")],
    ]
    assert label.tolist() == expected

    # IDD-lite: raw 0..6, 255 ignore; raw 3 and 6 mean different things than in CamVid
    idd_label = np.array([[3, 6, 0, 255]])
    idd = SplitSpec(
        name="idd_lite/train",
        classes=IDD_LITE,
        pairs=(write_pair(tmp_path / "idd", "b", idd_label),),
        label_lut=identity_lut(7),
    )
    both = union([relabelled, to_universal(idd, road, "idd_lite")])
    assert both.label_lut.shape == (2, 256) and both.lut_of_pair == (0, 1)
    assert both.name == "camvid/train@road+idd_lite/train@road"
    data = SegmentationDataset(both)
    assert data[0]["label"].tolist() == expected
    assert data[1]["label"].tolist() == [[uid(road, "vehicle"), uid(road, "sky"), uid(road, "road"), IGNORE_INDEX]]

    with pytest.raises(DataError, match="classes differ"):
        union([relabelled, idd])


def test_to_universal_checks_classes(road):
    spec = SplitSpec("camvid/x", CAMVID[::-1], (), identity_lut(11))
    with pytest.raises(DataError, match="camvid.csv"):
        to_universal(spec, road, "camvid")
    with pytest.raises(DataError, match="no kitti.csv"):
        to_universal(spec, road, "kitti")


def test_end_to_end_iou(road):
    c = {name: i for i, name in enumerate(CAMVID)}
    u = {name: i for i, name in enumerate(road.classes)}
    label = torch.tensor([[c["Car"]] * 4 + [c["Road"]] * 3 + [c["Bicyclist"]] * 2 + [IGNORE_INDEX]])
    pred = torch.tensor(
        [[u["car"], u["truck"], u["terrain"], u["road"], u["road"], u["road"], u["sidewalk"], u["rider"], u["bicycle"], u["sky"]]]
    )
    converted = converted_predictions(pred, universal_to_dataset(road, "camvid"))
    assert converted.tolist() == [[8, 8, 11, 3, 3, 3, 4, 10, 10, 0]]
    cm = ConfusionMatrix(11)
    cm.update(converted, label)
    iou = cm.compute()["iou"]
    # Car: I=2 (car, truck), label 4, pred 2 -> U=4; the unmapped terrain pixel counts against Car
    assert iou[c["Car"]] == pytest.approx(2 / 4)
    assert iou[c["Road"]] == pytest.approx(2 / 4)  # I=2, label 3, pred 3 (one from a Car pixel)
    assert iou[c["Bicyclist"]] == pytest.approx(1.0)  # rider and bicycle both count as Bicyclist
    assert iou[c["Pavement"]] == 0.0
    assert np.isnan(iou[c["Sky"]])  # only predicted on an ignored pixel
    assert cm.compute()["miou"] == pytest.approx((0.5 + 0.5 + 1.0 + 0.0) / 4)
    with pytest.raises(ValueError, match="outside"):
        converted_predictions(torch.tensor([road.num_classes]), universal_to_dataset(road, "camvid"))


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        ("camvid.csv", "10,Bicyclist,rider;bicycle;motorcycle", "10,Bicyclist,rider;cyclist", "row 12: unknown universal class 'cyclist'"),
        ("camvid.csv", "10,Bicyclist", "9,Bicyclist", "row 12: duplicate dataset_id 9"),
        ("camvid.csv", "10,Bicyclist", "ten,Bicyclist", "row 12: dataset_id 'ten' is not an integer"),
        ("camvid.csv", "dataset_id,dataset_class,universal,note", "dataset_id,dataset_class,note", "missing column(s) universal"),
        ("camvid.csv", "7,Fence,fence", "7,Fence,fence;fence", "row 9: universal class 'fence' listed twice"),
        ("universal.csv", "id,name,description", "id,label,description", "missing column(s) name"),
    ],
)
def test_csv_validation(tmp_path, file, old, new, message):
    folder = tmp_path / "broken"
    shutil.copytree(TAXONOMY_ROOT / "road", folder)
    path = folder / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(DataError) as err:
        load_taxonomy(folder)
    assert str(path) in str(err.value) and message in str(err.value)


def test_unknown_taxonomy():
    with pytest.raises(DataError, match="shipped taxonomies: .*road"):
        load_taxonomy("no-such-taxonomy")


def test_training_on_a_union_and_evaluating_in_the_test_sets_taxonomy(tmp_path, tiny_config):
    """data.dataset = a taxonomy: train on Cityscapes + IDD-Lite relabelled into it, test on
    CamVid (unseen) in CamVid's own 11 classes; all in the real on-disk layouts."""
    from test_layouts import FORMATS, build

    from genseg.config import ConfigError
    from genseg.engine.evaluate import evaluate_run
    from genseg.engine.train import train

    for fmt in FORMATS:
        if fmt.name in ("cityscapes", "idd_lite", "camvid"):
            build(fmt, tmp_path / "road" / fmt.name)
    cfg = tiny_config(
        tmp_path / "road", data__dataset="road", data__train_domains=["cityscapes", "idd_lite"], data__crop_size=32,
        optim__iterations=2, train__val_every=0, train__checkpoint_every=0,
    )
    record = train(cfg, tmp_path / "run")
    assert record["iterations"] == 2
    out = evaluate_run(tmp_path / "run", "val", ["camvid"], tmp_path / "eval.json", progress=False)
    assert out["classes"][0] == "Sky" and len(out["scores"]["iou"]) == 11 and out["num_images"] == 1
    with pytest.raises(DataError, match="has no dataset 'kitti'"):
        evaluate_run(tmp_path / "run", "val", ["kitti"], tmp_path / "eval2.json", progress=False)
    with pytest.raises(ConfigError, match="data.dataset 'raod'.*road"):
        tiny_config(tmp_path, data__dataset="raod")


def test_merged_classes_at_evaluation(road):
    """A merged prediction counts as the test class holding all its parts, else the one holding its first part."""
    camvid, idd, city = (universal_to_dataset(road, d) for d in ("camvid", "idd_lite", "cityscapes"))
    assert camvid[uid(road, "building+wall")] == CAMVID.index("Building")
    assert camvid[uid(road, "vehicle")] == CAMVID.index("Car")  # parts in Car and Bicyclist: car first
    assert camvid[uid(road, "roadside object")] == CAMVID.index("Fence")
    assert camvid[uid(road, "sidewalk+terrain")] == CAMVID.index("Pavement")  # terrain has no CamVid class
    assert idd[uid(road, "building+wall")] == IDD_LITE.index("far objects")
    assert idd[uid(road, "rider+two-wheeler")] == IDD_LITE.index("living things")
    assert city[uid(road, "car+truck+bus+train")] == CITYSCAPES.index("car")


def road_without_merged(tmp_path, name: str):
    folder = tmp_path / "road"
    shutil.copytree(TAXONOMY_ROOT / "road", folder)
    path = folder / "universal.csv"
    with path.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["name"] != name]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**row, "id": i} for i, row in enumerate(rows))  # ids stay 0, 1, 2, ...
    return load_taxonomy(folder)


def test_a_coarse_class_without_merged_class_is_never_dropped_silently(tmp_path):
    """Rule 1: the class must get a merged class, or the config must list it in data.ignore_classes."""
    taxonomy = road_without_merged(tmp_path, "building+wall")
    with pytest.raises(DataError, match=r"camvid class\(es\) 'Building' \(covers building, wall\).*data.ignore_classes"):
        training_table(taxonomy, "camvid")
    table = training_table(taxonomy, "camvid", ignore=["Building"])
    assert table[CAMVID.index("Building")] == IGNORE_INDEX and table[CAMVID.index("Sky")] == taxonomy.classes.index("sky")
    with pytest.raises(DataError, match="'Buildings'.*not classes of camvid"):
        training_table(taxonomy, "camvid", ignore=["Buildings"])


@pytest.mark.parametrize(("old", "new", "message"), [
    (",building;wall\n", ",building;walls\n", "part 'walls' of merged class 'building+wall' is not another universal class"),
    (",building;wall\n", ",building\n", "merged class 'building+wall' has one part 'building'"),
    (",building;vegetation\n", ",building;building+wall\n", "part 'building+wall' of merged class 'building+vegetation' is itself merged"),
])
def test_merged_class_validation(tmp_path, old, new, message):
    folder = tmp_path / "road"
    shutil.copytree(TAXONOMY_ROOT / "road", folder)
    path = folder / "universal.csv"
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new, 1))
    with pytest.raises(DataError) as err:
        load_taxonomy(folder)
    assert str(path) in str(err.value) and message in str(err.value)
    csv_path = TAXONOMY_ROOT / "road" / "camvid.csv"
    broken = tmp_path / "road2"
    shutil.copytree(TAXONOMY_ROOT / "road", broken)
    (broken / "camvid.csv").write_text(csv_path.read_text().replace(",building;wall,", ",building+wall,"))
    with pytest.raises(DataError, match="'building\\+wall' is a merged universal class; list its parts"):
        load_taxonomy(broken)


def test_ignored_pixel_share_is_counted_from_the_labels(tmp_path):
    taxonomy = road_without_merged(tmp_path, "building+wall")
    c = {name: i for i, name in enumerate(CAMVID)}
    labels = [np.array([[c["Building"]] * 3 + [c["Sky"]] * 5 + [11] * 2]), np.array([[c["Road"]] * 9 + [c["Building"]]])]
    pairs = tuple(write_pair(tmp_path / "camvid", f"p{i}", label) for i, label in enumerate(labels))
    spec = SplitSpec("camvid/train", CAMVID, pairs, identity_lut(11, (11,)))
    loss = ignored_fraction(spec, to_universal(spec, taxonomy, "camvid", ignore=["Building"]))
    # 18 labelled pixels (void is not labelled), 4 of them Building
    assert loss == {"labelled": 18, "lost": 4, "fraction": pytest.approx(4 / 18), "images": 2, "by_class": {"Building": 4}}
    assert ignored_fraction(spec, to_universal(spec, taxonomy, "camvid", ignore=["Building"]), max_images=1)["images"] == 1
    assert ignored_fraction(spec, to_universal(spec, load_taxonomy("road"), "camvid"))["lost"] == 0


def test_run_stops_before_training_above_the_ignored_threshold(tmp_path, tiny_config):
    """data.max_ignored_fraction: the report is computed from the data at run start; above it, no training."""
    from genseg.data.fixtures import write_fixture
    from genseg.data.sources import check_ignored
    from genseg.engine.train import train

    write_fixture("camvid", tmp_path / "data" / "camvid", num_train=3, num_val=1, size=(24, 32))
    cfg = tiny_config(tmp_path / "data", data__dataset="road", data__train_domains=["camvid"], data__crop_size=16,
                      data__ignore_classes={"camvid": ["Sky", "Building", "Road", "Car", "Tree"]},
                      optim__iterations=1, train__val_every=0, train__checkpoint_every=0)
    rows, _ = check_ignored(dataclasses.replace(cfg.data, max_ignored_fraction=1.0))
    share = rows[0]["fraction"]
    assert 0.05 < share < 1 and rows[0]["images"] == 3 and set(rows[0]["by_class"]) <= {"Sky", "Building", "Road", "Car", "Tree"}
    with pytest.raises(DataError, match=rf"camvid {100 * share:.1f}% above data.max_ignored_fraction = 0.05"):
        train(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "model.safetensors").exists()
    accepted = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, max_ignored_fraction=1.0))
    record = train(accepted, tmp_path / "run")
    report = json.loads((tmp_path / "run" / "ignored_pixels.json").read_text())
    assert report["datasets"][0]["fraction"] == pytest.approx(share) and report["max_ignored_fraction"] == 1.0
    # validation is scored as the evaluation scores: CamVid val in CamVid's 11 classes, not universal ones
    from genseg.engine.evaluate import evaluate_run

    evaluated = evaluate_run(tmp_path / "run", "val", ["camvid"], tmp_path / "eval.json", progress=False)
    assert len(evaluated["scores"]["iou"]) == 11
    assert record["final_val_miou"] == pytest.approx(evaluated["scores"]["miou"])


def test_many_to_one_trains_but_is_not_evaluated_in_its_own_classes(tmp_path):
    """Two dataset classes covering one universal class (MSeg's merges): training relabels both into
    it; mapping predictions back into the dataset's classes is refused, naming the class."""
    folder = tmp_path / "merged"
    shutil.copytree(TAXONOMY_ROOT / "road", folder)
    path = folder / "camvid.csv"
    text = path.read_text()
    path.write_text(text.replace("7,Fence,fence", "7,Fence,pole", 1))
    taxonomy = load_taxonomy(folder)
    table = training_table(taxonomy, "camvid")
    pole = taxonomy.classes.index("pole")
    assert table[7] == pole and table[taxonomy.mapping("camvid").classes.index("Pole")] == pole
    with pytest.raises(DataError, match=r"camvid cannot be evaluated through taxonomy 'merged': universal class 'pole' covers several camvid classes \(Pole, Fence\)"):
        universal_to_dataset(taxonomy, "camvid")
