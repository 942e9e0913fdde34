"""Report figures from small hand-built tidy frames and a tiny samples.npz."""

import json

import numpy as np
import pandas as pd
import pytest

from genseg.report import figures
from genseg.report.aggregate import COLUMNS
from genseg.report.reference import load_reported

FLOW_OPTIONS = json.dumps({"encoding": "kronecker", "reshape": True, "lam": 1.0, "steps": 10}, sort_keys=True)


def evaluation(experiment, method, seed, variant, miou, images_per_s, steps=None, nfe=None, options="{}"):
    """The miou and images_per_s rows of one in-domain test evaluation."""
    key = {"run_id": f"{experiment}-s{seed}", "experiment": experiment, "method": method, "seed": seed,
           "dataset": "synthetic", "train_domains": "clean", "split": "test", "domain": "clean", "in_domain": True,
           "variant": variant, "predict_options": "{}" if variant == "default" else json.dumps({"steps": steps}),
           "steps": steps, "nfe": nfe, "model_options": options}
    return [dict(key, metric="miou", value=miou), dict(key, metric="images_per_s", value=images_per_s)]


def deeplab_rows():
    return [r for seed, m in ((0, 0.71), (1, 0.69)) for r in
            evaluation("deeplabv3plus-r18", "deeplabv3plus", seed, "default", m, 250.0)]


def flowseg_rows():
    rows = []
    for seed, shift in ((0, 0.0), (1, 0.02)):
        for variant, steps, miou, speed in (("default", 10, 0.66, 20.0), ("steps=1", 1, 0.52, 150.0), ("steps=2", 2, 0.60, 90.0)):
            rows += evaluation("flowseg-kronecker-reshaped", "flowseg", seed, variant, miou + shift, speed,
                               steps=steps, nfe=steps, options=FLOW_OPTIONS)
    return rows


@pytest.fixture
def frame():
    return pd.DataFrame(deeplab_rows() + flowseg_rows(), columns=COLUMNS)


@pytest.fixture
def samples(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {}
    for i in range(2):
        label = rng.integers(0, 3, (16, 16)).astype(np.uint8)
        label[0, 0] = 255
        pred = label.copy()
        pred[4:8, 4:8] = (pred[4:8, 4:8] + 1) % 3
        pred[0, 1] = 3  # unmapped class
        arrays[f"image/clean/{i}"] = rng.integers(0, 256, (16, 16, 3)).astype(np.uint8)
        arrays[f"label/clean/{i}"] = label
        arrays[f"pred/flowseg-kronecker-reshaped/clean/{i}"] = pred
        arrays[f"pred/deeplabv3plus-r18/clean/{i}"] = label
    arrays["classes/clean"] = np.array(["background", "circle", "square"])
    path = tmp_path / "samples.npz"
    np.savez_compressed(path, **arrays)
    return path


def written(paths, stem):
    assert [p.name for p in paths] == [f"{stem.name}.png", f"{stem.name}.pdf"]
    for path in paths:
        assert path.exists() and path.stat().st_size > 5_000, path
    return paths


def test_flowseg_steps_with_the_reported_panel(frame, tmp_path):
    written(figures.flowseg_steps(frame, tmp_path / "steps", reported=load_reported()), tmp_path / "steps")
    written(figures.flowseg_steps(frame, tmp_path / "steps_alone"), tmp_path / "steps_alone")


def test_latency_points_pair_throughput_with_miou(frame):
    points = figures._latency_points(frame, "test").set_index(["experiment", "variant"])
    assert points.loc[("flowseg-kronecker-reshaped", "steps=2"), "latency_ms"] == pytest.approx(1000 / 90)
    assert points.loc[("flowseg-kronecker-reshaped", "default"), "miou"] == pytest.approx(67.0)  # mean over seeds
    deeplab = points.loc[("deeplabv3plus-r18", "default")]
    assert deeplab.single and deeplab.nfe_plot == 1.0 and deeplab.latency_ms == pytest.approx(4.0)


def test_latency_figure(frame, tmp_path):
    written(figures.latency(frame, tmp_path / "latency"), tmp_path / "latency")


def test_latency_without_flowseg(tmp_path):
    frame = pd.DataFrame(deeplab_rows() + evaluation("segformer-b0", "segformer", 0, "default", 0.74, 180.0), columns=COLUMNS)
    written(figures.latency(frame, tmp_path / "latency"), tmp_path / "latency")


def test_qualitative_grid(samples, tmp_path):
    written(figures.qualitative(samples, tmp_path / "qual"), tmp_path / "qual")
    order = ["flowseg-kronecker-reshaped", "missing-experiment", "deeplabv3plus-r18"]
    written(figures.qualitative(samples, tmp_path / "qual2", domain="clean", experiments=order, max_images=1), tmp_path / "qual2")


def test_qualitative_names_the_file_for_an_unknown_domain(samples, tmp_path):
    with pytest.raises(ValueError, match="samples.npz.*'foggy'"):
        figures.qualitative(samples, tmp_path / "qual", domain="foggy")


def test_colourise_blacks_out_ignore_and_unmapped():
    lut = figures._class_colours(3)
    rgb = figures._colourise(np.array([[0, 2, 3, 255]], dtype=np.uint8), lut)
    assert rgb[0, 2].tolist() == [0, 0, 0] and rgb[0, 3].tolist() == [0, 0, 0]
    assert rgb[0, 0].tolist() != [0, 0, 0]


def test_convergence_filter_and_other_figures(frame, tmp_path):
    names = ("flowseg-kronecker-reshaped", "flowseg-kronecker-vanilla", "deeplabv3plus-r18")
    curves = pd.DataFrame([{"experiment": e, "seed": s, "step": t, "val_miou": 0.3 + (0.05 + 0.03 * k) * t / 100 + 0.01 * s}
                           for k, e in enumerate(names) for s in (0, 1) for t in (100, 200, 300)])
    written(figures.convergence(curves, tmp_path / "conv"), tmp_path / "conv")
    written(figures.convergence(curves, tmp_path / "conv2", experiments=["deeplabv3plus-r18"]), tmp_path / "conv2")
    written(figures.miou_by_domain(frame, tmp_path / "domains"), tmp_path / "domains")
    rows = [{"label": "reshaped", "experiment": "flowseg-kronecker-reshaped"}]
    written(figures.ablation_bars(frame, rows, tmp_path / "ablation", "Objective: x"), tmp_path / "ablation")


def test_miou_by_domain_with_grid_ratios(frame, tmp_path):
    miou = frame[(frame.metric == "miou") & (frame.variant == "default")]
    grid = pd.concat([miou.assign(metric="grid_ratio_8", value=v) for v in (1.0, 2.0)], ignore_index=True)
    written(figures.miou_by_domain(pd.concat([frame, grid], ignore_index=True), tmp_path / "grid"), tmp_path / "grid")


@pytest.mark.parametrize("name", ["latency", "flowseg_steps", "miou_by_domain"])
def test_empty_frame_gives_a_placeholder(name, tmp_path, monkeypatch):
    calls = []
    real = figures._empty
    monkeypatch.setattr(figures, "_empty", lambda stem, message: calls.append(message) or real(stem, message))
    paths = getattr(figures, name)(pd.DataFrame(columns=COLUMNS), tmp_path / name)
    assert calls and all(p.exists() for p in paths)


def test_qualitative_without_predictions_gives_a_placeholder(tmp_path):
    path = tmp_path / "samples.npz"
    np.savez_compressed(path, **{"image/clean/0": np.zeros((4, 4, 3), np.uint8)})
    paths = figures.qualitative(path, tmp_path / "qual")
    assert all(p.exists() for p in paths)
