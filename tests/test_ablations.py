"""Ablations as files: loading, checks that name the file and key, expansion into experiments."""

import pytest
import yaml
from conftest import REPO

from genseg.ablations import Ablation, expand, load_ablation, load_ablations
from genseg.config import ConfigError
from genseg.experiments import run_configs


def workflow():
    return yaml.safe_load((REPO / "workflow/config/default.yaml").read_text())


def write(folder, name, data):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder / f"{name}.yaml"


def test_axis_values_become_experiments_and_the_base_value_is_the_base_run(tmp_path):
    path = write(tmp_path, "tau", {"base": "flowseg-kronecker-reshaped", "axis": "model.tau", "values": [0.5, 1.0, 2.0], "feeds": "flowseg_tau"})
    expanded, rows = expand(workflow(), [load_ablation(path)])
    assert [r["experiment"] for r in rows] == [
        "flowseg-kronecker-reshaped+tau=0.5", "flowseg-kronecker-reshaped", "flowseg-kronecker-reshaped+tau=2.0"]
    assert expanded["experiments"]["flowseg-kronecker-reshaped+tau=2.0"]["model"]["tau"] == 2.0
    assert expanded["experiments"]["flowseg-kronecker-reshaped+tau=2.0"]["model"]["reshape"] is True  # the base's own


def test_named_variants_and_configs_filter(tmp_path):
    path = write(tmp_path, "obj", {"base": "flowseg-kronecker-reshaped", "feeds": "obj",
                                   "variants": {"v-pred": {"model.prediction": "v"}, "base": {}}, "configs": ["other"]})
    cfg = workflow()
    assert expand(cfg, [load_ablation(path)])[1] == []  # not for this config
    cfg["name"] = "other"
    _, rows = expand(cfg, [load_ablation(path)])
    assert [r["experiment"] for r in rows] == ["flowseg-kronecker-reshaped+obj=v_pred", "flowseg-kronecker-reshaped"]


@pytest.mark.parametrize("data,message", [
    ({"base": "a", "axis": "model.tau", "values": [1], "feeds": "t", "colour": 1}, "unknown key"),
    ({"base": "a", "axis": "model.tau", "values": [1], "variants": {}, "feeds": "t"}, "either 'axis'"),
    ({"base": "a", "axis": "model.tau", "values": [], "feeds": "t"}, "'values' must be a non-empty list"),
    ({"base": "a", "axis": "model.tau", "values": [1], "feeds": "Bad Name"}, "'feeds' must be a file-name stem"),
    ({"axis": "model.tau", "values": [1], "feeds": "t"}, "'base' must be"),
    ({"base": "a", "axis": "model.tau", "values": [1], "feeds": "t", "figure": "pie"}, "'figure' must be one of"),
])
def test_bad_files_name_the_file_and_key(tmp_path, data, message):
    path = write(tmp_path, "bad", data)
    with pytest.raises(ConfigError, match=message) as err:
        load_ablation(path)
    assert str(path) in str(err.value)


def test_unknown_base_or_option_is_named(tmp_path):
    path = write(tmp_path, "typo", {"base": "flowseg-reshaped", "axis": "model.tau", "values": [2.0], "feeds": "t"})
    with pytest.raises(ConfigError, match="typo.yaml: base 'flowseg-reshaped' is not an experiment"):
        expand(workflow(), [load_ablation(path)])
    path = write(tmp_path, "typo", {"base": "flowseg-kronecker-reshaped", "axis": "model.taw", "values": [2.0], "feeds": "t"})
    with pytest.raises(ConfigError, match="typo.yaml: variant '2.0'.*taw"):
        expand(workflow(), [load_ablation(path)])


def test_two_files_feeding_one_table_are_refused(tmp_path):
    for name in ("a", "b"):
        write(tmp_path, name, {"base": "x", "axis": "model.tau", "values": [1], "feeds": "same"})
    with pytest.raises(ConfigError, match="all feed 'same'"):
        load_ablations(tmp_path)


def test_shipped_ablations_join_the_ablations_overlay_not_the_default():
    """The default runs no ablation file (its 25-minute budget); `--config overlay=ablations` runs
    the conditioning ablation and GSS's prior ablation with only the runs they need."""
    from genseg.experiments import apply_overlay, select_experiments

    assert expand(workflow(), load_ablations(REPO / "ablations"))[1] == []
    config = apply_overlay({**workflow(), "overlay": "ablations"})
    config = select_experiments(config, config["only"])
    assert config["name"] == "default-ablations"
    assert set(config["experiments"]) == {"flowseg-kronecker-reshaped", "gss-ff", "vqvae-d4", "gss-ff-d8", "gss-ff-d8-noaux", "vqvae-d8"}
    expanded, rows = expand(config, load_ablations(REPO / "ablations"))
    assert {r["feeds"] for r in rows} == {"flowseg_conditioning"}  # the other FlowSeg ablations: workflow/config/flowseg-ablations.yaml
    base_rows = [r for r in rows if r["experiment"] == "flowseg-kronecker-reshaped"]
    assert {r["label"] for r in base_rows} == {"encoder tokens + pixel features, shifted grid"}
    runs = run_configs(expanded, "data")
    assert len(runs) == 7 + 5 and runs["gss-ff-d8-s0"].model.options["downsample"] == 8
    plain = run_configs(workflow(), "data")  # the shared runs are the default's own
    assert all(runs[r].to_dict() == plain[r].to_dict() for r in runs if r in plain)


def test_seeds_overlay_gives_the_headline_rows_three_seeds_and_no_ablation():
    """`--config overlay=seeds`: the seven headline rows with seeds 0-2, everything else with one,
    no ablation file (they join the config named `default`), results in default-seeds."""
    from genseg.experiments import apply_overlay

    config = apply_overlay({**workflow(), "overlay": "seeds"})
    assert config["name"] == "default-seeds"
    expanded, rows = expand(config, load_ablations(REPO / "ablations"))
    assert rows == []
    runs = run_configs(expanded, "data")
    three = {"deeplabv3plus-r18", "segformer-b0", "mask2former-swin", "flowseg-kronecker-vanilla", "flowseg-kronecker-reshaped",
             "gss-ff", "gss-ft"}
    for name in config["experiments"]:
        assert sorted(r for r in runs if r.rsplit("-s", 1)[0] == name) == [f"{name}-s{s}" for s in ([0, 1, 2] if name in three else [0])]
    plain = run_configs(workflow(), "data")  # seed 0 of every run is the default's own run
    assert all(runs[r].to_dict() == plain[r].to_dict() for r in plain)


def test_variants_of_a_multi_seed_base_run_with_the_config_seeds():
    """A base with its own three seeds: its variants run with the config's seeds (one), the base
    row keeps its three."""
    config = workflow()
    config["experiments"] = {"flowseg-kronecker-reshaped": {**config["experiments"]["flowseg-kronecker-reshaped"], "seeds": [0, 1, 2]}}
    ablation = Ablation(name="tau", description="", base="flowseg-kronecker-reshaped", variants={"2": {"model.tau": 2.0}},
                        feeds="tau", figure="none", configs=("default",))
    expanded, rows = expand(config, [ablation])
    runs = sorted(run_configs(expanded, "data"))
    assert runs == ["flowseg-kronecker-reshaped+tau=2-s0", "flowseg-kronecker-reshaped-s0",
                    "flowseg-kronecker-reshaped-s1", "flowseg-kronecker-reshaped-s2"]


def test_flowseg_ablations_config_keeps_the_default_base_run():
    """workflow/config/flowseg-ablations.yaml runs the ablations kept out of the default's budget on
    the default's data and run-config defaults, and on the default's FlowSeg run but for how the
    image enters, its neural field and its sampling temperature (its base is the design before
    grid_shift, sampled from x_0 ~ N(0, I), on which its results were measured)."""
    default, extra = (yaml.safe_load((REPO / "workflow/config" / f"{n}.yaml").read_text()) for n in ("default", "flowseg-ablations"))
    assert extra["dataset"] == default["dataset"] and extra["defaults"] == default["defaults"]
    assert extra["train_domains"] == default["train_domains"]
    base = "flowseg-kronecker-reshaped"
    ours, theirs = run_configs(extra, "data")[f"{base}-s0"], run_configs(default, "data")[f"{base}-s0"]
    assert (ours.data, ours.optim, ours.train) == (theirs.data, theirs.optim, theirs.train)
    conditioning = {"condition", "grid_shift", "field_overlap", "field_blocks", "pixel_features", "temperature"}
    differ = {k for k in ours.model.options.keys() | theirs.model.options.keys() if ours.model.options.get(k) != theirs.model.options.get(k)}
    assert differ and differ <= conditioning
    _, rows = expand(extra, load_ablations(REPO / "ablations"))
    assert {r["feeds"] for r in rows} == {"flowseg_distance", "flowseg_objective", "flowseg_encodings"}


def test_axes_are_a_product_with_structured_settings(tmp_path):
    path = write(tmp_path, "two", {"base": "flowseg-kronecker-reshaped", "feeds": "two",
                                   "axes": {"model.tau": [1.0, 2.0], "model.encoding": ["kronecker", "r3"]}})
    ablation = load_ablation(path)
    assert ablation.axes == ("model.tau", "model.encoding") and ablation.axis == ""
    expanded, rows = expand(workflow(), [ablation])
    assert [r["label"] for r in rows] == ["1.0 kronecker", "1.0 r3", "2.0 kronecker", "2.0 r3"]  # first axis slowest
    assert rows[0]["experiment"] == "flowseg-kronecker-reshaped"  # tau 1 and Kronecker: the base run
    assert rows[3]["experiment"] == "flowseg-kronecker-reshaped+two=2.0_r3"
    assert rows[3]["settings"] == {"model.tau": 2.0, "model.encoding": "r3"}
    assert expanded["experiments"]["flowseg-kronecker-reshaped+two=2.0_r3"]["model"]["encoding"] == "r3"
    single = load_ablation(write(tmp_path, "one", {"base": "b", "feeds": "one", "axis": "model.tau", "values": [1]}))
    assert single.axes == ("model.tau",)


@pytest.mark.parametrize("data,message", [
    ({"base": "a", "axes": {"model.tau": []}, "feeds": "t"}, "'values' must be a non-empty list for axis 'model.tau'"),
    ({"base": "a", "axes": [], "feeds": "t"}, "'axes' must map each dotted key"),
    ({"base": "a", "axes": {"model.tau": [1]}, "axis": "model.lam", "values": [1], "feeds": "t"}, "either 'axis'"),
])
def test_bad_axes_name_the_file_and_key(tmp_path, data, message):
    path = write(tmp_path, "bad", data)
    with pytest.raises(ConfigError, match=message) as err:
        load_ablation(path)
    assert str(path) in str(err.value)


def test_flowseg_spacing_config_runs_each_class_count_on_its_own_dataset():
    """workflow/config/flowseg-spacing.yaml: flowseg-ablations' data and base run at 150 iterations;
    data.num_classes 40 and 150 read data/synthetic-c40 and -c150 (genseg.experiments.synthetic_root)."""
    spacing, ablations = (yaml.safe_load((REPO / "workflow/config" / f"{n}.yaml").read_text()) for n in ("flowseg-spacing", "flowseg-ablations"))
    assert spacing["dataset"] == ablations["dataset"] and spacing["train_domains"] == ablations["train_domains"]
    base = "flowseg-kronecker-reshaped"
    assert spacing["experiments"][base]["model"] == ablations["experiments"][base]["model"]
    expanded, rows = expand(spacing, load_ablations(REPO / "ablations"))
    assert {r["feeds"] for r in rows} == {"flowseg_spacing"} and len(rows) == 12
    runs = run_configs(expanded, "/d/synthetic")
    assert len(runs) == 12 and runs[f"{base}-s0"].optim.iterations == 150
    roots = {(cfg.model.options["encoding"], cfg.data.num_classes): cfg.data.root for cfg in runs.values()}
    assert roots[("kronecker", 12)] == roots[("r3", 12)] == "/d/synthetic"
    assert roots[("grid", 40)] == "/d/synthetic-c40" and roots[("random", 150)] == "/d/synthetic-c150"
    default = yaml.safe_load((REPO / "workflow/config/default.yaml").read_text())
    assert all(cfg.data.root == "/d/synthetic" for cfg in run_configs(default, "/d/synthetic").values())
