"""Every paper config: strict checks, its smoke variant end to end on CPU (train, evaluate, report table)."""

import json

import pandas as pd
import pytest
import yaml
from conftest import REPO

from genseg.config import ConfigError
from genseg.data.fixtures import FIXTURE_DATASETS, SMOKE_DVAE
from genseg.engine.evaluate import SMOKE_WEIGHTS, evaluate_plan
from genseg.engine.train import train
from genseg.experiments import apply_overlay, eval_plan, run_configs
from genseg.methods import METHODS
from genseg.report.aggregate import aggregate
from genseg.report.build import table_blocks
from genseg.report.reference import load_reported

PAPER_CONFIGS = sorted((REPO / "workflow/config").glob("paper-*.yaml"))


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory):
    """What `genseg write-fixture` writes: tiny ADE20K / COCO-Stuff / Cityscapes trees and a random dVAE."""
    from genseg.cli import main
    from genseg.data.layouts import load_split

    root = tmp_path_factory.mktemp("fixture")
    assert main(["write-fixture", str(root)]) == 0
    for dataset in FIXTURE_DATASETS:
        assert [len(load_split(dataset, str(root / dataset), split).pairs) for split in ("train", "val")] == [2, 2]
    assert (root / "weights" / SMOKE_DVAE).is_file()
    return root


def load(path, overlay=""):
    return apply_overlay({**yaml.safe_load(path.read_text()), "overlay": overlay})


@pytest.mark.parametrize("path", PAPER_CONFIGS, ids=lambda p: p.stem)
def test_paper_config_is_strict_and_names_pretrained_files_by_placeholder(path, monkeypatch):
    monkeypatch.setenv("GENSEG_WEIGHTS", "/weights")
    workflow = load(path)
    assert workflow["evaluate"]["split"] == "val" and "smoke" in workflow.get("overlays", yaml.safe_load(path.read_text())["overlays"])
    runs = run_configs(workflow, "")
    assert len(runs) == len(workflow["experiments"]) * len(workflow["seeds"])
    text = path.read_text()
    for cfg in runs.values():
        assert not cfg.smoke and cfg.data.pipeline == "mmseg" and cfg.data.cat_max_ratio == 0.75
        for key in ("pretrained_file", "pixnerd_file", "posterior_file", "backbone_file"):
            value = cfg.model.options.get(key, "")
            assert not value or value.startswith("/weights/") or "/runs/" in value or value.startswith("runs/"), (cfg.name, key, value)
    for line in text.splitlines():  # every recipe row cites where its value comes from
        stripped = line.strip()
        if stripped.startswith(("lr:", "optimizer:", "weight_decay:", "poly_power:", "warmup_iters:", "crop_size:")) and "overlays" not in line:
            assert "#" in line or text.index(line) > text.index("overlays:"), f"{path.name}: no source for {stripped!r}"


def test_overlay_adds_experiments_only_under_add_experiments():
    workflow = {"name": "x", "experiments": {"a": {}}, "overlay": "smoke", "overlays": {"smoke": {"experiments": {"b": {}}}}}
    with pytest.raises(ConfigError, match=r"overlays.smoke.experiments.b: not an experiment of this config.*add_experiments"):
        apply_overlay(workflow)
    with pytest.raises(ConfigError, match=r"overlay 'tiny' is not defined"):
        apply_overlay({**workflow, "overlay": "tiny"})
    clash = {**workflow, "overlays": {"smoke": {"add_experiments": {"a": {}}}}}
    with pytest.raises(ConfigError, match=r"overlays.smoke.add_experiments.a: the config already has"):
        apply_overlay(clash)
    added = {**workflow, "overlays": {"smoke": {"every_experiment": {"seed": 1}, "add_experiments": {"b": {"model": {"m": 2}}}}}}
    out = apply_overlay(added)
    assert out["experiments"] == {"a": {"seed": 1}, "b": {"model": {"m": 2}, "seed": 1}}
    assert "b" not in apply_overlay({**added, "overlay": ""})["experiments"]


@pytest.mark.parametrize("path", PAPER_CONFIGS, ids=lambda p: p.stem)
def test_smoke_variant_trains_evaluates_and_fills_the_main_table(path, fixture_root, tmp_path, monkeypatch):
    monkeypatch.setenv("GENSEG_WEIGHTS", str(fixture_root / "weights"))
    workflow = load(path, "smoke")
    assert workflow["name"] == f"{path.stem}-smoke"
    split = workflow["evaluate"]["split"]
    runs_dir = tmp_path / "runs"
    runs = run_configs(workflow, fixture_root / workflow["dataset"]["name"], runs_dir)
    indices = []
    for run_id, cfg in runs.items():  # config order: a GSS prior before the FT-W stage that starts from it
        assert cfg.smoke and cfg.optim.iterations <= 2 and cfg.data.crop_size <= 64
        record = train(cfg, runs_dir / run_id)
        assert record["pretrained"] == SMOKE_WEIGHTS
        indices.append(evaluate_plan(runs_dir / run_id, split, eval_plan(workflow["evaluate"], cfg), runs_dir / run_id / "eval" / split, device="cpu"))
    frame = aggregate(indices, tmp_path / "metrics.csv")
    paired = pd.DataFrame(columns=["a", "b", "seed", "split", "domain", "delta", "ci_low", "ci_high", "p_value", "n_images"])
    [(main, caption)] = table_blocks("main_results", frame, load_reported(None), paired, split=split)
    ours = main[main["mIoU reproduced"] != "–"]
    methods = [e for e, c in workflow["experiments"].items() if not METHODS[c["model"]["method"]].oracle]
    assert sorted(i.rsplit("(", 1)[1].rstrip(")") for i in ours.index) == sorted(methods)
    assert (ours.Pretrain == SMOKE_WEIGHTS).all() and f"in-domain {split} mIoU" in caption
    assert json.loads(frame.model_options.iloc[0])["method"]
    written = pd.read_csv(tmp_path / "metrics.csv", keep_default_na=False)
    assert set(written.ablation) == set(written.ablation_value) == {""}  # run identity: no ablation variants here


def test_weights_placeholder_expands_from_the_environment(monkeypatch, tmp_path):
    from genseg.experiments import fill_placeholders

    monkeypatch.setenv("GENSEG_WEIGHTS", str(tmp_path))
    assert fill_placeholders({"a": ["{weights}/mit_b2.imagenet.safetensors"]}, "runs", 0) == {"a": [f"{tmp_path}/mit_b2.imagenet.safetensors"]}
    monkeypatch.delenv("GENSEG_WEIGHTS")
    assert fill_placeholders("{weights}/x", "runs", 0).endswith(".cache/genseg/weights/x")
