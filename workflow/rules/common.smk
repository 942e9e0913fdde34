# Run ids, wildcard constraints and helpers that expand the experiment matrix.
import json
import os
from pathlib import Path

from genseg.experiments import eval_plan, run_configs

RESULTS = f"results/{config['name']}"
DATA_ROOT = config["dataset"].get("root") or f"data/{config['dataset']['name']}"
# Run configs are resolved and checked now, so a typo fails before any job starts.
RUNS = run_configs(config, Path(DATA_ROOT).resolve())
EVAL_SPLIT = config["evaluate"]["split"]


wildcard_constraints:
    run="|".join(RUNS) or "NONE",
    split="[a-z]+",


def run_config_json(wildcards):
    return json.dumps(RUNS[wildcards.run].to_dict())


def dataset_ready():
    """The file that marks a complete dataset (the synthetic generator writes it last)."""
    return f"{DATA_ROOT}/meta.json"


def eval_plan_json(wildcards):
    return json.dumps(eval_plan(config["evaluate"], RUNS[wildcards.run]))


def eval_outputs():
    """One index per run: its evaluations of every test domain and sweep value."""
    return [f"{RESULTS}/runs/{run}/eval/{EVAL_SPLIT}/index.json" for run in RUNS]


def curve_outputs():
    return [f"{RESULTS}/runs/{run}/val_curve.csv" for run in RUNS]


def report_outputs():
    return [f"{RESULTS}/metrics.csv", f"{RESULTS}/curves.csv"] + [
        f"{RESULTS}/report/{name}.{ext}" for name, exts in REPORT_FILES.items() for ext in exts
    ]


# Tables (md, tex) and figures (png, pdf) that `genseg report` writes.
REPORT_FILES = {
    "miou_by_domain": ("md", "tex", "png", "pdf"),
    "flowseg_steps": ("md", "tex", "png", "pdf"),
    "flowseg_encodings": ("md", "tex"),
    "convergence": ("png", "pdf"),
}
