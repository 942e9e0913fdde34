import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from genseg.metrics import scores_from_areas
from genseg.report.stats import (
    compare_evaluations,
    load_areas,
    miou_from_areas,
    paired_bootstrap,
    paired_bootstrap_seeds,
    seed_summary,
    summarise_seeds,
)


def consistent_areas(label: np.ndarray, ratio) -> dict:
    """Areas of a method predicting exactly the label's area with intersect = ratio * label."""
    intersect = np.rint(label * ratio).astype(np.int64)
    pred = label.copy()
    return {"intersect": intersect, "union": label + pred - intersect, "pred_area": pred, "label_area": label}


# ----- seeds -----


def test_seed_summary_single_value_has_no_spread():
    s = seed_summary([0.5])
    assert s["n"] == 1 and s["mean"] == 0.5
    assert math.isnan(s["std"]) and math.isnan(s["ci_low"]) and math.isnan(s["ci_high"])


def test_seed_summary_empty_and_nan_dropped():
    s = seed_summary([])
    assert s["n"] == 0 and math.isnan(s["mean"])
    assert seed_summary([0.3, float("nan"), 0.5])["n"] == 2


def test_seed_summary_identical_values_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = seed_summary([0.4, 0.4, 0.4])
    assert (s["ci_low"], s["ci_high"]) == (0.4, 0.4)
    assert s["mean"] == 0.4 and s["std"] == 0.0 and s["n"] == 3


def test_seed_summary_matches_numpy_and_ci_is_sound():
    values = np.array([0.47, 0.52, 0.49, 0.55, 0.50])
    s = seed_summary(values)
    assert s["mean"] == pytest.approx(values.mean())
    assert s["std"] == pytest.approx(values.std(ddof=1))
    # the percentile CI of the mean lies within [min, max] and strictly inside it for 5 distinct values
    assert values.min() < s["ci_low"] < s["mean"] < s["ci_high"] < values.max()
    assert s == seed_summary(values)  # seeded: reproducible
    # a higher confidence never narrows the interval
    wide = seed_summary(values, confidence=0.99)
    assert wide["ci_low"] <= s["ci_low"] and wide["ci_high"] >= s["ci_high"]


def test_seed_summary_two_values():
    s = seed_summary([0.41, 0.45])
    assert 0.41 <= s["ci_low"] <= s["ci_high"] <= 0.45
    assert s["std"] == pytest.approx(np.std([0.41, 0.45], ddof=1))


def test_summarise_seeds_groups():
    frame = pd.DataFrame({
        "experiment": ["a"] * 3 + ["b"] + ["a"] * 3,
        "seed": [0, 1, 2, 0, 0, 1, 2],
        "split": ["test"] * 7,
        "domain": ["clean"] * 7,
        "variant": ["default"] * 7,
        "metric": ["miou"] * 4 + ["aacc"] * 3,
        "value": [0.4, 0.5, 0.6, 0.3, 0.8, 0.8, 0.8],
    })
    out = summarise_seeds(frame)
    assert list(out.columns) == ["experiment", "split", "domain", "variant", "metric", "n", "mean", "std", "ci_low", "ci_high"]
    assert len(out) == 3
    rows = {(r.experiment, r.metric): r for r in out.itertuples()}
    a = rows[("a", "miou")]
    assert a.n == 3 and a.mean == pytest.approx(0.5) and a.std == pytest.approx(0.1)
    assert 0.4 <= a.ci_low < 0.5 < a.ci_high <= 0.6
    b = rows[("b", "miou")]
    assert b.n == 1 and b.mean == pytest.approx(0.3) and math.isnan(b.std) and math.isnan(b.ci_low)
    acc = rows[("a", "aacc")]
    assert (acc.ci_low, acc.ci_high) == (0.8, 0.8)
    # custom grouping: over everything per experiment
    assert summarise_seeds(frame, by=("experiment",))["n"].tolist() == [6, 1]


# ----- mIoU from areas -----


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_miou_from_areas_matches_metrics(seed):
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 50, size=(20, 6))
    pred = rng.integers(0, 50, size=(20, 6))
    intersect = np.minimum(label, pred) // 2
    label[:, 3] = pred[:, 3] = intersect[:, 3] = 0  # class absent everywhere: union 0, skipped
    union = label + pred - intersect
    expected = scores_from_areas(intersect.sum(0), union.sum(0), pred.sum(0), label.sum(0))["miou"]
    assert miou_from_areas(intersect, union) == pytest.approx(expected)
    assert miou_from_areas(intersect.sum(0), union.sum(0)) == pytest.approx(expected)


def test_miou_from_areas_all_empty_is_nan():
    assert math.isnan(miou_from_areas(np.zeros(3), np.zeros(3)))


# ----- paired bootstrap -----


def test_identical_methods_have_no_difference():
    rng = np.random.default_rng(0)
    label = rng.integers(1, 1000, size=(60, 5))
    a = consistent_areas(label, rng.uniform(0.2, 0.9, size=label.shape))
    r = paired_bootstrap(a, {k: v.copy() for k, v in a.items()}, n_resamples=500)
    assert r["delta"] == 0.0
    assert r["ci_low"] <= 0.0 <= r["ci_high"]
    assert r["p_value"] == 1.0
    assert r["n_images"] == 60 and r["n_resamples"] == 500


def test_clearly_better_method_on_every_image():
    rng = np.random.default_rng(1)
    label = rng.integers(100, 1000, size=(80, 4)) * 10  # multiples of 10: 0.9 L and 0.6 L exact
    r = paired_bootstrap(consistent_areas(label, 0.9), consistent_areas(label, 0.6), n_resamples=1000)
    assert r["delta"] == pytest.approx(0.9 / 1.1 - 0.6 / 1.4)
    assert r["ci_low"] > 0
    assert r["p_value"] < 0.01
    assert r["p_value"] == pytest.approx(2 / 1001)  # never exactly 0
    swapped = paired_bootstrap(consistent_areas(label, 0.6), consistent_areas(label, 0.9), n_resamples=1000)
    assert swapped["delta"] == pytest.approx(-r["delta"]) and swapped["ci_high"] < 0


def test_tiny_difference_on_noisy_images_is_not_significant():
    # Same label areas everywhere; b's per-image ratios are a's shuffled across images (so the
    # dataset-level sums agree) minus 0.002: a tiny true difference under large per-image noise.
    rng = np.random.default_rng(2)
    label = np.full((200, 5), 1000, dtype=np.int64)
    ratio = rng.uniform(0.2, 0.9, size=label.shape)
    a = consistent_areas(label, ratio)
    b = consistent_areas(label, ratio[rng.permutation(200)] - 0.002)
    r = paired_bootstrap(a, b, n_resamples=1000)
    assert 0 < r["delta"] < 0.01
    assert r["ci_low"] < 0 < r["ci_high"]
    assert r["p_value"] > 0.05


def test_vectorised_resamples_match_a_loop():
    rng = np.random.default_rng(3)
    label = rng.integers(0, 200, size=(30, 4))
    a = consistent_areas(label, rng.uniform(0.1, 0.9, size=label.shape))
    b = consistent_areas(label, rng.uniform(0.1, 0.9, size=label.shape))
    r = paired_bootstrap(a, b, n_resamples=50, seed=7, confidence=0.9)
    draws = np.random.default_rng(7).integers(0, 30, size=(50, 30))  # one chunk: the same draws
    deltas = [
        miou_from_areas(a["intersect"][i], a["union"][i]) - miou_from_areas(b["intersect"][i], b["union"][i])
        for i in draws
    ]
    low, high = np.percentile(deltas, [5, 95])
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert r["delta"] == pytest.approx(miou_from_areas(a["intersect"], a["union"]) - miou_from_areas(b["intersect"], b["union"]))
    assert r == paired_bootstrap(a, b, n_resamples=50, seed=7, confidence=0.9)  # seeded
    chunked = paired_bootstrap(a, b, n_resamples=50, seed=7, confidence=0.9, chunk=7)
    assert chunked["delta"] == r["delta"]


def test_paired_bootstrap_shape_mismatch():
    label = np.ones((10, 3), dtype=np.int64)
    with pytest.raises(ValueError, match=r"\(10, 3\).*\(9, 3\)"):
        paired_bootstrap(consistent_areas(label, 0.5), consistent_areas(label[:9], 0.5))


def test_seed_pairing_adds_the_spread_over_seeds():
    """Per seed, B beats A clearly on every image, but by +10 points on one seed and -10 on the
    other: each seed's own test is significant; paired over seeds and images, the mean
    difference is 0 and the CI spans it."""
    rng = np.random.default_rng(5)
    label = rng.integers(100, 1000, size=(50, 4)) * 10
    up = (consistent_areas(label, 0.8), consistent_areas(label, 0.7))
    down = (consistent_areas(label, 0.7), consistent_areas(label, 0.8))
    one = paired_bootstrap(*up, n_resamples=500)
    assert one["ci_low"] > 0 and one["p_value"] < 0.01
    both = paired_bootstrap_seeds([up, down], n_resamples=500)
    assert both["delta"] == pytest.approx(0.0, abs=1e-12) and both["n_seeds"] == 2
    assert both["ci_low"] < 0 < both["ci_high"] and both["p_value"] > 0.05
    assert both["miou_a"] == pytest.approx((one["miou_a"] + one["miou_b"]) / 2)
    same = paired_bootstrap_seeds([up, up, up], n_resamples=500)  # identical seeds: the image bootstrap's delta
    assert same["delta"] == pytest.approx(one["delta"]) and same["ci_low"] > 0
    with pytest.raises(ValueError, match="same images and classes for every seed"):
        paired_bootstrap_seeds([up, tuple(consistent_areas(label[:40], 0.5) for _ in range(2))])


# ----- files -----


def write_eval(path, run_id, areas, split="test", domains=("clean",)):
    record = {"run_id": run_id, "split": split, "domains": list(domains), "num_images": len(areas["intersect"]),
              "classes": [f"c{i}" for i in range(areas["intersect"].shape[1])], "scores": {}}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path.with_suffix(".npz"), **areas)
    path.write_text(json.dumps(record))
    return path


def test_load_areas_and_compare(tmp_path):
    rng = np.random.default_rng(4)
    label = rng.integers(100, 1000, size=(40, 3)) * 10
    a, b = consistent_areas(label, 0.9), consistent_areas(label, 0.6)
    ja = write_eval(tmp_path / "a" / "default.json", "exp_a-s0", a)
    jb = write_eval(tmp_path / "b" / "default.json", "exp_b-s0", b)
    loaded = load_areas(ja)
    assert set(loaded) == {"intersect", "union", "pred_area", "label_area"}
    np.testing.assert_array_equal(loaded["union"], a["union"])
    r = compare_evaluations(ja, jb, n_resamples=300)
    assert r["run_id_a"] == "exp_a-s0" and r["run_id_b"] == "exp_b-s0"
    assert r["delta"] == pytest.approx(0.9 / 1.1 - 0.6 / 1.4) and r["ci_low"] > 0 and r["n_images"] == 40
    assert r["n_resamples"] == 300


def test_load_areas_missing_npz(tmp_path):
    path = tmp_path / "eval.json"
    path.write_text("{}")
    with pytest.raises(FileNotFoundError, match="eval.npz"):
        load_areas(path)


def test_compare_evaluations_mismatch(tmp_path):
    label = np.full((10, 2), 100, dtype=np.int64)
    areas = consistent_areas(label, 0.5)
    ja = write_eval(tmp_path / "a.json", "a-s0", areas)
    jb = write_eval(tmp_path / "b.json", "b-s0", areas, domains=("shifted",))
    with pytest.raises(ValueError, match=r"a\.json.*b\.json.*domains"):
        compare_evaluations(ja, jb)
    jc = write_eval(tmp_path / "c.json", "c-s0", consistent_areas(label[:8], 0.5))
    with pytest.raises(ValueError, match=r"a\.json.*c\.json.*num_images"):
        compare_evaluations(ja, jc)
    jd = write_eval(tmp_path / "d.json", "d-s0", areas, split="val")
    with pytest.raises(ValueError, match="split"):
        compare_evaluations(ja, jd)


def test_paired_comparisons_pair_seeds_and_the_table_shows_that_row(tmp_path):
    """Two seeds of a and b: one row per seed and one over both (``seed`` all) in paired.csv;
    the paired_tests table shows only the latter."""
    from genseg.report.aggregate import paired_comparisons
    from genseg.report.tables import paired_tests

    rng = np.random.default_rng(6)
    label = rng.integers(100, 1000, size=(30, 3)) * 10
    paths = []
    for experiment, ratios in (("a", (0.9, 0.8)), ("b", (0.6, 0.7))):
        for seed, ratio in enumerate(ratios):
            path = write_eval(tmp_path / f"{experiment}-s{seed}" / "default.json", f"{experiment}-s{seed}", consistent_areas(label, ratio))
            record = json.loads(path.read_text())
            record.update(experiment=experiment, predict_options={}, dataset="synthetic", provenance={"seed": seed})
            path.write_text(json.dumps(record))
            paths.append(path)
    frame = paired_comparisons(paths, [["a", "b"]], tmp_path / "paired.csv")
    assert list(frame.seed.astype(str)) == ["0", "1", "all"] and list(frame.n_seeds) == [1, 1, 2]
    per_seed = [0.9 / 1.1 - 0.6 / 1.4, 0.8 / 1.2 - 0.7 / 1.3]
    assert frame.delta.tolist() == pytest.approx(per_seed + [np.mean(per_seed)])
    table = paired_tests(pd.read_csv(tmp_path / "paired.csv"))
    assert table.Seed.tolist() == ["all (2)"] and table["Δ mIoU"].tolist() == [f"{100 * np.mean(per_seed):+.1f}"]
