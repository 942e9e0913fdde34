"""Methods describe themselves (MethodSpec); the workflow and the report read the spec."""

import json
import re

import pandas as pd
import pytest
import torch
from conftest import REPO
from toy_method import TOY_SPEC

from genseg import methods
from genseg.config import ConfigError, RunConfig
from genseg.experiments import method_sweeps, training_stage
from genseg.report.aggregate import with_identity
from genseg.report.families import report_files
from genseg.report.tables import main_results, methods_only

METHOD_NAMES = re.compile(r"""(["'])(gss|flowseg|vqvae|maskige)\1""")


def miou_rows(experiment, method, value, options=None, seed=0):
    """The in-domain test mIoU row of one run, as metrics.csv holds it."""
    return {"run_id": f"{experiment}-s{seed}", "experiment": experiment, "method": method, "seed": seed,
            "dataset": "synthetic", "train_domains": "clean", "split": "test", "domain": "clean", "in_domain": True,
            "variant": "default", "predict_options": "{}", "model_options": json.dumps({"method": method, **(options or {})}),
            "budget": "10 x 2", "metric": "miou", "value": value}


def test_a_toy_method_in_the_method_table_appears_in_main_results_with_its_display_name(monkeypatch):
    monkeypatch.setitem(methods.METHODS, "toy", TOY_SPEC)
    cfg = RunConfig.from_dict({"name": "toy-small", "model": {"method": "toy", "bias": False}})
    assert training_stage(cfg) == "train"
    model = methods.build_method(cfg.model, num_classes=3)
    assert model.predict(torch.zeros(1, 3, 4, 4)).shape == (1, 4, 4)
    frame = pd.DataFrame([miou_rows("toy-small", "toy", 0.5, {"bias": False}),
                          miou_rows("dl", "deeplabv3plus", 0.6)])
    table = main_results(frame)
    assert table.loc["ToyNet (toy-small)", "mIoU reproduced"] == "50.0"
    assert "DeepLabV3+ (dl)" in table.index


def test_unknown_method_names_the_key_and_the_known_ones():
    with pytest.raises(ConfigError, match="unknown model.method 'toy'; known methods: deeplabv3plus"):
        methods.method_spec("toy")


def test_the_spec_decides_stage_oracle_and_display_name(monkeypatch):
    cfg = RunConfig.from_dict({"name": "x", "model": {"method": "deeplabv3plus"}})
    assert training_stage(cfg) == "train"
    monkeypatch.setitem(methods.METHODS, "deeplabv3plus", methods.METHODS["vqvae"])  # now a posterior, an oracle
    assert training_stage(cfg) == "posterior_learning"
    frame = pd.DataFrame([miou_rows("dl", "deeplabv3plus", 0.6), miou_rows("seg", "segformer", 0.7)])
    assert list(methods_only(frame).experiment) == ["seg"]
    assert methods.METHODS["gss"].display({"stage": "inverse", "inverse": "ft-w"}) == "GSS-FT-W"
    assert methods.METHODS["gss"].display({"inverse": "ft-w"}) == "GSS-FF"  # a prior run: its own FF inverse


def test_sweeps_come_from_the_config_or_the_spec_and_must_be_sweepable():
    assert method_sweeps({"sweeps": {"flowseg": {"steps": [1, 2]}}}, "flowseg") == {"steps": [1, 2]}
    assert method_sweeps({"sweeps": {"flowseg": {}}}, "flowseg") == {"steps": list(methods.METHODS["flowseg"].sweeps["steps"])}
    assert method_sweeps({"domains": ["clean"]}, "flowseg") == {}  # no sweeps key: none
    with pytest.raises(ConfigError, match=r"evaluate.sweeps.deeplabv3plus.steps: not a sweepable predict option"):
        method_sweeps({"sweeps": {"deeplabv3plus": {"steps": [1]}}}, "deeplabv3plus")


def test_no_method_name_in_the_layers_above_the_methods():
    """The workflow and report layers read the spec; they never test a method's name."""
    assert METHOD_NAMES.search("""frame.method == 'gss'""") and METHOD_NAMES.search('x == "flowseg"')  # the check bites
    files = [REPO / "genseg/experiments.py", REPO / "genseg/ablations.py", *sorted((REPO / "genseg/report").rglob("*.py"))]
    assert len(files) > 10
    found = [f"{path.relative_to(REPO)}:{i}: {line.strip()}" for path in files
             for i, line in enumerate(path.read_text().splitlines(), 1) if METHOD_NAMES.search(line)]
    assert found == []


def test_run_identity_columns_are_read_or_derived_for_older_results():
    old = pd.DataFrame([miou_rows("base", "segformer", 0.6), miou_rows("base+width=8", "segformer", 0.5)])
    assert list(with_identity(old).ablation) == ["", "width"] and list(with_identity(old).ablation_value) == ["", "8"]
    assert list(methods_only(old).experiment) == ["base"]
    new = old.assign(ablation=["", float("nan")], ablation_value=["", float("nan")])  # "" reads back as NaN
    new.loc[0, "ablation"] = "width"  # the column decides, not the name
    assert list(with_identity(new).ablation) == ["width", ""]
    assert list(methods_only(new).experiment) == ["base+width=8"]


def test_report_files_come_from_the_definitions():
    files = report_files([{"name": "a", "feeds": "abl_a", "figure": "bar", "description": ""},
                          {"name": "b", "feeds": "abl_b", "figure": "none", "description": ""}])
    assert files["miou_by_domain"] == ("md", "tex", "png", "pdf")
    assert files["main_results"] == ("md", "tex") and files["latency"] == ("png", "pdf")
    assert files["abl_a"] == ("md", "tex", "png", "pdf") and files["abl_b"] == ("md", "tex")
    assert "abl_a" not in report_files()


@pytest.mark.slow
def test_the_report_writes_exactly_its_definitions_files(tmp_path):
    from genseg.report.build import build_report

    ref = REPO / "results/reference/default"
    build_report(ref / "metrics.csv", tmp_path, curves=ref / "curves.csv", ablations=ref / "ablations.json",
                 paired=ref / "paired.csv", samples=ref / "samples.npz")
    index = json.loads((ref / "ablations.json").read_text())
    expected = {f"{name}.{ext}" for name, exts in report_files(index["ablations"]).items() for ext in exts}
    assert {p.name for p in tmp_path.iterdir()} == expected
