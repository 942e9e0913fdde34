"""MSeg (GSS Table 6): the transcribed 194-class taxonomy and the datasets' published layouts."""

import csv
import shutil

import numpy as np
import pytest
from PIL import Image

from genseg.data import class_lists
from genseg.data.base import IGNORE_INDEX, DataError, SegmentationDataset
from genseg.data.fixtures import MSEG_FIXTURE_DATASETS, write_fixture
from genseg.data.layouts import LAYOUTS, load_split
from genseg.data.taxonomy import TAXONOMY_ROOT, load_taxonomy, to_universal, universal_to_dataset

MSEG = TAXONOMY_ROOT / "mseg"


def test_universal_taxonomy_has_msegs_194_classes():
    taxonomy = load_taxonomy("mseg")
    assert taxonomy.num_classes == 194 and len(set(taxonomy.classes)) == 194
    assert taxonomy.classes[:3] == ("backpack", "umbrella", "bag") and taxonomy.classes[-1] == "window_blind"
    assert taxonomy.datasets == ("ade20k", "bdd", "camvid", "cityscapes", "coco_panoptic", "idd", "kitti", "mapillary", "pascal_context",
                                 "scannet", "sunrgbd", "voc", "wilddash")
    assert all(taxonomy.descriptions[taxonomy.classes.index(name)] for name in ("building", "road", "person"))


@pytest.mark.parametrize(
    "dataset, universal, expected",
    [
        ("voc", "bicyclist", "person"),  # MSeg_master.tsv, column voc2012
        ("voc", "building", "background"),
        ("camvid", "bicycle", "Bicyclist"),
        ("camvid", "sidewalk_pavement", "Pavement"),  # MSeg's "Sidewalk"
        ("kitti", "motorcyclist", "rider"),
        ("wilddash", "autorickshaw", "motorcycle"),
        ("scannet", "armchair", "chair"),
        ("scannet", "trash_can", "otherfurniture"),
        ("pascal_context", "streetlight", "light"),
        ("cityscapes", "bicyclist", "rider"),
    ],
)
def test_test_set_tables_follow_the_master(dataset, universal, expected):
    taxonomy = load_taxonomy("mseg")
    table = universal_to_dataset(taxonomy, dataset)
    assert taxonomy.mapping(dataset).classes[table[taxonomy.classes.index(universal)]] == expected


def test_unmapped_universal_classes_count_wrong_on_camvid():
    taxonomy = load_taxonomy("mseg")
    table = universal_to_dataset(taxonomy, "camvid")
    assert (table < 11).sum() == 12 and table[taxonomy.classes.index("cat")] == 11


@pytest.mark.parametrize(
    "name, classes",
    [
        ("ade20k", "ADE20K_CLASSES"),
        ("coco_panoptic", "COCO_PANOPTIC_CLASSES"),
        ("mapillary", "MAPILLARY_CLASSES"),
        ("idd", "IDD_CLASSES"),
    ],
)
def test_many_to_one_tables_name_the_adapters_classes_and_universal_classes(name, classes):
    from genseg.data import layouts

    expected = getattr(class_lists, classes, None) or getattr(layouts, classes)
    universal = set(load_taxonomy("mseg").classes)
    with (MSEG / f"{name}.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["dataset_id"]) for r in rows] == list(range(len(expected)))
    assert tuple(r["dataset_class"] for r in rows) == expected
    targets = [r["universal"] for r in rows if r["universal"]]
    assert all(";" not in t and t in universal for t in targets)  # one universal class per dataset class
    assert len(set(targets)) < len(targets)  # several classes merged into one: why the loader does not read it


def test_ade20k_merges_follow_the_master():
    with (MSEG / "ade20k.csv").open(newline="") as handle:
        rows = {r["dataset_class"]: r["universal"] for r in csv.DictReader(handle)}
    assert sorted(c for c, u in rows.items() if u == "building") == sorted(["building", "house", "skyscraper", "booth", "hovel", "tower", "grandstand"])
    assert rows["animal"] == "animal_other" and rows["computer"] == ""  # the master's unlabeled row


@pytest.mark.parametrize("dataset", MSEG_FIXTURE_DATASETS)
def test_fixture_writer_writes_the_layout_the_adapter_reads(dataset, tmp_path):
    root = write_fixture(dataset, tmp_path / dataset, num_train=3, num_val=2, size=(12, 16))
    splits = {"train": 3, "val": 2}
    if dataset == "kitti":
        splits["val"] = 50  # MSeg's list
    if dataset == "sunrgbd":
        splits["val"] = 475  # MSeg's list
    if dataset == "wilddash":
        splits = {"val": 2}
    for split, count in splits.items():
        spec = load_split(dataset, str(root), split)
        assert len(spec.pairs) == count
        item = SegmentationDataset(spec)[0]
        assert item["image"].shape == (3, 12, 16) and item["label"].shape == (12, 16)
        values = set(item["label"].unique().tolist())
        assert values <= set(range(spec.num_classes)) | {IGNORE_INDEX} and values - {IGNORE_INDEX}


@pytest.mark.parametrize("dataset", ["bdd", "cityscapes", "sunrgbd"])
def test_fixture_training_members_relabel_into_the_universal_taxonomy(dataset, tmp_path):
    root = write_fixture(dataset, tmp_path / dataset, size=(12, 16))
    spec = to_universal(load_split(dataset, str(root), "val"), load_taxonomy("mseg"), dataset)
    label = SegmentationDataset(spec)[0]["label"]
    assert spec.num_classes == 194 and set(label.unique().tolist()) <= set(range(194)) | {IGNORE_INDEX}


@pytest.mark.parametrize("dataset", ["kitti", "wilddash", "pascal_context", "scannet", "camvid", "voc"])
def test_test_members_take_universal_predictions(dataset):
    """MSeg's test sets are evaluated in their own classes: every universal class maps to one of
    their classes or to K (counted wrong); their one-to-many classes (KITTI's pole = pole +
    streetlight) gather every part's predictions."""
    taxonomy = load_taxonomy("mseg")
    table = universal_to_dataset(taxonomy, dataset)
    k = taxonomy.mapping(dataset).num_classes
    assert table.shape == (194,) and set(table.tolist()) <= set(range(k + 1)) and len(set(table.tolist()) - {k}) > 1


def test_test_member_one_to_many_classes_cannot_train_silently(tmp_path):
    root = write_fixture("kitti", tmp_path / "kitti", size=(12, 16))
    with pytest.raises(DataError, match=r"cannot train kitti class\(es\) 'pole' \(covers streetlight, pole\)"):
        to_universal(load_split("kitti", str(root), "val"), load_taxonomy("mseg"), "kitti")


def test_kitti_splits_are_mseg_val_list_and_the_rest(tmp_path):
    root = write_fixture("kitti", tmp_path / "kitti", num_train=4, size=(6, 8))
    val = load_split("kitti", str(root), "val")
    assert [p.name for p, _ in val.pairs][:3] == ["000052_10.png", "000026_10.png", "000076_10.png"]
    assert [p.name for p, _ in load_split("kitti", str(root), "train").pairs] == ["000000_10.png", "000002_10.png", "000004_10.png", "000005_10.png"]
    assert len(load_split("kitti", str(root), "all").pairs) == 54
    lut = val.label_lut
    assert lut[7] == 0 and lut[33] == 18 and lut[1] == IGNORE_INDEX and lut[255] == IGNORE_INDEX and lut[34] == -1
    (root / "training/image_2/000037_10.png").unlink()
    (root / "training/semantic/000037_10.png").unlink()
    with pytest.raises(DataError, match=r"split val \(MSeg's list\) needs .*training/image_2/000037_10\.png .*1 of its 50"):
        load_split("kitti", str(root), "val")


def test_kitti_label_id_outside_cityscapes_ids_is_named(tmp_path):
    root = write_fixture("kitti", tmp_path / "kitti", num_train=1, size=(6, 8))
    spec = load_split("kitti", str(root), "train")
    Image.fromarray(np.full((6, 8), 40, np.uint8)).save(spec.pairs[0][1])
    with pytest.raises(DataError, match=r"label .*000000_10\.png has values \[40\]"):
        SegmentationDataset(spec)[0]


def test_wilddash_pairs_images_with_label_ids_beside_them(tmp_path):
    root = write_fixture("wilddash", tmp_path / "wilddash", num_val=3, size=(6, 8))
    Image.fromarray(np.zeros((6, 8), np.uint8)).save(root / "wd_val_01" / "at0000_100000_instanceIds.png")  # not read
    spec = load_split("wilddash", str(root), "val")
    assert [(p.name, q.name) for p, q in spec.pairs][0] == ("at0000_100000.png", "at0000_100000_labelIds.png")
    assert len(spec.pairs) == 3
    with pytest.raises(DataError, match=r"wilddash: unknown split 'train'; known splits: val"):
        load_split("wilddash", str(root), "train")
    (root / "wd_val_01" / "cn0001_100000_labelIds.png").unlink()
    with pytest.raises(DataError, match=r"image .*cn0001_100000\.png has no label: expected .*wd_val_01/cn0001_100000_labelIds\.png"):
        load_split("wilddash", str(root), "val")


@pytest.mark.parametrize(
    "dataset, remove, expected",
    [
        ("wilddash", "wd_val_01", "wd_val_01"),
        ("kitti", "training/semantic", "training/semantic"),
        ("mapillary", "training/labels", "training/labels"),
        ("pascal_context", "VOCdevkit/VOC2010/ImageSets/SegmentationContext/train.txt", "SegmentationContext/train.txt"),
        ("scannet", "scannetv2_train.txt", "scannetv2_train.txt"),
        ("sunrgbd", "label38/train", "label38/train"),
    ],
)
def test_wrong_layout_names_the_expected_path_and_the_layout(dataset, remove, expected, tmp_path):
    root = write_fixture(dataset, tmp_path / dataset, size=(6, 8))
    path = root / remove
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    split = "val" if dataset == "wilddash" else "train"
    with pytest.raises(DataError) as err:
        load_split(dataset, str(root), split)
    assert str(root / remove) in str(err.value) and expected in str(err.value)
    assert LAYOUTS[dataset][1] in str(err.value)


def _sunrgbd_pixel(root, folder: str, raw: int):
    """Write one SUN RGB-D train pair, image 7, whose label is ``raw`` everywhere but an unlabelled corner."""
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(root / "image/train/img-000007.jpg")
    label = np.full((6, 8), raw, np.uint8)
    label[0, 0] = 0 if folder != "semseg-label37" else 255
    (root / folder / "train").mkdir(parents=True, exist_ok=True)
    Image.fromarray(label).save(root / folder / "train/00000007.png")


@pytest.mark.parametrize("folder, raw", [("label38", 5), ("label37", 5), ("semseg-label37", 4)])
def test_sunrgbd_pairs_numbered_images_and_labels_into_the_universal_classes(folder, raw, tmp_path):
    """``image/train/img-000007.jpg`` pairs with ``<labels>/train/00000007.png``; the archive's labels
    (0 unlabeled, 5 chair) and MSeg's remapped ones (4 chair, 255) both give universal chair_other."""
    root = write_fixture("sunrgbd", tmp_path / "sunrgbd", num_train=2, size=(6, 8))
    if folder != "label38":
        shutil.rmtree(root / "label38")
        (root / "image/train/img-000001.jpg").unlink()
        (root / "image/train/img-000002.jpg").unlink()
    _sunrgbd_pixel(root, folder, raw)
    spec = load_split("sunrgbd", str(root), "train")
    assert [(p.name, q.name) for p, q in spec.pairs][-1] == ("img-000007.jpg", "00000007.png")
    taxonomy = load_taxonomy("mseg")
    label = SegmentationDataset(to_universal(spec, taxonomy, "sunrgbd"))[len(spec.pairs) - 1]["label"]
    assert label[0, 0] == IGNORE_INDEX and set(label.unique().tolist()) == {taxonomy.classes.index("chair_other"), IGNORE_INDEX}


def test_sunrgbd_val_is_mseg_list_and_test_all_of_image_test(tmp_path):
    root = write_fixture("sunrgbd", tmp_path / "sunrgbd", num_train=1, size=(6, 8))
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(root / "image/test/img-000002.jpg")  # not in MSeg's list
    Image.fromarray(np.zeros((6, 8), np.uint8)).save(root / "label38/test/00000002.png")
    val = load_split("sunrgbd", str(root), "val")
    assert [p.name for p, _ in val.pairs][:3] == ["img-000001.jpg", "img-000025.jpg", "img-000026.jpg"] and len(val.pairs) == 475
    assert len(load_split("sunrgbd", str(root), "test").pairs) == 476
    (root / "image/test/img-001163.jpg").unlink()
    (root / "label38/test/00001163.png").unlink()
    with pytest.raises(DataError, match=r"split val \(MSeg's list\) needs .*image/test/img-001163\.jpg .*1 of its 475"):
        load_split("sunrgbd", str(root), "val")


def test_sunrgbd_names_the_missing_label_and_values_outside_its_ids(tmp_path):
    root = write_fixture("sunrgbd", tmp_path / "sunrgbd", num_train=2, size=(6, 8))
    (root / "label38/train/00000002.png").unlink()
    with pytest.raises(DataError, match=r"image .*img-000002\.jpg has no label: expected .*label38/train/00000002\.png"):
        load_split("sunrgbd", str(root), "train")
    Image.fromarray(np.full((6, 8), 38, np.uint8)).save(root / "label38/train/00000002.png")
    with pytest.raises(DataError, match=r"label .*00000002\.png has values \[38\]"):
        SegmentationDataset(load_split("sunrgbd", str(root), "train"))[1]


def test_mapillary_reads_the_v2_archives_v12_labels(tmp_path):
    root = write_fixture("mapillary", tmp_path / "mapillary", size=(6, 8))
    (root / "training" / "v1.2").mkdir()
    (root / "training" / "labels").rename(root / "training" / "v1.2" / "labels")
    spec = load_split("mapillary", str(root), "train")
    assert all(label.parent == root / "training" / "v1.2" / "labels" for _, label in spec.pairs)


def test_full_mseg_config_reads_every_training_table_and_stops_at_missing_data(tmp_path):
    """paper-gss-mseg.yaml lists MSeg's 7 training sets: every one's table trains (MSeg's many-to-one
    merges; its unlabeled classes listed in data.ignore_classes); without the data on disk the run
    stops naming the first dataset folder it could not find."""
    import yaml
    from conftest import REPO

    from genseg.data.sources import train_spec
    from genseg.data.taxonomy import training_table
    from genseg.experiments import apply_overlay, run_configs

    workflow = apply_overlay({**yaml.safe_load((REPO / "workflow/config/paper-gss-mseg.yaml").read_text()), "overlay": ""})
    cfg = next(iter(run_configs(workflow, tmp_path, tmp_path / "runs").values()))
    assert cfg.data.train_domains == ("ade20k", "bdd", "cityscapes", "coco_panoptic", "idd", "mapillary", "sunrgbd")
    assert cfg.data.balance == "equal"  # GSS's RepeatDataset factors: each dataset ~1/7 of the stream
    taxonomy = load_taxonomy("mseg")
    for dataset in cfg.data.train_domains:
        table = training_table(taxonomy, dataset, cfg.data.ignore_classes.get(dataset, ()))
        assert len(table) == taxonomy.mapping(dataset).num_classes
    assert taxonomy.mapping("ade20k").shared()  # house, skyscraper, ... -> building
    with pytest.raises(DataError, match=r"ade20k"):
        train_spec(cfg.data, "train", cfg.data.train_domains)


def test_hrnet_prior_reads_timms_imagenet_file_as_four_branches(tmp_path):
    """paper-gss-mseg.yaml's HRNet prior: timm HRNet, feature_location "" (the 4 branches, as mmseg's HRNet),
    weights from a timm classification checkpoint (here hrnet_w18_small, random, for speed)."""
    import timm
    import torch
    from safetensors.torch import save_file

    from genseg.methods.gss.prior import Prior

    torch.manual_seed(0)
    full = timm.create_model("hrnet_w18_small", pretrained=False)
    path = tmp_path / "hrnet_w18_small.ms_in1k.safetensors"
    save_file({k: v.contiguous() for k, v in full.state_dict().items()}, str(path))
    prior = Prior(16, 194, encoder="hrnet_w18_small", pretrained_file=str(path), encoder_args={"feature_location": ""},
                  mla_dim=8, dim=16, depth=1, heads=2, window=4, ffn=16, hidden=16)
    assert prior.backbone.feature_info.channels()[prior.first_level:] == [16, 32, 64, 128]
    key = "stage4.0.branches.3.0.conv1.weight"
    assert torch.equal(prior.backbone.state_dict()[key], full.state_dict()[key])
    tokens, aux = prior(torch.zeros(1, 3, 64, 64))
    assert tokens.shape == (1, 16, 16, 16) and aux.shape == (1, 194, 16, 16)
