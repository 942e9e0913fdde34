# Run ids, wildcard constraints and helpers that expand the experiment matrix.
import json
import os
import re
import sys
from dataclasses import asdict
from pathlib import Path

from genseg.ablations import expand, load_ablations
from genseg.experiments import (
    apply_overlay,
    domain_splits,
    eval_plan,
    run_configs,
    SYNTHETIC_CLASSES,
    select_experiments,
    synthetic_root,
    training_stage,
    uncertainty_config,
    uncertainty_jobs,
    upstream_files,
)
from genseg.io import clear_stale_snakemake_locks, write_json, write_text, write_yaml
from genseg.preflight import check as preflight_check, message as preflight_message
from genseg.report.families import report_files
from snakemake.exceptions import WorkflowError

# A named overlay (`--config overlay=smoke`) merged over the config; its results: results/<name>-<overlay>.
_overlaid = dict(apply_overlay(config))
config.clear()
config.update(_overlaid)
validate(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")

RESULTS = f"results/{config['name']}"
# The synthetic dataset is generated under data/ (or the given root); a real dataset is read
# in place from its root (a relative root is taken from the repository, never the cwd), or
# from $GENSEG_DATA/<name> when the root is empty.
SYNTHETIC = config["dataset"]["name"] == "synthetic"
DATA_ROOT = config["dataset"].get("root") or ("data/synthetic" if SYNTHETIC else "")
for member, member_root in config["dataset"].get("roots", {}).items():
    config["dataset"]["roots"][member] = str(Path(workflow.basedir, member_root))
# `only`: a subset of the experiments (and the runs they start from), e.g. for a rerun of one row.
if config.get("only"):
    config.update(select_experiments(config, config["only"]))
# Ablation files add experiments (ablations/<name>.yaml; genseg.ablations explains them).
ABLATIONS_DIR = Path(workflow.basedir, config.get("ablations_dir", "ablations"))
ABLATIONS = [
    a
    for a in load_ablations(ABLATIONS_DIR)
    if a.base in config["experiments"] or not config.get("only")
]
EXPANDED, ABLATION_ROWS = expand(config, ABLATIONS)
ABLATION_EXPERIMENTS = set(EXPANDED["experiments"]) - set(config["experiments"])
# Run configs are resolved and checked now, so a typo fails before any job starts.
RUNS_DIR = Path(f"{RESULTS}/runs").resolve()
RUNS = run_configs(
    EXPANDED,
    (
        str(
            Path(DATA_ROOT).resolve()
            if SYNTHETIC
            else Path(workflow.basedir, DATA_ROOT)
        )
        if DATA_ROOT
        else ""
    ),
    RUNS_DIR,
)
# Each test domain is evaluated on its own split (evaluate.domains entries {name, split, scale};
# a plain name: evaluate.split): one evaluation job per run and split.
DOMAIN_SPLITS = domain_splits(config["evaluate"])
EVAL_SPLITS = sorted(set(DOMAIN_SPLITS.values()))
# Uncertainty (genseg uncertainty): the `uncertainty` block's runs on their in-domain test domains.
UNCERTAINTY = uncertainty_config(config)
UNCERTAINTY_JOBS = uncertainty_jobs(config, RUNS)
# What train and evaluate jobs ask the scheduler for (schema `resources`; validate filled the
# defaults of absent keys). The slurm profile sets none of these for train/evaluate: the config
# decides (the gpu profile still sets gpu 1 and 8 train threads).
RESOURCES = config["resources"]
# Pre-flight (genseg/preflight.py): every missing dataset root or pretrained file, in one message
# now; a real run stops in onstart, before any job (a dry run only warns; so does preflight: warn).
PREFLIGHT = preflight_check(EXPANDED, RUNS, RUNS_DIR)
# Printed once, by the main process, not again by each job process that re-reads the Snakefile.
MAIN_PROCESS = not (workflow.remote_exec or workflow.subprocess_exec)
if PREFLIGHT and MAIN_PROCESS:
    print(preflight_message(PREFLIGHT, config["name"]), file=sys.stderr)
# A run killed mid-way leaves Snakemake's locks behind; with no other genseg snakemake alive in
# this folder they are stale and removed (genseg.io.clear_stale_snakemake_locks).
if MAIN_PROCESS:
    for stale in clear_stale_snakemake_locks():
        print(
            f"genseg: removed the stale Snakemake lock {stale} (left by a killed run)",
            file=sys.stderr,
        )


onstart:
    if PREFLIGHT and config.get("preflight", "error") == "error":
        raise WorkflowError(
            f"genseg pre-flight: {len(PREFLIGHT)} missing or mismatched input(s), listed above; no job was started"
        )


wildcard_constraints:
    run="|".join(map(re.escape, RUNS)) or "NONE",
    split="[a-z]+",
    domain="|".join(map(re.escape, DOMAIN_SPLITS)) or "NONE",


def runs_of(stage):
    """Run ids trained by ``stage`` (a wildcard regex): train, posterior_learning or inverse_stage."""
    return (
        "|".join(
            re.escape(r) for r, cfg in RUNS.items() if training_stage(cfg) == stage
        )
        or "NONE"
    )


def run_upstream(wildcards):
    """Other runs' files this run starts from (GSS: the posterior, the prior for the inverse stage)."""
    return [os.path.relpath(p) for p in upstream_files(RUNS[wildcards.run], RUNS_DIR)]


def dataset_ready(wildcards):
    """The file that marks a complete synthetic dataset (written last) of the run's class count
    (data.num_classes: 12 or 0 is DATA_ROOT, others DATA_ROOT-c<N>); nothing for real data.
    """
    if not SYNTHETIC:
        return []
    return (
        f"{synthetic_root(DATA_ROOT, RUNS[wildcards.run].data.num_classes)}/meta.json"
    )


# Synthetic class counts other than the default 12 that runs ask for (data.num_classes): each
# its own dataset, DATA_ROOT-c<N> (data.smk's synthetic_data_classes).
SYNTHETIC_CLASS_COUNTS = sorted(
    {cfg.data.num_classes for cfg in RUNS.values() if SYNTHETIC}
    - {0, SYNTHETIC_CLASSES}
)


def run_plan(run, split):
    """A run's evaluations on ``split``; ablation variants skip the sweeps and unseen domains
    (one in-domain row each in their table)."""
    cfg = RUNS[run]
    return eval_plan(
        config["evaluate"],
        cfg,
        with_sweeps=cfg.name not in ABLATION_EXPERIMENTS,
        split=split,
    )


def eval_plan_json(wildcards):
    return json.dumps(run_plan(wildcards.run, wildcards.split))


def eval_runtime(wildcards):
    """An evaluate job's minutes: resources.eval_sweep_runtime_min (default eval_runtime_min)
    when its plan evaluates sweep values (e.g. FlowSeg's step counts), else eval_runtime_min.
    """
    plan = json.loads(eval_plan_json(wildcards))
    if any(entry[1] for entry in plan):  # [domain, predict options(, window)]
        return RESOURCES.get("eval_sweep_runtime_min", RESOURCES["eval_runtime_min"])
    return RESOURCES["eval_runtime_min"]


def eval_outputs():
    """One index per run and split: its evaluations of that split's test domains and sweep values."""
    return [
        f"{RESULTS}/runs/{run}/eval/{split}/index.json"
        for run in RUNS
        for split in EVAL_SPLITS
        if run_plan(run, split)
    ]


def uncertainty_outputs():
    """One JSON per uncertainty job (run, in-domain test domain): uncertainty/<split>/<domain>.json."""
    return [
        f"{RESULTS}/runs/{run}/uncertainty/{split}/{domain}.json"
        for run, domain, split in UNCERTAINTY_JOBS
    ]


def curve_outputs():
    return [f"{RESULTS}/runs/{run}/val_curve.csv" for run in RUNS]


def report_outputs():
    return [
        f"{RESULTS}/metrics.csv",
        f"{RESULTS}/curves.csv",
        f"{RESULTS}/uncertainty.csv",
        f"{RESULTS}/ablations.json",
    ] + [
        f"{RESULTS}/report/{name}.{ext}"
        for name, exts in REPORT_FILES.items()
        for ext in exts
    ]


# Extra targets of the "all" target; the rules of an ablation (ablations/<name>.smk) append theirs.
EXTRA_TARGETS = []


def report_caption(name):
    """Caption of a report entry (``snakemake --report``): workflow/report/<name>.rst, or the
    generic ablation caption for tables and figures that ablation files add."""
    own = Path(workflow.basedir, "workflow/report", f"{name}.rst")
    return str(
        own if own.exists() else Path(workflow.basedir, "workflow/report/ablation.rst")
    )


# Tables (md, tex) and figures (png, pdf) that `genseg report` writes: its definitions
# (genseg/report/families), with each ablation file's table (and figure) of this config.
REPORT_FILES = report_files(
    [asdict(a) for a in ABLATIONS if config["name"] in a.configs]
)


# `snakemake figures` rebuilds the report from the results of one default run committed here.
REFERENCE_RESULTS = Path(workflow.basedir, "results/reference/default")


def reference_uncertainty_args():
    """The committed uncertainty results, when there are (results published before them have none)."""
    files = {
        "uncertainty": REFERENCE_RESULTS / "uncertainty.csv",
        "uncertainty-samples": REFERENCE_RESULTS / "uncertainty_samples.npz",
    }
    return " ".join(f"--{k} '{v}'" for k, v in files.items() if v.exists())
