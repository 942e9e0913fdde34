# Run ids, wildcard constraints and helpers that expand the experiment matrix.
import json
import os
from pathlib import Path

from genseg.experiments import eval_plan, run_configs, training_stage, upstream_files
from genseg.io import write_text, write_yaml

RESULTS = f"results/{config['name']}"
# The synthetic dataset is generated under data/ (or the given root); a real dataset is read
# in place from its root, or from $GENSEG_DATA/<name> when the root is empty.
SYNTHETIC = config["dataset"]["name"] == "synthetic"
DATA_ROOT = config["dataset"].get("root") or ("data/synthetic" if SYNTHETIC else "")
# Run configs are resolved and checked now, so a typo fails before any job starts.
RUNS_DIR = Path(f"{RESULTS}/runs").resolve()
RUNS = run_configs(
    config, str(Path(DATA_ROOT).resolve()) if DATA_ROOT else "", RUNS_DIR
)
EVAL_SPLIT = config["evaluate"]["split"]


wildcard_constraints:
    run="|".join(RUNS) or "NONE",
    split="[a-z]+",


def runs_of(stage):
    """Run ids trained by ``stage`` (a wildcard regex): train, posterior_learning or inverse_stage."""
    return (
        "|".join(r for r, cfg in RUNS.items() if training_stage(cfg) == stage) or "NONE"
    )


def run_upstream(wildcards):
    """Other runs' files this run starts from (GSS: the posterior, the prior for the inverse stage)."""
    return [os.path.relpath(p) for p in upstream_files(RUNS[wildcards.run], RUNS_DIR)]


def dataset_ready():
    """The file that marks a complete synthetic dataset (written last); nothing for real data."""
    return f"{DATA_ROOT}/meta.json" if SYNTHETIC else []


def eval_plan_json(wildcards):
    return json.dumps(eval_plan(config["evaluate"], RUNS[wildcards.run]))


def eval_outputs():
    """One index per run: its evaluations of every test domain and sweep value."""
    return [f"{RESULTS}/runs/{run}/eval/{EVAL_SPLIT}/index.json" for run in RUNS]


def curve_outputs():
    return [f"{RESULTS}/runs/{run}/val_curve.csv" for run in RUNS]


def report_outputs():
    return [f"{RESULTS}/metrics.csv", f"{RESULTS}/curves.csv"] + [
        f"{RESULTS}/report/{name}.{ext}"
        for name, exts in REPORT_FILES.items()
        for ext in exts
    ]


# Tables (md, tex) and figures (png, pdf) that `genseg report` writes.
REPORT_FILES = {
    "miou_by_domain": ("md", "tex", "png", "pdf"),
    "flowseg_steps": ("md", "tex", "png", "pdf"),
    "flowseg_encodings": ("md", "tex"),
    "gss_reconstruction": ("md", "tex"),
    "gss_prior": ("md", "tex"),
    "convergence": ("png", "pdf"),
}
