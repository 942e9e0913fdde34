"""Uncertainty from sampling and from the softmax: the metrics on hand-computed cases, the methods'
hooks, the workflow block, the tidy CSV and the report table; one slow CLI-to-report run."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from genseg.config import ConfigError, ModelConfig
from genseg.experiments import run_configs, select_experiments, uncertainty_config, uncertainty_jobs
from genseg.methods import METHODS, build_method
from genseg.metrics import (
    UncertaintyMeter,
    auroc,
    auroc_from_histograms,
    entropy,
    expected_calibration_error,
    vote_frequencies,
)
from genseg.report import tables
from genseg.report.aggregate import aggregate_uncertainty


# --- metrics ---------------------------------------------------------------------------------------

def test_vote_entropy_is_zero_when_unanimous_and_log_k_when_all_differ():
    unanimous = torch.full((8, 1, 2, 2), 3)
    p = vote_frequencies(unanimous, 5)
    assert p[0, 3].eq(1).all() and entropy(p).eq(0).all()
    spread = torch.arange(4).view(4, 1, 1, 1).expand(4, 1, 2, 2)  # 4 votes on 4 classes
    assert torch.allclose(entropy(vote_frequencies(spread, 6)), torch.full((1, 2, 2), math.log(4)))
    two_two = torch.tensor([0, 0, 1, 1]).view(4, 1, 1, 1)
    assert torch.allclose(vote_frequencies(two_two, 3)[0, :, 0, 0], torch.tensor([0.5, 0.5, 0.0]))


def test_softmax_entropy_of_a_uniform_distribution_is_log_c():
    assert entropy(torch.full((1, 7, 1, 1), 1 / 7)).item() == pytest.approx(math.log(7))


def test_auroc_hand_cases():
    # positives 0.35, 0.8 against negatives 0.1, 0.4: (0.35 > 0.1) + (0.8 > 0.1) + (0.8 > 0.4) = 3 of 4 pairs
    assert auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert auroc([1.0, 1.0], [1, 0]) == pytest.approx(0.5)  # a tie counts half
    assert auroc([0.0, 0.1, 0.9, 1.0], [0, 0, 1, 1]) == 1.0 and auroc([0.9, 1.0, 0.0, 0.1], [0, 0, 1, 1]) == 0.0
    assert math.isnan(auroc([0.2, 0.3], [0, 0]))


def test_histogram_auroc_equals_the_exact_one_on_discrete_scores():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, 500)  # ties in plenty, as vote entropies
    positives = rng.random(500) < 0.2 + 0.1 * scores
    hist = lambda mask: np.bincount(scores[mask], minlength=6)  # noqa: E731
    assert auroc_from_histograms(hist(positives), hist(~positives)) == pytest.approx(auroc(scores, positives))


def test_ece_is_zero_when_calibrated_and_the_gap_otherwise():
    # one bin: 4 pixels at confidence 0.75, 3 right -> calibrated
    assert expected_calibration_error([4], [3.0], [3]) == 0.0
    # two pixels at 0.9, both wrong: |0 - 0.9|; plus two at 0.5, one right: 0 -> (2 * 0.9 + 0) / 4
    assert expected_calibration_error([2, 2], [1.8, 1.0], [0, 1]) == pytest.approx(0.45)


def test_meter_drops_ignore_pixels_and_scores_a_hand_case():
    # 4 pixels, 2 classes; the last is ignore. p: confident right, confident wrong, unsure right.
    p = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.5, 0.5]]).T.reshape(1, 2, 1, 4)
    labels = torch.tensor([[[0, 1, 1, 255]]])
    meter = UncertaintyMeter(2)
    pred, ent = meter.update(p, labels)
    assert pred.tolist() == [[[0, 0, 1, 0]]] and ent.shape == (1, 1, 4)
    out = meter.compute()
    assert out["pixels"] == 3 and out["error_rate"] == pytest.approx(1 / 3)
    h = lambda a: -(a * math.log(a) + (1 - a) * math.log(1 - a))  # noqa: E731
    assert out["mean_entropy"] == pytest.approx((h(0.9) + h(0.8) + h(0.6)) / 3, rel=1e-5)
    # the one error (entropy h(0.8)) against the right pixels h(0.9) < h(0.8) < h(0.6): 1 of 2 pairs
    assert out["auroc"] == pytest.approx(0.5)
    # bins of width 1/15: 0.9 (right), 0.8 (wrong), 0.6 (right) each alone -> (0.1 + 0.8 + 0.4) / 3
    assert out["ece"] == pytest.approx((0.1 + 0.8 + 0.4) / 3)
    # IoU class 0: 1 / 2, class 1: 1 / 2 (pred {2}, label {1, 2})
    assert out["miou"] == pytest.approx(0.5) and out["miou_single"] == out["miou"]
    assert out["zero_entropy_errors"] == 0.0


def test_unanimous_wrong_votes_are_errors_at_zero_entropy():
    votes = torch.tensor([[2, 2], [2, 2], [2, 0]]).view(3, 1, 1, 2)  # pixel 0: 3 x class 2 (wrong), pixel 1: 2 x 2, 1 x 0
    meter = UncertaintyMeter(3)
    meter.update(vote_frequencies(votes, 3), torch.tensor([[[1, 2]]]), single=votes[2])
    out = meter.compute()
    assert out["zero_entropy_errors"] == 1.0 and out["error_rate"] == 0.5
    # pixel 0 wrong at H = 0 ranks below pixel 1 right at H > 0: AUROC 0
    assert out["auroc"] == 0.0
    # confidence 1 (wrong) and 2/3 (right): (|0 - 1| + |1 - 2/3|) / 2
    assert out["ece"] == pytest.approx((1 + 1 / 3) / 2)
    # majority: [2, 2] -> class 2 IoU 1/2, class 1 IoU 0; one sample [2, 0]: class 0 IoU 0, 1: 0, 2: 0
    assert out["miou"] == pytest.approx(0.25) and out["miou_single"] == 0.0


# --- hooks -----------------------------------------------------------------------------------------

def test_specs_declare_how_a_method_gives_its_uncertainty():
    kinds = {name: spec.uncertainty({}) for name, spec in METHODS.items()}
    assert kinds["deeplabv3plus"] == kinds["segformer"] == kinds["mask2former"] == "softmax"
    assert kinds["flowseg"] == kinds["gss"] == "samples"
    assert METHODS["flowseg"].uncertainty({"source": "image"}) == ""  # deterministic: no samples
    for name, spec in METHODS.items():
        assert spec.uncertainty({}) in ("", "softmax", "samples")
        assert not (spec.oracle and spec.uncertainty({})), name  # upper bounds read the labels: no uncertainty


def test_pixel_classifier_probabilities_sum_to_one_and_agree_with_predict():
    torch.manual_seed(0)
    model = build_method(ModelConfig("deeplabv3plus", {"encoder": "tu-resnet18"}), 4).eval()
    x = torch.rand(1, 3, 32, 32)
    p = model.probabilities(x)
    assert p.shape == (1, 4, 32, 32) and torch.allclose(p.sum(1), torch.ones(1, 32, 32), atol=1e-5)
    assert torch.equal(p.argmax(1), model.predict(x))


def test_flowseg_samples_are_seeded():
    from test_flowseg import tiny_flowseg

    torch.manual_seed(0)
    model = tiny_flowseg(steps=2, temperature=0.0).eval()  # a deterministic prediction; the draws at temperature 1
    x = torch.rand(1, 3, 32, 32)
    draw = METHODS["flowseg"].sample_options
    with torch.no_grad():
        a, b, c = model.predict(x, seed=0, **draw), model.predict(x, seed=0, **draw), model.predict(x, seed=1, **draw)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_gss_samples_tokens_at_a_temperature(tmp_path):
    from test_gss import TINY_PRIOR, TINY_VQ, K

    from genseg.engine.checkpoint import save_weights
    from genseg.methods.gss.method import VQVAEMethod, VQVAEOptions

    torch.manual_seed(0)
    posterior = tmp_path / "model.safetensors"
    save_weights(posterior, VQVAEMethod(VQVAEOptions(**TINY_VQ), K))
    gss = build_method(ModelConfig("gss", {"posterior_file": str(posterior), **TINY_VQ, **TINY_PRIOR}), K).eval()
    x = torch.rand(1, 3, 32, 32)
    argmax = gss.predict(x)
    assert torch.equal(gss.predict(x, temperature=0.0, seed=5), argmax)  # temperature 0: the argmax tokens
    a, b, c = (gss.predict(x, temperature=1.0, seed=s) for s in (0, 0, 1))
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ConfigError, match="temperature"):
        gss.check_predict_options({"temperature": -1})


# --- workflow block --------------------------------------------------------------------------------

def workflow(**block):
    import yaml
    from conftest import REPO

    cfg = yaml.safe_load((REPO / "workflow/config/default.yaml").read_text())
    if block:
        cfg["uncertainty"] = {**cfg["uncertainty"], **block}
    return cfg


def test_the_default_config_scores_the_headline_seed_0_runs(tmp_path):
    cfg = workflow()
    jobs = uncertainty_jobs(cfg, run_configs(cfg, "data", tmp_path, weights_dir=tmp_path))
    assert sorted(r for r, _, _ in jobs) == sorted(f"{e}-s0" for e in cfg["uncertainty"]["experiments"])
    assert {(d, s) for _, d, s in jobs} == {("clean", "test")}
    assert uncertainty_config(cfg).k == 8


@pytest.mark.parametrize("block, match", [
    ({"k": 0}, "uncertainty.k"),
    ({"max_images": -1}, "uncertainty.max_images"),
    ({"experiments": ["nope"]}, "uncertainty.experiments: nope"),
    ({"kk": 3}, "unknown key 'uncertainty.kk'"),
    ({"k": "eight"}, "uncertainty.k"),
])
def test_a_bad_uncertainty_block_is_named(block, match):
    with pytest.raises(ConfigError, match=match):
        uncertainty_config(workflow(**block))


def test_an_experiment_without_uncertainty_is_refused(tmp_path):
    cfg = workflow(experiments=["maskige-ff"])
    with pytest.raises(ConfigError, match="maskige-ff .*gives no predictive distribution"):
        uncertainty_jobs(cfg, run_configs(cfg, "data", tmp_path, weights_dir=tmp_path))


def test_only_keeps_the_uncertainty_experiments_it_selects():
    kept = select_experiments(workflow(), ["deeplabv3plus-r18"])
    assert kept["uncertainty"]["experiments"] == ["deeplabv3plus-r18"]
    uncertainty_config(kept)


# --- tidy CSV and table ----------------------------------------------------------------------------

def record(experiment, kind, auroc_value, seed=0):
    scores = {"miou": 0.7, "miou_single": 0.6, "aacc": 0.9, "auroc": auroc_value, "ece": 0.05, "mean_entropy": 0.2,
              "error_rate": 0.1, "zero_entropy_errors": 0.3, "pixels": 10}
    return {"run_id": f"{experiment}-s{seed}", "experiment": experiment, "method": "m", "display_name": experiment.upper(),
            "split": "test", "domain": "clean", "kind": kind, "k": 8 if kind == "samples" else 1, "num_images": 4,
            "scores": scores, "images_per_s": 2.0, "wall_seconds": 3.0,
            "provenance": {"seed": seed, "git_commit": "abc", "config_hash": "h"}}


def test_aggregate_and_table(tmp_path):
    paths = []
    for rec in (record("flow", "samples", 0.8), record("flow", "samples", 0.9, seed=1), record("dl", "softmax", 0.95)):
        path = tmp_path / f"{rec['run_id']}.json"
        path.write_text(json.dumps(rec))
        paths.append(path)
    frame = aggregate_uncertainty(paths, tmp_path / "u.csv")
    assert len(frame) == 3 * 10 and set(pd.read_csv(tmp_path / "u.csv").metric) >= {"auroc", "ece", "wall_seconds"}
    table = tables.uncertainty(pd.read_csv(tmp_path / "u.csv"))
    row = table.loc["FLOW (flow)"]
    assert row["AUROC (%)"] == "85.0" and row["Predictive"] == "8 samples (votes)" and row["Seeds"] == "2"
    assert table.loc["DL (dl)", "Predictive"] == "softmax"
    assert "no uncertainty runs" in tables.uncertainty(pd.DataFrame()).index[0]


# --- the CLI step, end to end (slow) ----------------------------------------------------------------

@pytest.mark.slow
def test_uncertainty_cli_writes_json_csv_table_and_figure(tmp_path, tiny_synthetic, tiny_config):
    from test_flowseg import TINY

    from genseg.cli import main
    from genseg.engine.evaluate import evaluate_run
    from genseg.engine.train import train
    from genseg.report.families import Inputs
    from genseg.report.families.uncertainty import DEFINITIONS

    runs = {"flow-s0": {"method": "flowseg", **TINY, "steps": 2, "temperature": 0.0}, "dl-s0": {"method": "deeplabv3plus", "encoder": "tu-resnet18"}}
    outs, evals = [], []
    for rid, model in runs.items():
        train(tiny_config(tiny_synthetic, name=rid[:-3], optim__iterations=1, model=model), tmp_path / rid)
        evals.append(str(tmp_path / rid / "eval.json"))
        evaluate_run(tmp_path / rid, "test", ["clean"], evals[-1], progress=False)
        out = tmp_path / rid / "uncertainty" / "test" / "clean.json"
        assert main(["uncertainty", str(tmp_path / rid), "--domain", "clean", "--out", str(out), "--k", "3", "--max-images", "5"]) == 0
        saved = json.loads(out.read_text())
        assert saved["num_images"] == 5 and saved["wall_seconds"] > 0 and saved["images_per_s"] > 0
        s = saved["scores"]
        assert 0 <= s["miou"] <= 1 and 0 <= s["ece"] <= 1 and 0 <= s["mean_entropy"] <= math.log(saved["num_classes"]) + 1e-6
        assert math.isnan(s["auroc"]) or 0 <= s["auroc"] <= 1
        outs.append(str(out))
    flow = json.loads(open(outs[0]).read())  # predicts from x_0 = 0; its draws come from N(0, I)
    assert flow["kind"] == "samples" and flow["k"] == 3 and flow["predict_options"] == {"temperature": 1.0}
    assert main(["aggregate", *evals, "--out", str(tmp_path / "m.csv"), "--uncertainty", *outs,
                 "--uncertainty-out", str(tmp_path / "u.csv"), "--uncertainty-samples-out", str(tmp_path / "u.npz")]) == 0
    frame = pd.read_csv(tmp_path / "u.csv")
    assert set(frame.experiment) == {"flow", "dl"}
    inputs = Inputs(frame=pd.DataFrame(), reported=pd.DataFrame(), paired=pd.DataFrame(), curves=pd.DataFrame(),
                    uncertainty=frame, uncertainty_samples=str(tmp_path / "u.npz"))
    table, figure = DEFINITIONS
    (block, caption), = table.blocks(inputs)
    assert "flow" in " ".join(block.index) and "15 equal-width bins" in caption
    figure.draw(inputs, tmp_path / "uncertainty")
    assert (tmp_path / "uncertainty.png").stat().st_size > 5000 and (tmp_path / "uncertainty.pdf").exists()
