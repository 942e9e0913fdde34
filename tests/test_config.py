import pytest

from genseg.config import ConfigError, RunConfig, load_run_config
from genseg.experiments import run_configs, training_stage, upstream_files


def test_typo_names_key_and_allowed_keys():
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict({"optim": {"lrr": 0.1}})
    msg = str(err.value)
    assert "optim.lrr" in msg and "did you mean 'lr'" in msg and "weight_decay" in msg


def test_top_level_typo_and_wrong_type():
    with pytest.raises(ConfigError, match="unknown key 'sed'"):
        RunConfig.from_dict({"sed": 1})
    with pytest.raises(ConfigError, match="optim.iterations: expected an integer"):
        RunConfig.from_dict({"optim": {"iterations": "many"}})
    with pytest.raises(ConfigError, match="data.batch_size must be > 0"):
        RunConfig.from_dict({"data": {"batch_size": 0}})


def test_method_and_its_options_are_checked():
    with pytest.raises(ConfigError, match="unknown model.method 'unet3000'; known methods: deeplabv3plus"):
        RunConfig.from_dict({"model": {"method": "unet3000"}})
    with pytest.raises(ConfigError, match="model.encodr.*did you mean 'encoder'"):
        RunConfig.from_dict({"model": {"method": "deeplabv3plus", "encodr": "tu-resnet18"}})


def test_round_trip_and_hash(tmp_path):
    cfg = RunConfig.from_dict({"model": {"method": "deeplabv3plus", "encoder": "tu-resnet34"}, "optim": {"lr": "2e-4"}})
    path = tmp_path / "c.yaml"
    import yaml

    path.write_text(yaml.safe_dump(cfg.to_dict()))
    again = load_run_config(path)
    assert again == cfg and again.hash() == cfg.hash() and again.optim.lr == 2e-4
    assert RunConfig.from_dict({"seed": 1}).hash() != RunConfig.from_dict({"seed": 2}).hash()


def test_config_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {val_evry: 3}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown key 'train.val_evry'"):
        load_run_config(bad)
    with pytest.raises(ConfigError, match="config file not found"):
        load_run_config(tmp_path / "missing.yaml")


def test_workflow_expansion(tmp_path):
    workflow = {
        "dataset": {"name": "synthetic"},
        "seeds": [0, 1],
        "train_domains": ["clean"],
        "defaults": {"optim": {"iterations": 7}},
        "experiments": {"a": {"model": {"method": "deeplabv3plus"}}, "b": {"optim": {"lr": 0.5}}},
    }
    runs = run_configs(workflow, tmp_path)
    assert sorted(runs) == ["a-s0", "a-s1", "b-s0", "b-s1"]
    assert runs["b-s1"].seed == 1 and runs["b-s1"].optim.lr == 0.5 and runs["b-s1"].optim.iterations == 7
    assert runs["a-s0"].data.root == str(tmp_path)
    workflow["experiments"]["c"] = {"optim": {"iters": 3}}
    with pytest.raises(ConfigError, match="experiment 'c': unknown key 'optim.iters'"):
        run_configs(workflow, tmp_path)


def test_runs_name_other_runs_files_and_get_their_stage(tmp_path):
    """``{runs}``/``{seed}`` placeholders, the upstream files they make, and the training stage."""
    runs_dir = tmp_path / "runs"
    posterior = "{runs}/vq-s{seed}/model.safetensors"
    workflow = {
        "dataset": {"name": "synthetic"},
        "seeds": [3],
        "train_domains": ["clean"],
        "experiments": {
            "vq": {"model": {"method": "vqvae"}},
            "rec": {"model": {"method": "maskige", "posterior_file": posterior}, "optim": {"iterations": 0}},
            "ft": {"model": {"method": "maskige", "posterior_file": posterior, "inverse": "ft-w"}},
            "prior": {"model": {"method": "gss", "posterior_file": posterior}},
            "gssft": {"model": {"method": "gss", "posterior_file": posterior, "stage": "inverse", "inverse": "ft",
                                "init_file": "{runs}/prior-s{seed}/model.safetensors"}},
            "dl": {"model": {"method": "deeplabv3plus"}},
        },
    }
    runs = run_configs(workflow, tmp_path, runs_dir)
    assert runs["rec-s3"].model.options["posterior_file"] == f"{runs_dir}/vq-s3/model.safetensors"
    assert upstream_files(runs["gssft-s3"], runs_dir) == [f"{runs_dir}/prior-s3/model.safetensors", f"{runs_dir}/vq-s3/model.safetensors"]
    assert upstream_files(runs["dl-s3"], runs_dir) == []
    stages = {run: training_stage(cfg) for run, cfg in runs.items()}
    assert stages == {"vq-s3": "posterior_learning", "rec-s3": "train", "ft-s3": "inverse_stage", "prior-s3": "train",
                      "gssft-s3": "inverse_stage", "dl-s3": "train"}


def test_only_keeps_the_named_experiments_what_they_start_from_and_their_pairs():
    from genseg.experiments import select_experiments

    workflow = {
        "experiments": {
            "a": {"model": {"method": "deeplabv3plus"}},
            "post": {"model": {"method": "vqvae"}},
            "prior": {"model": {"method": "gss", "posterior_file": "{runs}/post-s{seed}/model.safetensors"}},
            "b": {"model": {"method": "segformer"}},
        },
        "compare": [["prior", "a"], ["b", "a"]],
    }
    out = select_experiments(workflow, ["prior", "a"])
    assert list(out["experiments"]) == ["a", "post", "prior"] and out["compare"] == [["prior", "a"]]
    assert list(workflow["experiments"]) == ["a", "post", "prior", "b"]  # the input is left as it was
    with pytest.raises(ConfigError, match="only: unknown experiment.*c; the config has a, post, prior, b"):
        select_experiments(workflow, ["c"])


def test_experiments_own_seeds_and_runs_they_start_from(tmp_path):
    """An experiment's own ``seeds`` override the config's; a run may start only from a run the
    config trains (``{runs}/<experiment>-s0`` names a fixed seed)."""
    workflow = {
        "dataset": {"name": "synthetic"},
        "seeds": [0],
        "train_domains": ["clean"],
        "experiments": {
            "post": {"model": {"method": "vqvae"}},
            "prior": {"seeds": [0, 1, 2], "model": {"method": "gss", "posterior_file": "{runs}/post-s0/model.safetensors"}},
            "ft": {"seeds": [0, 1], "model": {"method": "gss", "posterior_file": "{runs}/post-s0/model.safetensors",
                                              "stage": "inverse", "inverse": "ft", "init_file": "{runs}/prior-s{seed}/model.safetensors"}},
        },
    }
    runs = run_configs(workflow, tmp_path, tmp_path / "runs")
    assert sorted(runs) == ["ft-s0", "ft-s1", "post-s0", "prior-s0", "prior-s1", "prior-s2"]
    assert upstream_files(runs["prior-s2"], tmp_path / "runs") == [f"{tmp_path}/runs/post-s0/model.safetensors"]
    workflow["experiments"]["ft"]["seeds"] = [3]
    with pytest.raises(ConfigError, match="experiment 'ft' \\(run ft-s3\\) starts from run prior-s3, which this config does not train \\(prior: seeds \\[0, 1, 2\\]\\)"):
        run_configs(workflow, tmp_path, tmp_path / "runs")
    for bad in ([], [1, 1], [-1], "0"):
        workflow["experiments"]["ft"]["seeds"] = bad
        with pytest.raises(ConfigError, match="experiments.ft.seeds must be a non-empty list of distinct integers"):
            run_configs(workflow, tmp_path)
    from genseg.experiments import select_experiments

    assert list(select_experiments(workflow, ["prior"])["experiments"]) == ["post", "prior"]


def test_sweeps_only_on_sweep_seeds(tmp_path):
    from genseg.experiments import eval_plan

    workflow = {"dataset": {"name": "synthetic"}, "seeds": [0, 1], "train_domains": ["clean"],
                "experiments": {"f": {"model": {"method": "flowseg"}}}}
    runs = run_configs(workflow, tmp_path)
    evaluate = {"split": "test", "domains": ["clean", "shifted"], "sweeps": {"flowseg": {"steps": [1, 2]}}}
    assert eval_plan(evaluate, runs["f-s1"]) == [("clean", {}), ("shifted", {}), ("clean", {"steps": 1}), ("clean", {"steps": 2})]
    evaluate["sweep_seeds"] = [0]
    assert len(eval_plan(evaluate, runs["f-s0"])) == 4
    assert eval_plan(evaluate, runs["f-s1"]) == [("clean", {}), ("shifted", {})]
