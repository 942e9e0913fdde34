""".ci/gpu (issue 14): the GPU check script, end to end on the CPU through --dry-run (the same steps at the
paper configs' smoke sizes), and its refusal without an accelerator."""

import csv
import os
import subprocess
import sys

import pytest
from conftest import REPO

SCRIPT = REPO / ".ci" / "gpu"


def _env(out):
    return dict(os.environ, OUT=str(out), PYTHON=sys.executable, OMP_NUM_THREADS="1",
                PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])))


@pytest.mark.slow
def test_dry_run_takes_every_step_and_writes_the_summary(tmp_path):
    out = tmp_path / "gpu-check"
    run = subprocess.run([str(SCRIPT), "--dry-run"], cwd=REPO, env=_env(out), capture_output=True, text=True, timeout=400)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    steps = {r["step"]: r["rc"] for r in csv.DictReader((out / "steps.csv").open())}
    assert steps == {"benchmark": "0", "data": "0", "configs": "0", "train": "0", "summary": "0"}
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [(r["kind"], r["model"]) for r in rows] == [
        ("benchmark", "segformer-b2"), ("train", "flowseg-xl16-kronecker-reshaped"), ("train", "deeplabv3plus-r101")]
    for r in rows:
        assert r["status"] == "ok" and r["precision"].startswith("bf16"), r
        assert float(r["train_images_per_s"]) > 0 and float(r["peak_memory_mb"]) > 0 and 0 < float(r["mfu_train"]), r
    assert float(rows[0]["mfu_infer"]) > 0
    assert {r["batch"] for r in rows[1:]} == {"2"} and {r["image_size"] for r in rows[1:]} == {"64"}  # smoke sizes
    assert "GPU check (dry run" in (out / "summary.md").read_text()
    assert (out / "runs/flowseg-xl16-kronecker-reshaped/train_metrics.json").is_file()


def test_without_an_accelerator_it_stops_with_a_message(tmp_path):
    import torch

    if torch.accelerator.is_available():
        pytest.skip("an accelerator is present")
    run = subprocess.run([str(SCRIPT)], cwd=REPO, env=_env(tmp_path / "o"), capture_output=True, text=True, timeout=120)
    assert run.returncode == 3 and "no accelerator" in run.stderr and "--dry-run" in run.stderr
    bad = subprocess.run([str(SCRIPT), "--bogus"], cwd=REPO, env=_env(tmp_path / "o"), capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--bogus" in bad.stderr
