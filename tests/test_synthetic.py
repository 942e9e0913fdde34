"""The embedded synthetic dataset: determinism, layout, labels, domains, failure safety."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genseg.data import synthetic
from genseg.data.synthetic import CLASSES, DOMAINS, IGNORE_INDEX, generate, render_scene

TINY = dict(seed=3, image_size=32, num_train=6, num_val=6, num_test=6, domains=("clean", "blurred"))


def files_by_name(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def scenes(domain: str, count: int, size: int = 64, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    return [render_scene(np.random.default_rng([seed, i]), size, domain) for i in range(count)]


def test_regeneration_is_byte_identical_whatever_the_workers(tmp_path):
    first = generate(tmp_path / "a", workers=2, **TINY)
    second = generate(tmp_path / "b", workers=1, **TINY)
    a, b = files_by_name(first), files_by_name(second)
    assert len(a) == 2 * 3 * 6 * 2 + 1
    assert a == b
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]  # no temporary folders left


def test_layout_and_meta(tmp_path):
    root = generate(tmp_path / "synthetic", workers=1, **{**TINY, "num_val": 2, "num_test": 3})
    meta = json.loads((root / "meta.json").read_text())
    assert meta == {
        "name": "synthetic",
        "classes": list(CLASSES),
        "ignore_index": 255,
        "domains": ["clean", "blurred"],
        "splits": {"train": 6, "val": 2, "test": 3},
        "image_size": 32,
        "seed": 3,
        "version": 1,
    }
    assert sorted(p.name for p in root.iterdir()) == ["blurred", "clean", "meta.json"]
    for domain in ("clean", "blurred"):
        for split, count in meta["splits"].items():
            names = [f"{i:05d}.png" for i in range(count)]
            assert sorted(p.name for p in (root / domain / split / "images").iterdir()) == names
            assert sorted(p.name for p in (root / domain / split / "labels").iterdir()) == names
            with Image.open(root / domain / split / "images" / names[0]) as image:
                assert (image.format, image.mode, image.size) == ("PNG", "RGB", (32, 32))
            with Image.open(root / domain / split / "labels" / names[0]) as label:
                assert (label.format, label.mode, label.size) == ("PNG", "L", (32, 32))


def test_files_match_the_documented_rng(tmp_path):
    root = generate(tmp_path / "synthetic", workers=1, **TINY)
    domain_index, split_index, index = DOMAINS.index("blurred"), 2, 4
    image, label = render_scene(np.random.default_rng([3, domain_index, split_index, index]), 32, "blurred")
    folder = root / "blurred" / "test"
    assert np.array_equal(np.asarray(Image.open(folder / "images" / "00004.png")), image)
    assert np.array_equal(np.asarray(Image.open(folder / "labels" / "00004.png")), label)


def test_scene_arrays_and_label_values():
    for domain in DOMAINS:
        for image, label in scenes(domain, 10, size=48):
            assert image.shape == (48, 48, 3) and image.dtype == np.uint8
            assert label.shape == (48, 48) and label.dtype == np.uint8
            values = set(np.unique(label).tolist())
            assert values <= set(range(len(CLASSES))) | {IGNORE_INDEX}
            assert IGNORE_INDEX in values
            assert (label == IGNORE_INDEX).mean() < 0.2


def test_boundary_band_is_one_pixel_on_the_later_layer():
    label = np.zeros((8, 8), dtype=np.uint8)
    layer = np.zeros((8, 8), dtype=np.int16)
    label[4:], layer[4:] = 1, 1  # ground below sky
    label[2:6, 2:6], layer[2:6, 2:6] = 5, 2  # an object across the horizon
    band = synthetic._boundary_band(label, layer)
    expected = np.zeros((8, 8), dtype=bool)
    expected[4, [0, 1, 6, 7]] = True  # ground's top row, outside the object
    expected[2:6, 2:6] = True
    expected[3:5, 3:5] = False  # the object's outline
    assert np.array_equal(band, expected)


def test_ignore_pixels_touch_labelled_pixels():
    for _, label in scenes("clean", 10):
        padded = np.pad(label, 1, mode="edge")
        neighbours = np.stack([padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]])
        ignore = label == IGNORE_INDEX
        assert (neighbours != IGNORE_INDEX).any(0)[ignore].mean() > 0.95


def test_every_class_appears_in_a_small_sample():
    seen = set()
    for _, label in scenes("clean", 40):
        seen |= set(np.unique(label).tolist())
    assert seen - {IGNORE_INDEX} == set(range(len(CLASSES)))


def test_sky_above_ground():
    for _, label in scenes("clean", 20):
        assert (label[0] == CLASSES.index("ground")).sum() == 0
        assert (label[-1] == CLASSES.index("sky")).sum() == 0


def test_domains_share_layout_statistics_but_differ_in_look():
    rendered = {domain: scenes(domain, 150) for domain in DOMAINS}
    frequency = {}
    mean_colour = {}
    sharpness = {}
    for domain, pairs in rendered.items():
        labels = np.stack([label for _, label in pairs])
        images = np.stack([image for image, _ in pairs]).astype(np.float64)
        frequency[domain] = np.bincount(labels[labels != IGNORE_INDEX], minlength=len(CLASSES)) / labels.size
        mean_colour[domain] = images.mean(axis=(0, 1, 2))
        sharpness[domain] = np.abs(np.diff(images, axis=2)).mean()
    for domain in DOMAINS:
        assert np.abs(frequency[domain] - frequency["clean"]).max() < 0.06
    assert np.abs(mean_colour["shifted"] - mean_colour["clean"]).max() > 8.0
    assert sharpness["blurred"] < 0.6 * sharpness["clean"]
    assert sharpness["shifted"] > sharpness["clean"]  # pixel noise


def test_unknown_domain_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"'foggy'.*clean, shifted, blurred"):
        generate(tmp_path / "synthetic", domains=("clean", "foggy"), workers=1)
    with pytest.raises(ValueError, match="foggy"):
        render_scene(np.random.default_rng(0), 32, "foggy")
    assert list(tmp_path.iterdir()) == []


def test_failure_midway_leaves_nothing_at_root(tmp_path, monkeypatch):
    calls = []
    real_render = synthetic.render_scene

    def flaky_render(rng, image_size, domain, num_classes):
        calls.append(domain)
        if len(calls) > 5:
            raise RuntimeError("renderer broke")
        return real_render(rng, image_size, domain, num_classes)

    monkeypatch.setattr(synthetic, "render_scene", flaky_render)
    with pytest.raises(RuntimeError, match="renderer broke"):
        generate(tmp_path / "synthetic", workers=1, **TINY)
    assert len(calls) == 6
    assert list(tmp_path.iterdir()) == []


def test_existing_root_needs_overwrite(tmp_path):
    root = tmp_path / "synthetic"
    root.mkdir()  # an empty folder is fine to fill
    generate(root, workers=1, **TINY)
    before = files_by_name(root)
    with pytest.raises(FileExistsError, match=str(root)):
        generate(root, workers=1, **TINY)
    generate(root, workers=1, overwrite=True, **TINY)
    assert files_by_name(root) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthetic"]


# sha256 over (relative path, bytes) of every file generate() wrote with the arguments of
# DEFAULT_DIGEST_ARGS, measured with the generator before num_classes existed (commit e69ae72):
# the default class count must keep writing byte-identical data (committed results stay valid).
DEFAULT_DIGEST_ARGS = dict(seed=0, image_size=64, num_train=4, num_val=2, num_test=2)
DEFAULT_DIGEST = "68e159cdc0c17d4b4cdb085ffc04778a45622164543ffcdb7bb1c0e7c907d3b4"


def tree_digest(root: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    for name, data in files_by_name(root).items():
        digest.update(name.encode())
        digest.update(data)
    return digest.hexdigest()


def test_default_class_count_writes_the_same_bytes_as_before(tmp_path):
    assert tree_digest(generate(tmp_path / "a", workers=1, **DEFAULT_DIGEST_ARGS)) == DEFAULT_DIGEST
    assert tree_digest(generate(tmp_path / "b", workers=1, num_classes=12, **DEFAULT_DIGEST_ARGS)) == DEFAULT_DIGEST


def test_forty_classes_round_trip_through_the_loader(tmp_path):
    from genseg.data.layouts import load_split

    root = generate(tmp_path / "c40", workers=1, seed=1, image_size=32, num_train=30, num_val=4, num_test=4,
                    domains=("clean",), num_classes=40)
    meta = json.loads((root / "meta.json").read_text())
    assert len(meta["classes"]) == len(set(meta["classes"])) == 40
    assert meta["classes"][:12] == list(CLASSES)
    spec = load_split("synthetic", str(root), "train", ("clean",))
    assert spec.classes == tuple(meta["classes"])
    seen = set()
    for _, label_path in spec.pairs:
        values = np.unique(np.asarray(Image.open(label_path)))
        seen |= set(values.tolist()) - {IGNORE_INDEX}
    assert max(seen) < 40 and len(seen & set(range(12, 40))) > 10  # the new classes are drawn


def test_extra_classes_are_distinct_styles_with_descriptive_names():
    styles = synthetic.class_styles(synthetic.MAX_CLASSES)
    looks = [(s.hue, s.texture, s.stripe_angle, s.shape) for s in styles]
    assert len(set(looks)) == len(looks) == 227
    assert len({s.name for s in styles}) == 227
    assert synthetic.class_styles(150)[:40] == synthetic.class_styles(40)  # N = 40 is a prefix of N = 150
    family, texture, shape = styles[12].name.split("-")
    assert (texture, shape) in {(w, sh) for w, _, _ in synthetic.TEXTURES for sh in synthetic.SHAPES}
    with pytest.raises(ValueError, match="num_classes must be 3 to 227"):
        synthetic.class_styles(228)
    with pytest.raises(ValueError, match="num_classes must be 3 to 227"):
        generate("unused", num_classes=2)


def test_class_count_changes_only_the_object_draws():
    scene = render_scene(np.random.default_rng([0, 7]), 32, "clean", num_classes=150)[1]
    values = set(np.unique(scene).tolist()) - {IGNORE_INDEX}
    assert values <= set(range(150)) and {0, 1} & values  # sky/ground keep ids 0 and 1


def test_a_run_asking_for_another_class_count_is_stopped(tmp_path):
    from genseg.config import ConfigError, DataConfig, RunConfig
    from genseg.data.base import DataError
    from genseg.data.sources import model_num_classes

    root = generate(tmp_path / "c5", workers=1, seed=0, image_size=16, num_train=2, num_val=1, num_test=1,
                    domains=("clean",), num_classes=5)
    data = DataConfig(dataset="synthetic", root=str(root), train_domains=("clean",))
    assert model_num_classes(data) == model_num_classes(dataclasses.replace(data, num_classes=5)) == 5
    with pytest.raises(DataError, match=f"data.num_classes is 12 but {root} has 5 classes"):
        model_num_classes(dataclasses.replace(data, num_classes=12))
    with pytest.raises(ConfigError, match="data.num_classes must be >= 0"):
        RunConfig.from_dict({"name": "x", "data": {"num_classes": -1}})


def test_the_workflow_knows_the_default_class_count():
    from genseg.experiments import SYNTHETIC_CLASSES, synthetic_root

    assert SYNTHETIC_CLASSES == len(CLASSES) == 12
    assert synthetic_root("data/synthetic", 0) == synthetic_root("data/synthetic", 12) == "data/synthetic"
    assert synthetic_root("data/synthetic", 40) == "data/synthetic-c40"
