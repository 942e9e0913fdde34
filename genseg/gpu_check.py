"""Helpers of ``.ci/gpu`` (issue 14): the GPU check's accelerator test, training run configs and summary.

``.ci/gpu`` runs, on one accelerator: ``genseg benchmark`` of the paper-size models in bf16 (FLOPs,
images/s, peak memory, MFU), then a short paper-size training of each of :data:`TRAIN_RUNS` (the paper
config's model, crop and batch; random weights; ``train.precision`` bf16; synthetic data written by
``genseg generate-synthetic``), then ``summary.csv`` / ``summary.md``. ``--dry-run`` takes the same
steps on the CPU at the configs' ``smoke`` sizes (the test suite runs it).

    python -m genseg.gpu_check accelerator            # exit 3 and a message when there is none
    python -m genseg.gpu_check configs --out DIR --data ROOT [--dry-run] [--iterations N]
    python -m genseg.gpu_check train --out DIR          # every runs/*/config.yaml in one process, each as `genseg train`
    python -m genseg.gpu_check summary --out DIR [--dry-run]
"""

from __future__ import annotations

import argparse
import csv
import inspect
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# (paper config, experiment): the trained models (FlowSeg's PixNerd XL/16, the paper config's network, and DeepLabV3+ R101).
TRAIN_RUNS = (("paper-flowseg-ade20k", "flowseg-xl16-kronecker-reshaped"), ("paper-flowseg-ade20k", "deeplabv3plus-r101"))
ITERATIONS = 50
DRY = {"crop_size": 64, "iterations": 2, "matmul": 256}  # --dry-run: CPU, smoke overlay sizes


def accelerator() -> int:
    import torch

    if not torch.accelerator.is_available():
        print(".ci/gpu: no accelerator (torch.accelerator.is_available() is False): this check needs one GPU. "
              "`.ci/gpu --dry-run` takes the same steps at tiny size on the CPU.", file=sys.stderr)
        return 3
    dev = torch.accelerator.current_accelerator()
    print(f"{dev.type}: {torch.get_device_module(dev.type).get_device_name()}")
    return 0


def run_config(paper: str, experiment: str, data_root: Path, runs_dir: Path, dry_run: bool, iterations: int) -> dict:
    """The experiment's run config at paper size (dry run: the smoke overlay's), trained on synthetic data
    for ``iterations`` steps in bf16, random weights where the weight files are missing."""
    import tempfile

    import yaml

    from .benchmark import with_random_weights, workflow_num_classes
    from .data.synthetic import CLASSES
    from .experiments import apply_overlay, experiment_seeds, run_configs, run_id

    workflow = yaml.safe_load((REPO / "workflow/config" / f"{paper}.yaml").read_text())
    if dry_run:
        workflow["overlay"] = "smoke"
    workflow = apply_overlay(workflow)
    cfg = run_configs(workflow, "", runs_dir)[run_id(experiment, experiment_seeds(workflow, experiment)[0])]
    with tempfile.TemporaryDirectory() as tmp:
        model = with_random_weights(cfg, runs_dir, Path(tmp), workflow_num_classes(workflow, len(CLASSES)))
    if any(isinstance(v, str) and v.startswith(tmp) for v in model.options.values()):
        raise ValueError(f"{experiment}: needs a generated weight file; not a .ci/gpu training run")
    out = cfg.to_dict()
    out["name"] = f"{experiment}-gpu-check"
    out["device"] = "cpu" if dry_run else "auto"
    out["smoke"] = dry_run
    out["model"] = {"method": model.method, **model.options}
    out["data"].update(dataset="synthetic", root=str(data_root), roots={}, train_domains=["clean"], val_domains=["clean"],
                       num_workers=0 if dry_run else min(8, cfg.data.num_workers))
    if dry_run:
        out["data"].update(crop_size=DRY["crop_size"], resize_scale=[4 * DRY["crop_size"], DRY["crop_size"]])
    out["optim"].update(iterations=iterations, warmup_iters=min(cfg.optim.warmup_iters, max(1, iterations // 5)))
    out["train"].update(precision="bf16", log_every=10, val_every=0, val_max_images=4, checkpoint_every=0, progress=False)
    out["eval"].update(batch_size=2)
    return out


def write_configs(out_dir: Path, data_root: Path, dry_run: bool, iterations: int) -> list[Path]:
    from .config import RunConfig
    from .io import write_yaml

    paths = []
    for paper, experiment in TRAIN_RUNS:
        cfg = RunConfig.from_dict(run_config(paper, experiment, data_root, out_dir / "runs", dry_run, iterations))
        path = out_dir / "runs" / experiment / "config.yaml"
        write_yaml(path, cfg.to_dict())
        paths.append(path)
        print(path)
    return paths


def train_all(out_dir: Path) -> int:
    """``genseg train`` of every ``runs/*/config.yaml`` in this one process (the start-up of torch paid once);
    a failed run writes ``error.txt`` beside its config and the others still run. Exit status 1 if any failed."""
    import traceback

    from .config import load_run_config
    from .engine.train import train

    failed = 0
    for path in sorted((out_dir / "runs").glob("*/config.yaml")):
        print(f"train {path.parent.name}", flush=True)
        try:
            record = train(load_run_config(path), path.parent)
            print(f"  {record['train_images_per_s']:.3g} img/s, peak {record['peak_memory_mb']:.0f} MB, {record['wall_seconds']:.0f} s", flush=True)
        except Exception:
            failed = 1
            (path.parent / "error.txt").write_text(traceback.format_exc())
            print(traceback.format_exc(), flush=True)
    return failed


def _float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def summary(out_dir: Path, dry_run: bool) -> list[dict]:
    """summary.csv / summary.md: one row per benchmarked model and per training run: images/s, peak memory,
    MFU (model FLOPs/s over the device's measured bf16 matmul peak; training = 3 x forward FLOPs)."""
    import torch

    from .benchmark import count_flops, matmul_peak_tflops
    from .config import load_run_config
    from .data.synthetic import CLASSES
    from .engine.precision import autocast
    from .engine.provenance import resolve_device
    from .methods import build_method

    dev = resolve_device("cpu" if dry_run else "auto")
    peak = matmul_peak_tflops(dev, n=DRY["matmul"]) if dry_run else matmul_peak_tflops(dev)
    rows = []
    bench = out_dir / "benchmarks" / "models.csv"
    for r in csv.DictReader(bench.open()) if bench.is_file() else []:
        if r["status"] != "ok":
            rows.append({"kind": "benchmark", "model": r["experiment"], "status": r["status"], "note": r["note"]})
            continue
        gflops, infer, train = _float(r["gflops_per_image"]), _float(r["infer_images_per_s"]), _float(r["train_images_per_s"])
        rows.append({
            "kind": "benchmark", "model": r["experiment"], "status": "ok", "image_size": r["image_size"], "batch": r["batch"],
            "precision": r["precision"], "gflops_per_image": gflops, "infer_images_per_s": infer, "train_images_per_s": train,
            "peak_memory_mb": _float(r["peak_memory_mb"]),
            "mfu_infer": gflops * 1e9 * infer / (peak * 1e12) if gflops and infer else None,
            "mfu_train": 3 * gflops * 1e9 * train / (peak * 1e12) if gflops and train else None,
            "note": r["note"],
        })
    for _, experiment in TRAIN_RUNS:
        run = out_dir / "runs" / experiment
        metrics = run / "train_metrics.json"
        if not metrics.is_file():
            error = run / "error.txt"
            why = error.read_text().strip().splitlines()[-1][:200] if error.is_file() else "see logs/"
            rows.append({"kind": "train", "model": experiment, "status": "failed", "note": f"no train_metrics.json: {why}"})
            continue
        record = json.loads(metrics.read_text())
        cfg = load_run_config(run / "config.yaml")
        torch.manual_seed(0)
        model = build_method(cfg.model, len(CLASSES)).to(dev).eval()  # FLOPs: one forward, batch 1, 1 step (synthetic classes)
        size = cfg.data.crop_size
        images = torch.rand(1, 3, size, size, device=dev)
        kw = {"steps": 1} if "steps" in inspect.signature(model.predict).parameters else {}
        with torch.no_grad(), autocast("bf16", dev):
            flops, _ = count_flops(lambda: model.predict(images, **kw))
        del model
        ips = record["train_images_per_s"]
        rows.append({
            "kind": "train", "model": experiment, "status": "ok", "image_size": size, "batch": record["effective_batch_size"],
            "precision": record["precision"], "gflops_per_image": flops / 1e9, "train_images_per_s": ips,
            "peak_memory_mb": record["peak_memory_mb"], "mfu_train": 3 * flops * ips / (peak * 1e12) if ips else None,
            "note": f"{record['iterations']} iterations, final loss {record['final_train_loss']:.3f}, {record['wall_seconds']:.0f} s",
        })
    columns = ["kind", "model", "status", "image_size", "batch", "precision", "gflops_per_image", "infer_images_per_s",
               "train_images_per_s", "peak_memory_mb", "mfu_infer", "mfu_train", "note"]
    steps = out_dir / "steps.csv"
    step_rows = list(csv.DictReader(steps.open())) if steps.is_file() else []
    with open(out_dir / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows)
    fmt = lambda v: "" if v is None else (f"{v:.3g}" if isinstance(v, float) else str(v))  # noqa: E731
    lines = [f"# GPU check{' (dry run: CPU, smoke sizes)' if dry_run else ''}", "",
             f"Device: {_device_name(dev)}; measured bf16 matmul peak {peak:.1f} TFLOP/s (MFU's denominator).", "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    lines += ["", "| step | exit status | seconds |", "|---|---:|---:|"]
    lines += [f"| {s['step']} | {s['rc']} | {s['seconds']} |" for s in step_rows]
    (out_dir / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return rows


def _device_name(dev) -> str:
    from .engine.provenance import device_name

    return device_name(dev)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genseg.gpu_check", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("accelerator")
    p = sub.add_parser("configs")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--iterations", type=int, default=0, help=f"default: {ITERATIONS} ({DRY['iterations']} with --dry-run)")
    p = sub.add_parser("train")
    p.add_argument("--out", required=True, type=Path)
    p = sub.add_parser("summary")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "accelerator":
        return accelerator()
    if args.command == "configs":
        write_configs(args.out, args.data, args.dry_run, args.iterations or (DRY["iterations"] if args.dry_run else ITERATIONS))
        return 0
    if args.command == "train":
        return train_all(args.out)
    summary(args.out, args.dry_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
