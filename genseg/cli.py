"""``genseg`` command line: generate-synthetic, write-fixture, write-config, train, evaluate, uncertainty, aggregate, report, publish, models, benchmark, convert-dvae, convert-pixnerd, weights."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml


def _options(pairs: list[str]) -> dict:
    """``key=value`` pairs (also comma-joined), values parsed as YAML (``steps=10`` -> int).

    The word ``default`` alone means no options (the workflow's default variant).
    """
    out = {}
    for pair in (p for item in pairs for p in item.split(",") if p and p != "default"):
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--option expects key=value, got {pair!r}")
        out[key] = yaml.safe_load(value)
    return out


def cmd_generate_synthetic(args) -> None:
    from .data import synthetic

    domains = tuple(args.domains.split(",")) if args.domains else synthetic.DOMAINS
    synthetic.generate(
        Path(args.root), seed=args.seed, image_size=args.image_size, num_train=args.num_train,
        num_val=args.num_val, num_test=args.num_test, domains=domains, num_classes=args.num_classes,
        overwrite=args.overwrite,
    )


def cmd_write_fixture(args) -> None:
    from .data.fixtures import FIXTURE_DATASETS, MSEG_SMOKE_MEMBERS, SMOKE_DVAE, write_fixture, write_smoke_dvae

    root = Path(args.root)
    datasets = FIXTURE_DATASETS + tuple(m for m in MSEG_SMOKE_MEMBERS if m not in FIXTURE_DATASETS)
    for dataset in datasets:
        write_fixture(dataset, root / dataset, num_train=args.num_images, num_val=args.num_images,
                      num_test=args.num_images if dataset == "camvid" else 0)
    for member in MSEG_SMOKE_MEMBERS:  # <root>/mseg/<member>: the layout of data.root for the taxonomy `mseg`
        link = root / "mseg" / member
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(Path("..") / member, target_is_directory=True)
    write_smoke_dvae(root / "weights" / SMOKE_DVAE)
    print(f"wrote {', '.join(datasets)} under {root} and {root / 'weights' / SMOKE_DVAE}; "
          f"smoke runs: GENSEG_DATA={root} GENSEG_WEIGHTS={root / 'weights'}")


def cmd_write_config(args) -> None:
    from .config import RunConfig
    from .io import write_yaml

    cfg = RunConfig.from_dict(json.loads(args.json))
    write_yaml(args.out, cfg.to_dict())


def cmd_train(args) -> None:
    from .config import load_run_config
    from .engine.train import train

    cfg = load_run_config(args.config)
    record = train(cfg, Path(args.run_dir) if args.run_dir else Path(args.config).parent, gpus=args.gpus, processes=args.processes,
                   on_change=args.on_config_change)
    print(json.dumps({k: record[k] for k in ("run_id", "final_val_miou", "train_images_per_s", "wall_seconds")}))


def cmd_evaluate(args) -> None:
    from .engine.evaluate import evaluate_plan, evaluate_run

    if args.plan:
        plan = [tuple(entry) for entry in json.loads(args.plan)]  # [domain, options] or [domain, options, window]
        print(evaluate_plan(args.run_dir, args.split, plan, args.out_dir, device=args.device, gpus=args.gpus))
        return
    if not args.out:
        raise SystemExit("genseg evaluate: give --out (one evaluation) or --plan with --out-dir")
    record = evaluate_run(
        args.run_dir, args.split, args.domains.split(",") if args.domains else [], args.out,
        predict_options=_options(args.option), device=args.device, gpus=args.gpus,
    )
    print(json.dumps({"run_id": record["run_id"], "split": args.split, "miou": record["scores"]["miou"]}))


def cmd_uncertainty(args) -> None:
    from .engine.uncertainty import uncertainty_run

    record = uncertainty_run(args.run_dir, args.split, args.domain, args.out, k=args.k, max_images=args.max_images, seed=args.seed,
                             device=args.device, gpus=args.gpus)
    print(json.dumps({"run_id": record["run_id"], "kind": record["kind"], "k": record["k"], "num_images": record["num_images"],
                      "images_per_s": record["images_per_s"], "wall_seconds": record["wall_seconds"], **record["scores"]}))


def cmd_aggregate(args) -> None:
    from .report.aggregate import (
        GRID_METRICS,
        SUMMARY_METRICS,
        aggregate,
        aggregate_curves,
        collect_samples,
        group_provenance,
        pair_provenance,
        paired_comparisons,
        write_results,
    )
    from .report.stats import SEED_GROUPS, summarise_seeds

    frame = aggregate(args.metrics, args.out)
    if args.summary_out:  # mean, std and 95% bootstrap CI over seeds, and the runs' commits
        rows = frame[frame.metric.isin(SUMMARY_METRICS + GRID_METRICS)]
        summary = summarise_seeds(rows).merge(group_provenance(rows, SEED_GROUPS), on=list(SEED_GROUPS), how="left")
        write_results(summary, args.summary_out)
    if args.curves_out:
        aggregate_curves(args.curves, args.curves_out, frame)
    if args.paired_out:
        paired = paired_comparisons(args.metrics, json.loads(args.pairs or "[]"), args.paired_out)
        write_results(pair_provenance(paired, frame), args.paired_out)  # and whether either run was dirty
    if args.samples_out:
        collect_samples(args.metrics, args.samples_out)
    if args.uncertainty_out:
        from .report.aggregate import aggregate_uncertainty

        aggregate_uncertainty(args.uncertainty, args.uncertainty_out, args.uncertainty_samples_out)


def cmd_report(args) -> None:
    from .report.build import build_report

    build_report(args.metrics, args.out_dir, curves=args.curves, ablations=args.ablations, paired=args.paired, samples=args.samples,
                 split=json.loads(args.splits) if args.splits else args.split, uncertainty=args.uncertainty,
                 uncertainty_samples=args.uncertainty_samples)


def cmd_publish(args) -> None:
    from .report.publish import publish

    record = publish(args.results, args.dest, allow_dirty=args.allow_dirty)
    if record["overridden"]:
        print(f"genseg publish: published despite (--allow-dirty, recorded in {Path(args.dest) / 'publish.json'}):\n  "
              + "\n  ".join(record["overridden"]), file=sys.stderr)
    print(json.dumps({"dest": str(args.dest), "files": record["files"], "tree_commit": record["tree_commit"]}))


def cmd_models(args) -> None:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # built from configs with random weights; no hub
    from .config import ModelConfig
    from .methods import build_method
    from .methods.baselines import PAPER_MODELS, PUBLISHED_PARAMS_M

    print(f"{'model':<20} {'params (M)':>10} {'published':>10} {'diff':>7}  source (published counts: 150 classes)")
    for name, section in PAPER_MODELS.items():
        options = {k: v for k, v in section.items() if k != "method"}
        model = build_method(ModelConfig(section["method"], options), args.num_classes)
        count = sum(p.numel() for p in model.parameters()) / 1e6
        if name in PUBLISHED_PARAMS_M:
            published, source = PUBLISHED_PARAMS_M[name]
            print(f"{name:<20} {count:>10.2f} {published:>10.1f} {100 * (count / published - 1):>+6.1f}%  {source}")
        else:
            print(f"{name:<20} {count:>10.2f} {'-':>10} {'-':>7}  -")


def cmd_benchmark(args) -> None:
    from .benchmark import benchmark

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if bool(args.config) == bool(args.config_json):
        raise SystemExit("genseg benchmark: give --config (one or more files) or --config-json (the workflow passes its config)")
    benchmark(args.config or json.loads(args.config_json), args.out, paper_size=args.paper_size, paper_batch=args.paper_batch, figure=args.figure,
              gpu_hours=args.gpu_hours, device=args.device, num_classes=args.num_classes,
              experiments=[e for e in args.experiments.split(",") if e], infer_repeats=args.repeats,
              paper_models=[m for m in args.paper_models.split(",") if m], flops_only=args.flops_only, precision=args.precision,
              count_train_step=args.count_train_step)


def cmd_convert_dvae(args) -> None:
    from .methods.gss.convert import convert_dvae

    print(json.dumps({"out": str(convert_dvae(args.encoder, args.decoder, args.out))}))


def cmd_convert_pixnerd(args) -> None:
    from .methods.flowseg.convert import convert_pixnerd

    print(json.dumps(convert_pixnerd(args.ckpt, args.out, ema=args.ema, trust_pickle=args.trust_pickle)))


def cmd_weights(args) -> int:
    from . import weights

    manifest = weights.load_manifest(args.manifest) if args.manifest else weights.load_manifest()
    if args.name:
        entries = [weights.entry(name, manifest) for name in args.name]
    elif args.config:
        workflow = yaml.safe_load(Path(args.config).read_text())
        entries = weights.needed_weights(workflow, manifest)
        if not entries:
            print(f"{args.config} names no file of the weights manifest")
            return 0
    else:
        entries = list(manifest.values())
    directory = weights.weights_dir()
    failed = 0
    if args.action == "fetch":
        for e in entries:
            try:
                weights.fetch(e, directory, trust_pickle=args.trust_pickle)
            except weights.WeightsError as err:
                print(f"{e['name']}: error: {err}", file=sys.stderr)
                failed += 1
        return 1 if failed else 0
    print(f"weights folder: {directory} (${weights.WEIGHTS_ENV})")
    for e in entries:
        state, detail = weights.status(e, directory)
        print(f"{e['name']:<18} {state:<18} {detail}")
        if state != "present":
            failed += 1
            print(f"{'':<18} get it: {weights.source_text(e)}")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genseg", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("generate-synthetic", help="write the embedded synthetic dataset")
    p.add_argument("root")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--num-train", type=int, default=1000)
    p.add_argument("--num-val", type=int, default=200)
    p.add_argument("--num-test", type=int, default=200)
    p.add_argument("--domains", default="", help="comma-separated; default: all")
    p.add_argument("--num-classes", type=int, default=12, help="class count (default 12: the base list; 3 to 227)")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_generate_synthetic)

    p = sub.add_parser("write-fixture", help="tiny ADE20K / COCO-Stuff / Cityscapes / CamVid / IDD-Lite trees, the MSeg smoke members, and a random dVAE for smoke runs")
    p.add_argument("root")
    p.add_argument("--num-images", type=int, default=2, help="per split")
    p.set_defaults(func=cmd_write_fixture)

    p = sub.add_parser("write-config", help="check a run config given as JSON and write it as YAML")
    p.add_argument("--json", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_write_config)

    p = sub.add_parser("train", help="train one run (resumes from its checkpoint)")
    p.add_argument("config", help="run config YAML")
    p.add_argument("--run-dir", default="", help="default: the config's folder")
    p.add_argument("--gpus", type=int, default=None,
                   help="devices this job may use (the workflow passes its `gpu` resource); more than visible is an error. "
                        "With device auto and more devices visible, the job locks free ones (genseg.devices); "
                        "N > 1 on an accelerator trains with DDP in N processes, one per device")
    p.add_argument("--processes", type=int, default=None,
                   help="DDP processes (default: --gpus on an accelerator, else 1); on the CPU they use the gloo backend")
    p.add_argument("--on-config-change", choices=("refuse", "restart"), default="refuse",
                   help="the run folder's checkpoint was trained with another config: stop with an error (default) or "
                        "restart from step 0, deleting the checkpoint and the run's outputs (the workflow passes restart)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a trained run on one split")
    p.add_argument("run_dir")
    p.add_argument("--split", default="test")
    p.add_argument("--domains", default="", help="comma-separated; default: all")
    p.add_argument("--out", default="", help="metrics JSON path (an .npz of per-image areas goes beside it)")
    p.add_argument("--plan", default="", help='JSON list of [domain, {predict options}] pairs, e.g. \'[["clean", {"steps": 1}]]\'')
    p.add_argument("--out-dir", default="", help="with --plan: writes <domain>/<variant>.json and index.json here")
    p.add_argument("--option", action="append", default=[], help="predict option key=value (repeatable, or comma-joined)")
    p.add_argument("--device", default=None)
    p.add_argument("--gpus", type=int, default=None,
                   help="devices this job may use (the workflow passes its `gpu` resource); more than visible is an error. "
                        "With device auto and more devices visible, the job locks free ones (genseg.devices)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("uncertainty", help="per-pixel uncertainty of a trained run on one test domain: entropy, AUROC, ECE "
                                           "(softmax, or the votes of K samples)")
    p.add_argument("run_dir")
    p.add_argument("--split", default="test")
    p.add_argument("--domain", default="", help="the test domain (default: all)")
    p.add_argument("--out", required=True, help="JSON path (an .npz of a few images' entropy maps goes beside it)")
    p.add_argument("--k", type=int, default=8, help="samples per image (methods that sample; 1 draw each, seeds seed..seed+k-1)")
    p.add_argument("--max-images", type=int, default=100, help="the first N images of the split (0: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first sample")
    p.add_argument("--device", default=None)
    p.add_argument("--gpus", type=int, default=None, help="devices this job may use (the workflow passes its `gpu` resource)")
    p.set_defaults(func=cmd_uncertainty)

    p = sub.add_parser("aggregate", help="metrics JSONs -> one tidy CSV (and .parquet beside each CSV)")
    p.add_argument("metrics", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--curves", nargs="*", default=[], help="val_curve.csv files of the runs")
    p.add_argument("--curves-out", default="", help="where to write the combined curves CSV")
    p.add_argument("--summary-out", default="", help="mean, std, 95%% bootstrap CI over seeds (CSV)")
    p.add_argument("--pairs", default="", help='JSON list of [a, b] experiment pairs to compare, e.g. [["x", "y"]]')
    p.add_argument("--paired-out", default="", help="paired bootstrap over images of each pair (CSV)")
    p.add_argument("--samples-out", default="", help="kept (image, label, prediction) samples (.npz)")
    p.add_argument("--uncertainty", nargs="*", default=[], help="`genseg uncertainty` JSONs of the runs")
    p.add_argument("--uncertainty-out", default="", help="their tidy CSV (a row per run x domain x metric)")
    p.add_argument("--uncertainty-samples-out", default="", help="their kept images, error and entropy maps (.npz)")
    p.set_defaults(func=cmd_aggregate)

    p = sub.add_parser("report", help="tidy CSV (its .parquet when present) -> tables (Markdown, LaTeX) and figures (PNG, PDF)")
    p.add_argument("--metrics", required=True)
    p.add_argument("--curves", default="", help="combined curves CSV from `genseg aggregate --curves-out`")
    p.add_argument("--ablations", default="", help="the workflow's ablations.json (rows of each ablation file)")
    p.add_argument("--paired", default="", help="paired comparisons CSV from `genseg aggregate --paired-out`")
    p.add_argument("--samples", default="", help="kept samples (.npz) from `genseg aggregate --samples-out`")
    p.add_argument("--uncertainty", default="", help="uncertainty CSV from `genseg aggregate --uncertainty-out` (none: an empty table)")
    p.add_argument("--uncertainty-samples", default="", help="its maps (.npz) from `genseg aggregate --uncertainty-samples-out`")
    p.add_argument("--split", default="test", help="the evaluated split the tables show, for every domain")
    p.add_argument("--splits", default="", help='JSON {domain: split}: each domain\'s own split (the workflow\'s evaluate.domains); overrides --split')
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("publish", help="copy aggregated results into a folder to commit (results/reference/<name>); "
                                       "refuses runs from a dirty tree and a dirty work tree")
    p.add_argument("results", help="the workflow's results folder (results/<config>/, with metrics.csv)")
    p.add_argument("dest", help="where to copy them, e.g. results/reference/<name>")
    p.add_argument("--allow-dirty", action="store_true",
                   help="publish anyway; the overridden reasons are recorded in DEST/publish.json")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("models", help="parameter counts of the paper-size baselines (built offline, random weights)")
    p.add_argument("--num-classes", type=int, default=150, help="default: 150 (ADE20K), as the published counts")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("benchmark", help="FLOPs, images/s and peak memory of a workflow config's models (random weights)")
    p.add_argument("--config", nargs="+", default=[], help="workflow config(s) (workflow/config/<name>.yaml); rows of each, in order")
    p.add_argument("--config-json", default="", help="the workflow config as JSON (instead of --config)")
    p.add_argument("--out", required=True, help="models CSV")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's)")
    p.add_argument("--figure", default="", help="PNG: GFLOPs vs inference images/s (log axes)")
    p.add_argument("--gpu-hours", default="", help="CSV: estimated GPU-hours of the paper schedules (assumed MFU)")
    p.add_argument("--paper-size", type=int, default=512, help="image size of the PAPER_MODELS rows; 0 skips them")
    p.add_argument("--paper-batch", type=int, default=2, help="batch of the paper-size inference and training steps")
    p.add_argument("--paper-models", default="", help="comma-separated PAPER_MODELS names (default: all)")
    p.add_argument("--experiments", default="", help="comma-separated experiments of the config (default: all)")
    p.add_argument("--repeats", type=int, default=2, help="timed inference repetitions (config experiments)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, or auto")
    p.add_argument("--num-classes", type=int, default=150, help="paper-size models (and datasets without a known class list)")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"),
                   help="autocast of the timed inference and training step (as train.precision)")
    p.add_argument("--flops-only", action="store_true",
                   help="FLOPs alone (no timing; batch 1, 1 step; CPU): missing weight files become random; "
                        "--gpu-hours gets every experiment's schedule at its own crop")
    p.add_argument("--count-train-step", action="store_true",
                   help="with --flops-only: also count one training step's FLOPs (forward + backward; memory of a training step)")
    p.set_defaults(func=cmd_benchmark)

    p = sub.add_parser("convert-dvae", help="OpenAI's dVAE pickles -> one safetensors file (once; needs `pip install dall-e`)")
    p.add_argument("encoder", help="official encoder.pkl (unpickling runs code: only the official file)")
    p.add_argument("decoder", help="official decoder.pkl")
    p.add_argument("out", help="output .safetensors")
    p.set_defaults(func=cmd_convert_dvae)

    p = sub.add_parser("convert-pixnerd", help="a PixNerd release .ckpt -> the denoiser's weights as safetensors (once)")
    p.add_argument("ckpt", help="the release checkpoint (MCG-NJU/PixNerd, PyTorch Lightning .ckpt)")
    p.add_argument("out", help="output .safetensors")
    p.add_argument("--ema", action="store_true", help="keep the EMA denoiser (what the release samples with), not the trained one")
    p.add_argument("--trust-pickle", action="store_true",
                   help="unpickle objects beyond tensors (runs code stored in the file: only for the official release)")
    p.set_defaults(func=cmd_convert_pixnerd)

    p = sub.add_parser("weights", help="status of the pretrained files ($GENSEG_WEIGHTS), or `fetch` the missing ones (downloads)")
    p.add_argument("action", nargs="?", choices=("status", "fetch"), default="status",
                   help="status (default): present / missing / wrong checksum / wrong architecture, exit 1 unless all present; "
                        "fetch: download (and convert) what is missing")
    p.add_argument("--config", default="", help="a workflow config: only the files it names (default: every manifest entry)")
    p.add_argument("--name", action="append", default=[], help="a manifest entry (repeatable)")
    p.add_argument("--trust-pickle", action="store_true", help="fetch: passed to convert-pixnerd for the official release")
    p.add_argument("--manifest", default="", help=argparse.SUPPRESS)  # tests: another manifest file
    p.set_defaults(func=cmd_weights)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .config import ConfigError
    from .data.base import DataError
    from .engine.checkpoint import CheckpointError
    from .engine.train import NonFiniteLossError
    from .io import LockedError
    from .methods.flowseg.weights import PixNerdWeightsError
    from .methods.gss.dvae import DVAEError
    from .report.publish import PublishError
    from .weights import WeightsError

    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except (ConfigError, DataError, NonFiniteLossError, CheckpointError, LockedError, DVAEError, PixNerdWeightsError, WeightsError,
            PublishError, FileNotFoundError, FileExistsError) as err:
        print(f"genseg {args.command}: error: {err}", file=sys.stderr)
        return 2
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
