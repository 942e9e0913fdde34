"""`genseg benchmark` and the `snakemake benchmarks` target (issue 14): FLOPs, images/s, the CSVs."""

import csv
import os
import subprocess
import sys

import pytest
import torch
import yaml
from conftest import REPO

from genseg.benchmark import ASSUMED_MFU, ASSUMED_PEAK_TFLOPS, SDPA_NOTE, count_flops, measure_flops, paper_gpu_hours
from genseg.cli import main

KEEP = ("deeplabv3plus-r18", "flowseg-kronecker-reshaped", "gss-ff", "gss-ft")


def tiny_workflow(tmp_path):
    cfg = yaml.safe_load((REPO / "workflow/config/default.yaml").read_text())
    cfg["name"] = "tiny-bench"
    cfg["defaults"]["data"].update(batch_size=2, crop_size=32)
    cfg["experiments"] = {name: cfg["experiments"][name] for name in KEEP}
    cfg["experiments"]["flowseg-kronecker-reshaped"]["model"]["steps"] = 3  # its default step count, kept small
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_benchmark_writes_one_row_per_experiment(tmp_path):
    out, figure, hours = tmp_path / "b/models.csv", tmp_path / "b/models.png", tmp_path / "b/gpu_hours.csv"
    threads = torch.get_num_threads()
    try:  # 1 thread: on 2 shared cores it is ~5x faster than 2 (and restored for the other tests)
        code = main(["benchmark", "--config", str(tiny_workflow(tmp_path)), "--out", str(out), "--figure", str(figure),
                     "--gpu-hours", str(hours), "--paper-size", "0", "--repeats", "1", "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    rows = list(csv.DictReader(out.open()))
    assert {r["experiment"] for r in rows} == set(KEEP)
    ok = [r for r in rows if r["status"] == "ok"]
    assert {r["experiment"] for r in ok} == set(KEEP) - {"gss-ft"}  # gss-ff: built on a random posterior
    for r in ok:
        assert float(r["gflops_per_image"]) > 0 and float(r["infer_images_per_s"]) > 0, r
        assert float(r["train_images_per_s"]) > 0, r
        assert r["source"] == "config" and r["image_size"] == "32" and r["batch"] == "2"
        assert r["peak_memory_kind"] == "cpu_peak_rss_increase" and r["precision"] == "float32" and r["mfu_infer"] == ""
    # FlowSeg: one row per step count (1 and its default, 3 here), FLOPs growing with the steps.
    flow = {int(r["steps"]): float(r["gflops_per_image"]) for r in ok if r["experiment"] == "flowseg-kronecker-reshaped"}
    assert set(flow) == {1, 3} and flow[3] > flow[1]
    skipped = next(r for r in rows if r["experiment"] == "gss-ft")
    assert skipped["status"] == "skipped" and "init_file" in skipped["note"]
    assert figure.stat().st_size > 0
    assert list(csv.DictReader(hours.open())) == []  # no paper-size model measured


def test_flop_counter_matches_the_hand_formulas():
    linear = torch.nn.Linear(32, 16)
    flops, added = count_flops(lambda: linear(torch.randn(5, 32)))
    assert flops == 2 * 5 * 32 * 16 and not added
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    flops, _ = count_flops(lambda: conv(torch.randn(2, 3, 10, 10)))
    assert flops == 2 * (2 * 10 * 10) * 8 * (3 * 3 * 3)
    # SDPA: 4 * N_q * N_k * d per head (QK^T and AV), counted by hand where FlopCounterMode gives 0 on CPU.
    q = torch.randn(2, 3, 64, 16)
    flops, _ = count_flops(lambda: torch.nn.functional.scaled_dot_product_attention(q, q, q))
    assert flops == 4 * 2 * 3 * 64 * 64 * 16
    assert SDPA_NOTE
    # Convolution backward: one forward's FLOPs per gradient, depthwise too (torch's formula ignores groups).
    for groups in (1, 8):
        conv = torch.nn.Conv2d(8, 8, 3, padding=1, groups=groups)
        x = torch.randn(1, 8, 10, 10, requires_grad=True)
        forward, _ = count_flops(lambda: conv(x))
        both, _ = count_flops(lambda: conv(x).sum().backward())
        assert forward == 2 * 100 * 8 * (8 // groups) * 9 and both == 3 * forward


def test_gpu_hours_are_an_assumed_estimate():
    rows = paper_gpu_hours({"segformer-b2": (60.0, 512)})
    assert rows, "segformer-b2 is an experiment of a paper config"
    for r in rows:
        expected = 3 * 60e9 * (int(r["crop_size"].split("x")[0]) * int(r["crop_size"].split("x")[1]) / 512**2) * r["train_images"]
        assert r["gpu_hours_estimate"] == pytest.approx(expected / (ASSUMED_MFU * ASSUMED_PEAK_TFLOPS * 1e12) / 3600, abs=0.06)
        assert "assumed" in r["basis"]


@pytest.mark.slow
def test_dry_run_plans_the_benchmarks_rule_outside_the_default_target(tmp_path):
    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "-n", "--directory", str(tmp_path)]
    run = subprocess.run([*cmd, "benchmarks"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "rule benchmarks" in run.stdout + run.stderr and "benchmarks/models.csv" in run.stdout + run.stderr
    default = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert default.returncode == 0 and "rule benchmarks" not in default.stdout + default.stderr


def test_paper_size_rows_and_their_gpu_hours(tmp_path):
    out, hours = tmp_path / "models.csv", tmp_path / "gpu_hours.csv"
    threads = torch.get_num_threads()
    try:
        code = main(["benchmark", "--config", str(tiny_workflow(tmp_path)), "--experiments", "none", "--out", str(out),
                     "--gpu-hours", str(hours), "--paper-size", "64", "--paper-batch", "1", "--paper-models", "segformer-b2",
                     "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    (row,) = list(csv.DictReader(out.open()))
    assert row["experiment"] == "segformer-b2" and row["source"] == "paper" and row["image_size"] == "64"
    assert float(row["gflops_per_image"]) > 0 and float(row["train_images_per_s"]) > 0
    estimates = list(csv.DictReader(hours.open()))
    assert {r["config"] for r in estimates} >= {"paper-ade20k.yaml"} and all("assumed" in r["basis"] for r in estimates)
    assert all(float(r["gpu_hours_estimate"]) >= 0 for r in estimates)


def test_flops_only_counts_every_experiment_and_estimates_its_schedule(tmp_path):
    """--flops-only on a paper config (its smoke sizes here): no timing, missing weight files become random
    ones, one GPU-hours row per experiment from its own crop, iterations and batch."""
    cfg = yaml.safe_load((REPO / "workflow/config/paper-flowseg-ade20k.yaml").read_text())
    cfg["overlay"] = "smoke"
    smoke = cfg["overlays"]["smoke"]
    smoke["every_experiment"]["data"]["crop_size"] = 64
    smoke["experiments"]["deeplabv3plus-r101"]["model"]["pretrained_file"] = "{weights}/not-on-disk.safetensors"
    path = tmp_path / "paper.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out, hours = tmp_path / "models.csv", tmp_path / "gpu_hours.csv"
    threads = torch.get_num_threads()
    try:
        code = main(["benchmark", "--flops-only", "--count-train-step", "--config", str(path), "--paper-size", "0",
                     "--experiments", "deeplabv3plus-r101,flowseg-xl16-kronecker-reshaped", "--out", str(out),
                     "--gpu-hours", str(hours), "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    rows = {r["experiment"]: r for r in csv.DictReader(out.open())}
    assert set(rows) == {"deeplabv3plus-r101", "flowseg-xl16-kronecker-reshaped"}
    for r in rows.values():
        assert r["status"] == "ok" and r["config"] == "paper-flowseg-ade20k-smoke" and r["image_size"] == "64"
        assert r["infer_images_per_s"] == "" and r["train_images_per_s"] == "" and "flops only" in r["note"]
        assert float(r["train_gflops_per_image"]) > 2 * float(r["gflops_per_image"]) > 0  # backward ~2x forward
    assert rows["flowseg-xl16-kronecker-reshaped"]["steps"] == "1"
    estimates = {r["model"]: r for r in csv.DictReader(hours.open())}
    assert set(estimates) == set(rows)
    for name, r in estimates.items():
        assert r["crop_size"] == "64x64" and int(r["train_images"]) == 2 * 2  # smoke: 2 iterations x batch 2
        expected = 3 * float(rows[name]["gflops_per_image"]) * 1e9 * 4 / (ASSUMED_MFU * ASSUMED_PEAK_TFLOPS * 1e12) / 3600
        assert float(r["train_flops"]) == pytest.approx(3 * float(rows[name]["gflops_per_image"]) * 1e9 * 4, rel=1e-3)
        assert float(r["gpu_hours_estimate"]) == pytest.approx(expected, abs=0.06) and "assumed" in r["basis"]
        assert float(r["train_gflops_per_image_counted"]) == pytest.approx(float(rows[name]["train_gflops_per_image"]), rel=1e-3)


def test_flops_only_counts_the_training_step_only_when_asked():
    from genseg.config import ModelConfig
    from genseg.methods import build_method

    model = build_method(ModelConfig("deeplabv3plus", {"encoder": "tu-resnet18", "decoder_channels": 16}), 4, 255)
    (plain,) = measure_flops(model, 32, 4)
    (counted,) = measure_flops(model, 32, 4, train_step=True)
    assert plain["train_gflops_per_image"] == "" and plain["gflops_per_image"] == counted["gflops_per_image"] > 0
    assert counted["train_gflops_per_image"] > 2 * counted["gflops_per_image"]
    assert all(p.grad is None for p in model.parameters())
