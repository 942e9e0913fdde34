"""The Snakemake workflow: lint, planning with every profile, and one tiny end-to-end run."""

import importlib.util
import json
import os
import re
import subprocess
import sys

import pandas as pd
import pytest
import torch
import yaml
from conftest import REPO

pytestmark = pytest.mark.slow  # every test here runs Snakemake in a subprocess: the slow tier


def snakemake(*args, cwd=REPO, check=True, env=None):
    env = dict(env or os.environ, PATH=f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), *args]
    run = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if check and run.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    return run


def tiny_workflow_config(name="tiny"):
    cfg = yaml.safe_load((REPO / "workflow/config/default.yaml").read_text())
    cfg["name"] = name
    cfg["dataset"]["synthetic"] = {"seed": 0, "image_size": 64, "num_train": 16, "num_val": 8, "num_test": 8}
    cfg["evaluate"]["domains"] = ["clean", "shifted"]
    cfg["defaults"]["optim"].update(iterations=6, warmup_iters=2)
    cfg["defaults"]["train"].update(val_every=3, checkpoint_every=3, val_max_images=8, progress=False)
    keep = ("deeplabv3plus-r18", "flowseg-kronecker-vanilla", "flowseg-kronecker-reshaped",
            "vqvae-d4", "maskige-ff", "maskige-ft", "gss-ff", "gss-ft")  # GSS: its three stages, chained
    cfg["experiments"] = {name: cfg["experiments"][name] for name in keep}
    cfg["uncertainty"].update(experiments=[e for e in cfg["uncertainty"]["experiments"] if e in keep], k=2, max_images=4)
    for name in ("deeplabv3plus-r18", "flowseg-kronecker-reshaped"):  # two seeds: the pair FlowSeg - DeepLabV3+ over seeds
        cfg["experiments"][name]["seeds"] = [0, 1]
    for name in keep[1:]:
        optim = cfg["experiments"][name].get("optim", {})
        cfg["experiments"][name]["optim"] = {"iterations": 4 if optim.get("iterations", 1) else 0, "warmup_iters": 1}
    cfg["evaluate"]["sweeps"] = {"flowseg": {"steps": [1, 2]}}
    return cfg


def test_lint_is_clean():
    run = snakemake("--lint")
    assert "Congratulations" in run.stdout + run.stderr, run.stdout + run.stderr


def planned_jobs(run) -> str:
    return run.stdout + run.stderr


@pytest.mark.parametrize("profile", ["", "gpu", "slurm"])
def test_default_config_plans_with_each_profile(profile, tmp_path):
    """`snakemake -n` with each profile; with none (from the repository root), profiles/default is in
    effect: it prints the shell commands."""
    if profile == "slurm" and importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.skip("slurm extra not installed (pip install -e '.[slurm]')")
    run = snakemake("-n", *(["--profile", str(REPO / "profiles" / profile)] if profile else []), "--directory", str(tmp_path))
    text = planned_jobs(run)
    for rule in ("synthetic_data", "train", "evaluate", "uncertainty", "aggregate", "report"):
        assert rule in text, rule
    if not profile:
        assert "genseg generate-synthetic" in text


def test_default_config_plans_the_uncertainty_of_its_headline_seed_0_runs(tmp_path):
    """One uncertainty job per run of the `uncertainty` block, on the in-domain test domain, feeding aggregate."""
    text = planned_jobs(snakemake("-n", "--directory", str(tmp_path)))
    cfg = yaml.safe_load((REPO / "workflow/config/default.yaml").read_text())["uncertainty"]
    planned = set(re.findall(r"results/default/runs/([\w.+=-]+)/uncertainty/test/clean\.json", text))
    assert planned == {f"{e}-s0" for e in cfg["experiments"]}
    assert f"--k {cfg['k']} --max-images {cfg['max_images']} --seed {cfg['sample_seed']}" in text
    assert "--uncertainty-out results/default/uncertainty.csv" in text


def test_config_typo_fails_before_any_job(tmp_path):
    cfg = tiny_workflow_config()
    cfg["defaults"]["optim"]["lrr"] = 0.1
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg))
    run = snakemake("-n", "--configfile", str(tmp_path / "bad.yaml"), "--directory", str(tmp_path), check=False)
    assert run.returncode != 0
    assert "optim.lrr" in run.stdout + run.stderr and "did you mean 'lr'" in run.stdout + run.stderr
    cfg = tiny_workflow_config()
    cfg["sedes"] = [0]
    (tmp_path / "bad2.yaml").write_text(yaml.safe_dump(cfg))
    run = snakemake("-n", "--configfile", str(tmp_path / "bad2.yaml"), "--directory", str(tmp_path), check=False)
    assert run.returncode != 0 and "sedes" in run.stdout + run.stderr


def readme_examples() -> dict[str, str]:
    """The files of the README's worked ablation example: ``<!-- example: PATH -->`` + a fenced block."""
    text = (REPO / "README.md").read_text()
    return {m[1]: m[2] for m in re.finditer(r"<!-- example: (\S+) -->\n```\w*\n(.*?)```", text, re.S)}


def test_end_to_end_in_a_temporary_folder(tmp_path):
    """The tiny workflow, with the README's worked ablation example (a .yaml and a .smk) added."""
    examples = readme_examples()
    assert set(examples) == {"ablations/flowseg-tau.yaml", "ablations/flowseg-tau.smk"}
    for rel, body in examples.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(body)
    cfg = tiny_workflow_config(name="default")  # the example joins the default config
    cfg["ablations_dir"] = str(tmp_path / "ablations")
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    plan = planned_jobs(snakemake("-n", "--configfile", str(tmp_path / "tiny.yaml"), "--directory", str(tmp_path)))
    assert "flowseg-kronecker-reshaped+flowseg-tau=0.5-s0" in plan and "flowseg-tau=1.0" not in plan
    snakemake("--cores", "2", "--configfile", str(tmp_path / "tiny.yaml"), "--directory", str(tmp_path))
    out = tmp_path / "results" / "default"
    tau = pd.read_csv(out / "report" / "flowseg_tau.csv")
    assert tau.tau.tolist() == [0.5, 1.0, 2.0] and tau.miou.between(0, 1).all()
    assert "| 2.0 |" in (out / "report" / "flowseg_tau.md").read_text()
    assert (out / "report" / "flowseg_tau.png").stat().st_size > 1000
    paired = pd.read_csv(out / "paired.csv")
    assert {"flowseg-kronecker-reshaped", "gss-ft"} <= set(paired.a) and paired.p_value.between(0, 1).all()
    assert "flowseg-kronecker-reshaped − flowseg-kronecker-vanilla" in (out / "report" / "paired_tests.md").read_text()
    pooled = paired[(paired.a == "flowseg-kronecker-reshaped") & (paired.b == "deeplabv3plus-r18")]
    assert sorted(pooled.seed.astype(str)) == ["0", "0", "1", "1", "all", "all"] and set(pooled.n_seeds) == {1, 2}
    assert "| flowseg-kronecker-reshaped − deeplabv3plus-r18 | all (2) |" in (out / "report" / "paired_tests.md").read_text()
    assert "FlowSeg (flowseg-kronecker-reshaped)" in (out / "report" / "main_results.md").read_text()
    for name in ("qualitative", "latency", "vector_field", "flowseg_convergence", "uncertainty"):
        assert (out / "report" / f"{name}.png").stat().st_size > 5000, name
    uncertainty = pd.read_csv(out / "uncertainty.csv")  # the tiny config's uncertainty runs: DeepLabV3+, FlowSeg, GSS-FF
    assert set(uncertainty.run_id) == {"deeplabv3plus-r18-s0", "flowseg-kronecker-vanilla-s0", "flowseg-kronecker-reshaped-s0", "gss-ff-s0"}
    assert uncertainty[uncertainty.metric.isin(["miou", "auroc", "ece"])].value.dropna().between(0, 1).all()
    assert "| FlowSeg (flowseg-kronecker-reshaped) | clean | 2 samples (votes) |" in (out / "report" / "uncertainty.md").read_text()
    frame = pd.read_csv(out / "metrics.csv")
    miou = frame[frame.metric == "miou"]
    assert set(miou.domain) == {"clean", "shifted"} and miou.value.between(0, 1).all()
    assert miou[miou.domain == "clean"].in_domain.all()
    # each run's provenance: one config hash per run, trained and evaluated from the same commit
    assert (miou.groupby("run_id").config_hash.nunique() == 1).all() and (miou.commit == miou.train_commit).all()
    table = (out / "report" / "miou_by_domain.md").read_text()
    assert "deeplabv3plus-r18" in table and "flowseg-kronecker-reshaped" in table and "clean (in-domain)" in table
    assert "\\begin{tabular}" in (out / "report" / "miou_by_domain.tex").read_text()
    cross = (out / "report" / "cross_domain.md").read_text()  # GSS Table 6 layout
    assert "| Method | Trained on | Budget (iterations x batch) | shifted | h.mean | in-domain |" in cross
    assert "| gss-ft | clean | " in cross
    steps = (out / "report" / "flowseg_steps.md").read_text()
    assert "kronecker, reshaped" in steps and "kronecker, vanilla" in steps and "2 steps" in steps
    sweep = frame[(frame.metric == "miou") & (frame.variant == "steps=2")]
    assert len(sweep) == 2 and (sweep.nfe == 2).all()
    gss = (out / "report" / "gss_reconstruction.md").read_text()
    assert "| FF (vqvae, d = 1/4)" in gss and "| FT (vqvae" in gss
    assert "d = 1/4, auxiliary head" in (out / "report" / "gss_prior.md").read_text()
    assert "gss-ft" in table and "maskige-ff" not in table  # upper bounds are not methods
    curves = pd.read_csv(out / "curves.csv")
    assert {"deeplabv3plus-r18", "flowseg-kronecker-reshaped", "vqvae-d4", "gss-ft"} <= set(curves.experiment)
    for name in ("miou_by_domain", "flowseg_steps", "convergence"):
        for ext in ("png", "pdf"):
            assert (out / "report" / f"{name}.{ext}").stat().st_size > 1000
    # Everything is up to date afterwards: a second call plans nothing.
    again = snakemake("-n", "--configfile", str(tmp_path / "tiny.yaml"), "--directory", str(tmp_path))
    assert "Nothing to be done" in again.stdout + again.stderr
    # Snakemake's HTML report carries the figures and tables with their captions.
    snakemake("--report", str(tmp_path / "report.html"), "--configfile", str(tmp_path / "tiny.yaml"), "--directory", str(tmp_path))
    html = (tmp_path / "report.html").read_text(errors="replace")
    assert "qualitative.png" in html and "cross_domain.md" in html
    # Editing one experiment's config reruns that run (its config is a param of run_config), from step 0.
    cfg["experiments"]["deeplabv3plus-r18"].setdefault("optim", {})["lr"] = 5e-3
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    plan = planned_jobs(snakemake("-n", "--configfile", str(tmp_path / "tiny.yaml"), "--directory", str(tmp_path)))
    assert "genseg train results/default/runs/deeplabv3plus-r18-s0/config.yaml" in plan
    assert "genseg train results/default/runs/flowseg-kronecker-reshaped-s0/config.yaml" not in plan
    model = "results/default/runs/deeplabv3plus-r18-s0/model.safetensors"
    snakemake("--cores", "2", model, "--configfile", str(tmp_path / "tiny.yaml"), "--directory", str(tmp_path))
    record = json.loads((out / "runs" / "deeplabv3plus-r18-s0" / "train_metrics.json").read_text())
    written = yaml.safe_load((out / "runs" / "deeplabv3plus-r18-s0" / "config.yaml").read_text())
    assert record["resumed_from"] == 0 and written["optim"]["lr"] == 5e-3


def test_data_roots_reach_the_shell_quoted(tmp_path):
    """A root with a space and a command substitution is a folder name, not a command."""
    cfg = tiny_workflow_config()
    root = tmp_path / "my data $(touch pwned)"
    cfg["dataset"]["root"] = str(root)
    cfg["dataset"]["synthetic"].update(num_train=2, num_val=1, num_test=1)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    snakemake("--cores", "1", str(root / "meta.json"), "--configfile", str(tmp_path / "tiny.yaml"), "--directory", str(tmp_path))
    assert (root / "meta.json").exists()
    assert not (tmp_path / "pwned").exists() and not (REPO / "pwned").exists()


def test_snakefiles_are_snakefmt_clean():
    files = [str(REPO / "Snakefile"), *map(str, sorted((REPO / "workflow/rules").glob("*.smk")))]
    run = subprocess.run([sys.executable, "-m", "snakefmt", "--check", *files], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


PAPER_CONFIGS = sorted((REPO / "workflow/config").glob("paper-*.yaml"))


@pytest.mark.parametrize("name", ["paper-gss-ade20k", "paper-gss-mseg"])
def test_smoke_overlay_plans_into_its_own_results_folder(tmp_path, name):
    path = REPO / f"workflow/config/{name}.yaml"
    text = planned_jobs(snakemake("-n", "--configfile", str(path), "--config", "overlay=smoke", "--directory", str(tmp_path)))
    assert f"results/{name}-smoke/runs/gss-ft-w-swin-l-s0/model.safetensors" in text
    assert f"results/{name}/" not in text


@pytest.mark.parametrize("name,expected", [("camvid", "gss-ff-s0"), ("road", "flowseg-kronecker-reshaped-s0"),
                                           ("camvid-transfer", "deeplabv3plus-r18-road-s0/eval/val/index.json")])
def test_real_data_configs_plan(tmp_path, name, expected):
    """The CamVid config and the road-taxonomy cross-dataset config validate and plan (data is read at run time)."""
    run = snakemake("-n", "--configfile", str(REPO / f"workflow/config/{name}.yaml"), "--directory", str(tmp_path))
    text = planned_jobs(run)
    assert expected in text and "synthetic_data" not in text


def test_figures_target_rebuilds_every_table_and_figure_from_committed_results(tmp_path):
    """`snakemake figures` on a fresh clone: no training, no data, only results/reference/default."""
    plan = planned_jobs(snakemake("-n", "figures", "--directory", str(tmp_path)))
    assert "figures" in plan and not re.search(r"\b(train|evaluate|synthetic_data|aggregate)\b", plan.split("Job stats")[-1])
    snakemake("--cores", "1", "figures", "--directory", str(tmp_path))
    out = tmp_path / "results" / "figures"
    for name in ("main_results.md", "cross_domain.tex", "flowseg_steps.md", "convergence.md", "uncertainty.md",
                 "gss_reconstruction.md", "gss_prior.md", "paired_tests.md", "flowseg_repa.md"):
        assert (out / name).stat().st_size > 100, name
    for name in ("flowseg_steps", "flowseg_convergence", "convergence", "uncertainty", "vector_field", "qualitative", "latency",
                 "miou_by_domain"):
        assert (out / f"{name}.png").stat().st_size > 5000 and (out / f"{name}.pdf").exists(), name
    assert not (out / "flowseg_conditioning.md").exists()  # the ablation files join overlays, not the default
    assert "reported" in (out / "main_results.md").read_text()
    assert (out / "benchmark.tsv").exists()  # the rule's wall time and memory (snakemake benchmark)


def planned_job_resources(text: str) -> list[dict]:
    """The jobs of a dry run (``snakemake -n``): rule, wildcards and resources (name -> value as
    printed; integers as int) of every job block."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:\n)", text):
        head = re.match(r"(?:local)?rule (\w+):\n", block)
        if not head:
            continue
        fields = dict(re.findall(r"^    (wildcards|resources): (.*)$", block, re.M))
        parse = lambda line: {k: int(v) if v.lstrip("-").isdigit() else v for k, v in (i.split("=", 1) for i in line.split(", ") if "=" in i)}
        jobs.append({"rule": head[1], "wildcards": parse(fields.get("wildcards", "")), "resources": parse(fields.get("resources", ""))})
    return jobs


TRAIN_RULES = ("train", "posterior_learning", "inverse_stage")  # GSS's stages are the train rule under other names
RESOURCE_KEYS = ("train_threads", "train_mem_mb", "train_runtime_min", "eval_threads", "eval_mem_mb", "eval_runtime_min",
                 "eval_sweep_runtime_min", "gpus_per_job")


@pytest.mark.parametrize("path", PAPER_CONFIGS, ids=lambda p: p.stem)
def test_paper_config_plans_every_row_with_its_slurm_resources(tmp_path, path):
    """Every paper config plans each experiment (training and val evaluation) without data or
    weights, and under `snakemake -n --profile profiles/slurm` every train job asks for the
    config's train_threads (cpus_per_task: SLURM --cpus-per-task), train_mem_mb (--mem),
    train_runtime_min (-t) and gpus_per_job (--gpus); every evaluate job for eval_threads, eval_mem_mb
    and eval_runtime_min, or eval_sweep_runtime_min when its method has a sweep (FlowSeg's steps).
    The profile sets none of them for these rules. No datasets and no weights (as on this machine):
    the pre-flight message names what is missing, once. (One dry run per config serves all three.)"""
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.skip("slurm extra not installed (pip install -e '.[slurm]')")
    env = {k: v for k, v in os.environ.items() if k != "GENSEG_DATA"} | {"GENSEG_WEIGHTS": str(tmp_path / "weights")}
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    assert not {"train", "evaluate"} & set(profile.get("set-resources", {}) | profile.get("set-threads", {}))
    config = yaml.safe_load(path.read_text())
    res = config["resources"]
    assert set(res) == set(RESOURCE_KEYS), "a paper config sizes every job resource"  # no silent defaults
    swept = {m for m in config["evaluate"].get("sweeps", {})}
    run = snakemake("-n", "--profile", str(REPO / "profiles/slurm"), "--configfile", str(path), "--directory", str(tmp_path), env=env)
    text = planned_jobs(run)
    assert run.stderr.count(f"genseg pre-flight, config '{config['name']}'") == 1 and "dataset " in run.stderr
    for experiment in config["experiments"]:
        assert f"results/{config['name']}/runs/{experiment}-s0/eval/val/index.json" in text, experiment
    assert "synthetic_data" not in text and f"results/{config['name']}/report/main_results.md" in text
    jobs = planned_job_resources(text)
    trains = [j for j in jobs if j["rule"] in TRAIN_RULES]
    evals = [j for j in jobs if j["rule"] == "evaluate"]
    assert len(trains) == len(evals) == len(config["experiments"]) * len(config["seeds"])
    for job in trains:
        assert {k: job["resources"].get(k) for k in ("cpus_per_task", "mem_mb", "runtime", "gpu")} == {
            "cpus_per_task": res["train_threads"], "mem_mb": res["train_mem_mb"], "runtime": res["train_runtime_min"],
            "gpu": res["gpus_per_job"]}, job
    for job in evals:
        experiment = job["wildcards"]["run"].rsplit("-s", 1)[0]
        sweep = config["experiments"][experiment]["model"]["method"] in swept
        assert {k: job["resources"].get(k) for k in ("cpus_per_task", "mem_mb", "runtime", "gpu")} == {
            "cpus_per_task": res["eval_threads"], "mem_mb": res["eval_mem_mb"],
            "runtime": res["eval_sweep_runtime_min" if sweep else "eval_runtime_min"], "gpu": res["gpus_per_job"]}, job
    if swept:
        assert any(config["experiments"][j["wildcards"]["run"].rsplit("-s", 1)[0]]["model"]["method"] in swept for j in evals)


def test_resources_missing_new_keys_take_the_schema_defaults_and_a_bad_value_is_named(tmp_path):
    """A config with only the original resource keys still plans: evaluate jobs get eval_threads 1 and
    eval_runtime_min 30 (the schema's defaults; no sweep runtime: eval_runtime_min); a bad value names its key."""
    cfg = tiny_workflow_config()
    cfg["resources"] = {"train_threads": 2, "train_mem_mb": 3000, "train_runtime_min": 45, "eval_mem_mb": 1500, "gpus_per_job": 0}
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(cfg))
    jobs = planned_job_resources(planned_jobs(snakemake("-n", "--configfile", str(tmp_path / "old.yaml"), "--directory", str(tmp_path))))
    evals = [j["resources"] for j in jobs if j["rule"] == "evaluate"]
    trains = [j["resources"] for j in jobs if j["rule"] in TRAIN_RULES]
    assert evals and all((r["cpus_per_task"], r["mem_mb"], r["runtime"], r["gpu"]) == (1, 1500, 30, 0) for r in evals)
    assert trains and all((r["cpus_per_task"], r["mem_mb"], r["runtime"]) == (2, 3000, 45) for r in trains)
    cfg["resources"]["eval_runtime_min"] = 0
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg))
    run = snakemake("-n", "--configfile", str(tmp_path / "bad.yaml"), "--directory", str(tmp_path), check=False)
    assert run.returncode != 0 and "eval_runtime_min" in run.stdout + run.stderr


def test_killed_snakemake_reruns_to_the_uninterrupted_weights(tmp_path):
    """SIGKILL to the whole snakemake process group mid-training; a plain rerun (the default profile:
    rerun-incomplete; the stale Snakemake locks removed) resumes the run from its checkpoint and ends
    on the weights of the same run config trained without interruption."""
    import signal
    import time

    from safetensors.torch import load_file

    cfg = tiny_workflow_config(name="killed")
    cfg["only"] = ["deeplabv3plus-r18"]
    cfg["defaults"]["optim"].update(iterations=10)
    cfg["defaults"]["train"].update(checkpoint_every=1, val_every=5)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    run = tmp_path / "results" / "killed" / "runs" / "deeplabv3plus-r18-s0"
    target = str(run.relative_to(tmp_path) / "model.safetensors")
    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--cores", "1", target,
           "--configfile", str(tmp_path / "tiny.yaml"), "--directory", str(tmp_path)]
    job = subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt, deadline = run / "checkpoint.json", time.time() + 600
    while job.poll() is None and time.time() < deadline and not (ckpt.exists() and json.loads(ckpt.read_text())["step"] >= 3):
        time.sleep(0.01)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    assert not (run / "model.safetensors").exists(), "the kill came too late"
    snakemake("--cores", "1", target, "--configfile", str(tmp_path / "tiny.yaml"), "--directory", str(tmp_path))
    assert json.loads((run / "train_metrics.json").read_text())["resumed_from"] >= 3
    # the same run config trained straight, as the workflow's job runs it (OMP_NUM_THREADS=train_threads)
    straight = tmp_path / "straight"
    straight.mkdir()
    (straight / "config.yaml").write_bytes((run / "config.yaml").read_bytes())
    subprocess.run([sys.executable, "-m", "genseg", "train", str(straight / "config.yaml")], check=True, capture_output=True,
                   env=dict(env, OMP_NUM_THREADS=str(cfg["resources"]["train_threads"])))
    a, b = load_file(str(run / "model.safetensors")), load_file(str(tmp_path / "straight" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
def cross_domain_config(tmp_path):
    """Both cross-domain protocols in one workflow run on fixtures in the real layouts: train on a
    CamVid fixture, test on its test split and on an IDD-Lite fixture's val split (IDD-Lite has
    train and val only), each domain on its own split; IDD-Lite found as $GENSEG_DATA/idd20k_lite."""
    from genseg.data.fixtures import write_fixture

    data = tmp_path / "data"
    write_fixture("camvid", data / "camvid", num_train=4, num_val=2, num_test=2, size=(32, 48))
    write_fixture("idd_lite", data, num_train=2, num_val=2, size=(40, 56), seed=1)  # data/idd20k_lite/...
    cfg = tiny_workflow_config(name="xdomain")
    cfg["dataset"] = {"name": "camvid", "root": str(data / "camvid")}
    cfg["train_domains"] = ["camvid"]
    cfg["evaluate"] = {"split": "test", "domains": ["camvid", {"name": "idd_lite", "split": "val", "scale": 0.75}]}
    cfg["defaults"]["data"].update(crop_size=32, batch_size=2)
    cfg["defaults"]["optim"].update(iterations=2, warmup_iters=1)
    cfg["defaults"]["train"].update(val_every=2, checkpoint_every=2, val_max_images=2)
    cfg["defaults"].setdefault("eval", {})["scale"] = 0.5  # idd_lite: its own 0.75
    dlv3 = {k: v for k, v in cfg["experiments"]["deeplabv3plus-r18"].items() if k != "seeds"}
    cfg["experiments"] = {
        "dlv3-transfer": dlv3,  # protocol (b): CamVid's own 11 classes, mapped onto IDD-Lite's 7
        "dlv3-universal": {**dlv3, "data": {"dataset": "road", "root": str(data)}},  # protocol (a): the road taxonomy
    }
    cfg["evaluate"].pop("sweeps", None)
    cfg["uncertainty"]["experiments"] = ["dlv3-transfer"]  # the tiny block names the default's experiments
    return cfg


def test_cross_domain_protocols_on_camvid_and_idd_lite_fixtures(tmp_path, monkeypatch):
    monkeypatch.setenv("GENSEG_DATA", str(tmp_path / "data"))
    (tmp_path / "xdomain.yaml").write_text(yaml.safe_dump(cross_domain_config(tmp_path)))
    snakemake("--cores", "2", "--configfile", str(tmp_path / "xdomain.yaml"), "--directory", str(tmp_path))
    out = tmp_path / "results" / "xdomain"
    for run in ("dlv3-transfer-s0", "dlv3-universal-s0"):  # one evaluation job per split
        assert (out / "runs" / run / "eval" / "test" / "camvid" / "default.json").exists()
        assert (out / "runs" / run / "eval" / "val" / "idd_lite" / "default.json").exists()
        assert not (out / "runs" / run / "eval" / "test" / "idd_lite").exists()
    record = json.loads((out / "runs" / "dlv3-transfer-s0" / "eval" / "val" / "idd_lite" / "default.json").read_text())
    assert record["classes"][0] == "drivable" and len(record["scores"]["iou"]) == 7 and record["eval_scale"] == 0.75
    assert record["unreachable_classes"] == [] and record["num_images"] == 2
    in_domain = json.loads((out / "runs" / "dlv3-universal-s0" / "eval" / "test" / "camvid" / "default.json").read_text())
    assert len(in_domain["scores"]["iou"]) == 11 and in_domain["eval_scale"] == 0.5  # CamVid's classes, the run's scale
    ignored = json.loads((out / "runs" / "dlv3-universal-s0" / "ignored_pixels.json").read_text())
    assert ignored["datasets"][0]["dataset"] == "camvid" and ignored["datasets"][0]["fraction"] == 0.0
    frame = pd.read_csv(out / "metrics.csv")
    miou = frame[frame.metric == "miou"]
    assert set(zip(miou.domain, miou.split)) == {("camvid", "test"), ("idd_lite", "val")}
    assert set(miou.dataset) == {"camvid", "road"} and miou.value.between(0, 1).all()
    report = out / "report"
    cross = (report / "cross_domain.md").read_text()
    assert "| Method | Trained on | Budget (iterations x batch) | idd_lite (val) | h.mean | in-domain (camvid test) |" in cross
    assert "Splits (each domain's own): camvid: test, idd_lite: val." in cross
    assert "idd_lite from camvid: 0 of 7; idd_lite from road: 0 of 7" in cross
    for run in ("dlv3-transfer", "dlv3-universal"):
        row = next(line for line in cross.splitlines() if line.startswith(f"| {run} |"))
        assert "–" not in row.split("|")[4:7], row  # filled: target, h.mean, in-domain
    main = (report / "main_results.md").read_text()
    assert "camvid: test, idd_lite: val" in main and "DeepLabV3+ (dlv3-universal)" in main
    assert all("–" != line.split("|")[6].strip() for line in main.splitlines() if "(dlv3-" in line)
    by_domain = (report / "miou_by_domain.md").read_text()
    assert "camvid (in-domain, test)" in by_domain and "idd_lite (val)" in by_domain
    assert (report / "miou_by_domain.png").stat().st_size > 1000


def test_spacing_config_plans_three_datasets_and_twelve_runs(tmp_path):
    """workflow/config/flowseg-spacing.yaml: 4 encodings x 3 class counts, each count its own synthetic
    dataset (data/synthetic, data/synthetic-c40, -c150), and the spacing table and figure."""
    text = planned_jobs(snakemake("-n", "--configfile", str(REPO / "workflow/config/flowseg-spacing.yaml"),
                                  "--directory", str(tmp_path)))
    stats = text.split("Job stats")[-1]
    for rule, count in (("synthetic_data", 1), ("synthetic_data_classes", 2), ("train", 12), ("evaluate", 12)):
        assert re.search(rf"^{rule}\s+{count}$", stats, re.M), (rule, stats)
    for path in ("data/synthetic-c40/meta.json", "data/synthetic-c150/meta.json", "--num-classes 150",
                 "results/flowseg-spacing/report/flowseg_spacing.png", "results/flowseg-spacing/report/flowseg_spacing.md",
                 "flowseg-kronecker-reshaped+flowseg-spacing=r3_150-s0"):
        assert path in text, path
