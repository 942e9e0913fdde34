import numpy as np
import pytest
from PIL import Image

from genseg.data.base import (
    DataError,
    SegmentationDataset,
    StreamSampler,
    identity_lut,
    pair_by_stem,
    read_label,
)
from genseg.data.layouts import load_split
from genseg.data.transforms import TrainTransform


def test_loader_reads_synthetic_split(tiny_synthetic):
    spec = load_split("synthetic", str(tiny_synthetic), "train", ["clean"])
    assert len(spec.pairs) == 24 and spec.num_classes >= 10
    item = SegmentationDataset(spec)[0]
    assert item["image"].shape == (3, 64, 64) and 0 <= item["image"].min() and item["image"].max() <= 1
    labels = set(item["label"].unique().tolist())
    assert labels <= set(range(spec.num_classes)) | {255}
    both = load_split("synthetic", str(tiny_synthetic), "val", ["clean", "shifted"])
    assert len(both.pairs) == 16


def test_missing_root_names_path_and_layout(tmp_path):
    with pytest.raises(DataError, match="does not exist; expected layout") as err:
        load_split("synthetic", str(tmp_path / "nowhere"), "train")
    assert "nowhere" in str(err.value) and "<domain>/<split>/images" in str(err.value)


def test_root_without_meta_explains(tmp_path):
    with pytest.raises(DataError, match="no meta.json"):
        load_split("synthetic", str(tmp_path), "train")


def test_unknown_dataset_and_domain(tiny_synthetic):
    with pytest.raises(DataError, match="unknown dataset 'ade'"):
        load_split("ade", str(tiny_synthetic), "train")
    with pytest.raises(DataError, match="unknown domain 'foggy'"):
        load_split("synthetic", str(tiny_synthetic), "train", ["foggy"])


def _write_pair(folder, stem, label_values, image_ext=".png"):
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(folder / "images" / f"{stem}{image_ext}")
    Image.fromarray(np.array(label_values, np.uint8).reshape(4, 4)).save(folder / "labels" / f"{stem}.png")


def test_image_without_label_is_named(tmp_path):
    _write_pair(tmp_path, "a", [0] * 16)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "images" / "b.jpg")
    with pytest.raises(DataError, match=r"image .*b\.jpg has no label"):
        pair_by_stem(tmp_path / "images", tmp_path / "labels")


def test_pairs_by_stem_whatever_the_extension(tmp_path):
    _write_pair(tmp_path, "a", [0] * 16, image_ext=".jpg")
    pairs = pair_by_stem(tmp_path / "images", tmp_path / "labels")
    assert [(p.name, q.name) for p, q in pairs] == [("a.jpg", "a.png")]


def test_out_of_range_label_names_file_and_values(tmp_path):
    _write_pair(tmp_path, "a", [0] * 14 + [3, 200])
    with pytest.raises(DataError, match=r"a\.png has values \[3, 200\]"):
        read_label(tmp_path / "labels" / "a.png", identity_lut(3), 3)


def test_corrupt_image_is_named(tmp_path, tiny_synthetic):
    _write_pair(tmp_path, "a", [0] * 16)
    (tmp_path / "images" / "a.png").write_bytes(b"not a png")
    spec = load_split("synthetic", str(tiny_synthetic), "train", ["clean"])
    broken = type(spec)(spec.name, spec.classes, ((tmp_path / "images" / "a.png", tmp_path / "labels" / "a.png"),), spec.label_lut)
    with pytest.raises(DataError, match=r"cannot read image .*a\.png"):
        SegmentationDataset(broken)[0]


def test_augmentation_is_deterministic_per_position(tiny_synthetic):
    spec = load_split("synthetic", str(tiny_synthetic), "train", ["clean"])
    ds = SegmentationDataset(spec, TrainTransform(48), seed=3)
    a, b, c = ds[(0, 5)], ds[(0, 5)], ds[(0, 6)]
    assert a["image"].shape == (3, 48, 48)
    assert (a["image"] == b["image"]).all() and (a["label"] == b["label"]).all()
    assert not (a["image"] == c["image"]).all()


def test_crop_larger_than_image_pads_labels_with_ignore():
    rng = np.random.default_rng(0)
    image, label = np.zeros((10, 10, 3), np.uint8), np.zeros((10, 10), np.uint8)
    _, out = TrainTransform(16, scale_range=(1.0, 1.0), photometric=False)(image, label, rng)
    assert out.shape == (16, 16) and (out == 255).sum() == 16 * 16 - 100


def test_stream_sampler_resumes_where_it_stopped():
    full = StreamSampler(10, seed=1)
    it = iter(full)
    stream = [next(it) for _ in range(25)]
    it2 = iter(StreamSampler(10, seed=1, start=13))
    assert [next(it2) for _ in range(12)] == stream[13:]
    assert sorted(i for i, _ in stream[:10]) == list(range(10))  # each epoch a permutation
