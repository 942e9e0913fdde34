# Run ids, wildcard constraints and helpers that expand the experiment matrix.
import json
import os
from pathlib import Path

from genseg.experiments import run_configs

RESULTS = f"results/{config['name']}"
DATA_ROOT = config["dataset"].get("root") or f"data/{config['dataset']['name']}"
# Run configs are resolved and checked now, so a typo fails before any job starts.
RUNS = run_configs(config, Path(DATA_ROOT).resolve())
EVAL_SPLIT = config["evaluate"]["split"]
EVAL_DOMAINS = config["evaluate"]["domains"]


wildcard_constraints:
    run="|".join(RUNS) or "NONE",
    domain="[A-Za-z0-9_+]+",
    split="[a-z]+",


def run_config_json(wildcards):
    return json.dumps(RUNS[wildcards.run].to_dict())


def dataset_ready():
    """The file that marks a complete dataset (the synthetic generator writes it last)."""
    return f"{DATA_ROOT}/meta.json"


def eval_outputs():
    return expand(
        f"{RESULTS}/runs/{{run}}/eval/{{split}}_{{domain}}.json",
        run=RUNS,
        split=EVAL_SPLIT,
        domain=EVAL_DOMAINS,
    )


def report_outputs():
    return [
        f"{RESULTS}/metrics.csv",
        f"{RESULTS}/report/miou_by_domain.md",
        f"{RESULTS}/report/miou_by_domain.tex",
        f"{RESULTS}/report/miou_by_domain.png",
        f"{RESULTS}/report/miou_by_domain.pdf",
    ]
