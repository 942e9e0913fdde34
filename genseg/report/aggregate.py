"""Metrics JSONs -> one tidy CSV: a row per run x split x domain x predict options x metric.

Every tidy table (metrics, curves, summary, paired) is written as CSV and, beside it, as
parquet (:func:`write_results`); :func:`read_results` reads the parquet back when present."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..ablations import variant_identity
from ..engine.evaluate import variant_name
from ..io import atomic_path

SUMMARY_METRICS = ("miou", "macc", "aacc")
GRID_METRICS = ("grid_ratio_8", "grid_ratio_16")  # :class:`genseg.metrics.GridArtifacts`, from the JSON's grid_ratio
COLUMNS = [
    "run_id", "experiment", "method", "seed", "dataset", "train_domains", "split", "domain",
    "in_domain", "variant", "predict_options", "steps", "nfe", "model_options", "budget", "metric", "value", "pretrained",
]
PROVENANCE_COLUMNS = ["commit", "train_commit", "dirty", "config_hash"]
COLUMNS += PROVENANCE_COLUMNS


def budget_text(budget: dict | None) -> str:
    """``300 x 16``, plus the runs it starts from: ``100 x 16 (+ gss-ff 300 x 16, vqvae-d4 1200 x 16)``."""
    if not budget:
        return ""
    own = f"{budget['iterations']} x {budget['batch_size']}"
    upstream = ", ".join(f"{u['experiment']} {u['iterations']} x {u['batch_size']}" for u in budget.get("upstream", []))
    return f"{own} (+ {upstream})" if upstream else own


def provenance_columns(record: dict) -> dict:
    """The run's provenance as columns: ``commit`` the evaluation ran from, ``train_commit`` the
    training ran from (``unknown`` when the record predates it or git was absent), ``dirty``
    (either had uncommitted changes: ``git_commit`` ends ``+dirty``) and ``config_hash``."""
    commit = record["provenance"].get("git_commit", "unknown")
    train_commit = (record.get("budget") or {}).get("train_git_commit", "unknown")
    return {
        "commit": commit.removesuffix("+dirty"),
        "train_commit": train_commit.removesuffix("+dirty"),
        "dirty": commit.endswith("+dirty") or train_commit.endswith("+dirty"),
        "config_hash": record["provenance"].get("config_hash", ""),
    }


def group_provenance(frame: pd.DataFrame, by) -> pd.DataFrame:
    """Per group of ``by`` (a summary's rows): the commits its runs were evaluated and trained from
    (sorted, space-separated) and whether any of them was ``dirty``."""
    by, rows = list(by), []
    for key, group in frame.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        commits = sorted(set(group["commit"]) | set(group["train_commit"]))
        rows.append({**dict(zip(by, key)), "commits": " ".join(commits), "dirty": bool(group["dirty"].any())})
    return pd.DataFrame(rows, columns=[*by, "commits", "dirty"])


def pair_provenance(paired: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """``paired`` (rows a, b, seed) with ``dirty``: whether either run of the pair (from the tidy
    ``frame``'s provenance) was trained or evaluated from a dirty tree; for a row over seeds
    (``seed`` all), any run of either experiment."""
    dirty = frame.groupby(["experiment", "seed"])["dirty"].any()
    by_run = {(e, str(s)): bool(v) for (e, s), v in dirty.items()}
    by_experiment = {e: bool(v) for e, v in dirty.groupby(level=0).any().items()}

    def flag(experiment: str, seed) -> bool:
        return by_experiment.get(experiment, False) if str(seed) == "all" else by_run.get((experiment, str(seed)), False)

    flags = [flag(a, s) or flag(b, s) for a, b, s in zip(paired["a"], paired["b"], paired["seed"])]
    return paired.assign(dirty=flags)


def tidy_rows(record: dict) -> list[dict]:
    """Rows for one evaluation record (the JSON written by ``genseg evaluate``)."""
    domain = "+".join(record["domains"])
    key = {
        "run_id": record["run_id"],
        "experiment": record["experiment"],
        "method": record["method"],
        "seed": record["provenance"]["seed"],
        "dataset": record["dataset"],
        "train_domains": "+".join(record["train_domains"]),
        "split": record["split"],
        "domain": domain,
        "in_domain": set(record["domains"]) <= set(record["train_domains"]),
        "variant": variant_name(record["predict_options"]),
        "predict_options": json.dumps(record["predict_options"], sort_keys=True),
        "steps": record["predict_options"].get("steps", record["model"].get("steps")),
        "nfe": record.get("nfe"),
        "model_options": json.dumps(record["model"], sort_keys=True),
        "budget": budget_text(record.get("budget")),
        "pretrained": record.get("pretrained", ""),  # "random (smoke)" for a smoke run's weights
        **provenance_columns(record),
    }
    scores = record["scores"]
    rows = [dict(key, metric=m, value=scores[m]) for m in SUMMARY_METRICS]
    rows += [dict(key, metric=f"grid_ratio_{p}", value=float("nan") if r is None else r)
             for p, r in record.get("grid_ratio", {}).items()]  # none in records written before it
    rows += [dict(key, metric=f"iou/{c}", value=v) for c, v in zip(record["classes"], scores["iou"])]
    rows += [
        dict(key, metric="images_per_s", value=record["images_per_s"]),
        dict(key, metric="peak_memory_mb", value=record["peak_memory_mb"]),
    ]
    if "unreachable_classes" in record:  # target classes no model class maps to (counted wrong)
        rows.append(dict(key, metric="unreachable_classes", value=len(record["unreachable_classes"])))
    wall = (record.get("budget") or {}).get("train_wall_seconds")
    if wall is not None:
        rows.append(dict(key, metric="train_wall_seconds", value=wall))
    return rows


IDENTITY_COLUMNS = ("ablation", "ablation_value")  # run identity beside run_id, experiment, seed, variant


def with_identity(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the run identity columns ``ablation`` and ``ablation_value`` (both "" for a
    config's own experiments), which the report filters on. Columns a frame lacks (a metrics.csv
    written before them) are derived from the experiment names (:func:`genseg.ablations.variant_identity`)."""
    present = [c for c in IDENTITY_COLUMNS if c in frame]
    frame = frame.assign(**{c: frame[c].astype(object).fillna("").astype(str) for c in present})  # "" reads back as NaN
    if len(present) == len(IDENTITY_COLUMNS):
        return frame
    ids = [variant_identity(str(e)) for e in frame.experiment]
    return frame.assign(**{c: [i[c] for i in ids] for c in IDENTITY_COLUMNS if c not in present})


def evaluation_files(paths: list[str | Path]) -> list[Path]:
    """Evaluation JSONs: the given ones, and every one an index (``evaluate_plan``'s) lists."""
    files = []
    for path in map(Path, paths):
        data = json.loads(path.read_text())
        files += [path.parent / rel for rel in data["records"]] if "records" in data else [path]
    return files


def portable(record: dict, path: Path) -> dict:
    """The record with its runs folder written ``{runs}`` (as in the workflow config) in model
    options, so the tidy table holds no machine-specific paths."""
    run_dir = next((p for p in path.parents if p.name == record["run_id"]), None)
    if run_dir is None:
        return record
    runs = str(run_dir.resolve().parent)
    model = {k: v.replace(runs, "{runs}") if isinstance(v, str) else v for k, v in record["model"].items()}
    return {**record, "model": model}


def aggregate(paths: list[str | Path], out: str | Path) -> pd.DataFrame:
    rows = [r for path in evaluation_files(paths) for r in tidy_rows(portable(json.loads(path.read_text()), path))]
    frame = pd.DataFrame(rows, columns=COLUMNS).sort_values(["experiment", "seed", "split", "domain", "variant", "metric"])
    frame = with_identity(frame)
    write_results(frame, out)
    return frame


def collect_samples(paths: list[str | Path], out: str | Path) -> list[str]:
    """The kept (image, label, prediction) samples of every default-variant evaluation (lowest
    seed per experiment) -> one .npz: ``image/<domain>/<i>``, ``label/<domain>/<i>``,
    ``pred/<experiment>/<domain>/<i>``, and ``classes/<domain>`` (names). Returns its keys."""
    arrays: dict[str, np.ndarray] = {}
    seen: dict[tuple[str, str], int] = {}
    for path in evaluation_files(paths):
        record = json.loads(path.read_text())
        if record["predict_options"] or not path.with_suffix(".npz").exists():
            continue
        domain, seed = "+".join(record["domains"]) or record["dataset"], record["provenance"]["seed"]
        key = (record["experiment"], domain)
        if key in seen and seen[key] <= seed:
            continue
        seen[key] = seed
        with np.load(path.with_suffix(".npz")) as data:
            for name in data.files:
                if name.startswith("sample_"):
                    kind, index = name[len("sample_"):].rsplit("_", 1)
                    target = f"pred/{record['experiment']}/{domain}/{index}" if kind == "pred" else f"{kind}/{domain}/{index}"
                    arrays[target] = data[name]
        arrays[f"classes/{domain}"] = np.array(record["classes"])
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)
    return sorted(arrays)


def paired_comparisons(paths: list[str | Path], pairs: list[list[str]], out: str | Path) -> pd.DataFrame:
    """For each ``[a, b]`` experiment pair, each seed both have and each (split, domain) both
    evaluated (default variant): a paired bootstrap over images of mIoU_a - mIoU_b
    (:func:`genseg.report.stats.compare_evaluations`) -> one CSV row; where they share two
    or more seeds, also one row with ``seed`` = ``all``: the bootstrap over seeds and images
    (:func:`genseg.report.stats.compare_seeds`; ``n_seeds`` says how many)."""
    from .stats import compare_evaluations, compare_seeds

    found: dict[tuple, Path] = {}
    for path in evaluation_files(paths):
        record = json.loads(path.read_text())
        if not record["predict_options"]:
            domain = "+".join(record["domains"]) or record["dataset"]
            found[(record["experiment"], record["provenance"]["seed"], record["split"], domain)] = path
    keys = ("miou_a", "miou_b", "delta", "ci_low", "ci_high", "p_value", "n_images", "n_resamples")
    rows = []
    for a, b in pairs:
        shared: dict[tuple, list] = {}
        for (experiment, seed, split, domain), path_a in sorted(found.items(), key=lambda kv: str(kv[0])):
            path_b = found.get((b, seed, split, domain))
            if experiment != a or path_b is None:
                continue
            result = compare_evaluations(path_a, path_b)
            rows.append({"a": a, "b": b, "seed": seed, "split": split, "domain": domain, **{k: result[k] for k in keys}, "n_seeds": 1})
            shared.setdefault((split, domain), []).append((path_a, path_b))
        for (split, domain), seed_pairs in sorted(shared.items()):
            if len(seed_pairs) > 1:
                result = compare_seeds(seed_pairs)
                rows.append({"a": a, "b": b, "seed": "all", "split": split, "domain": domain, **{k: result[k] for k in keys},
                             "n_seeds": result["n_seeds"]})
    columns = ["a", "b", "seed", "split", "domain", *keys, "n_seeds"]
    frame = pd.DataFrame(rows, columns=columns)
    write_results(frame, out)
    return frame


RUN_IDENTITY = ["run_id", "experiment", "method", "seed", *IDENTITY_COLUMNS]


def run_identity(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per run of a tidy frame (metrics.csv): :data:`RUN_IDENTITY` and its ``model_options``."""
    return with_identity(frame).drop_duplicates("run_id")[RUN_IDENTITY + ["model_options"]].reset_index(drop=True)


def config_identity(config: Path) -> dict:
    """The identity of a run no evaluation names yet, from its resolved ``config.yaml``."""
    if not config.is_file():
        raise ValueError(f"{config.parent}: run has no evaluation in the aggregated metrics and no config.yaml to name it")
    cfg = yaml.safe_load(config.read_text())
    return {"experiment": cfg["name"], "method": cfg["model"]["method"], "seed": int(cfg["seed"]), **variant_identity(cfg["name"])}


def aggregate_curves(paths: list[str | Path], out: str | Path, frame: pd.DataFrame) -> pd.DataFrame:
    """Validation curves (``runs/<run_id>/val_curve.csv``) -> one table, each row with its run's
    identity (:data:`RUN_IDENTITY`) from the tidy ``frame`` joined by run id (the run's folder);
    a run not evaluated yet takes it from its ``config.yaml``. A curve with no point (a run of no
    iterations) adds no row."""
    known = run_identity(frame).drop(columns="model_options").set_index("run_id")
    frames = []
    for path in map(Path, paths):
        run, curve = path.parent.name, pd.read_csv(path)
        if curve.empty:  # its columns read as text: they would turn the others' numbers to text
            continue
        identity = known.loc[run].to_dict() if run in known.index else config_identity(path.parent / "config.yaml")
        frames.append(curve.assign(run_id=run, **identity))
    empty = pd.DataFrame(columns=["step", "val_miou", "train_loss", "wall_seconds", *RUN_IDENTITY])
    curves = pd.concat(frames, ignore_index=True) if frames else empty
    write_results(curves, out)
    return curves


def parquet_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as its CSV reads back where parquet needs a choice (it holds one type per column):
    a column of numbers of several Python types (ints and floats) as numbers, one mixing text and
    numbers (paired.csv's ``seed``: seeds and ``all``) as text, one with no value (``steps`` of runs
    without sampling steps) as float nan."""
    def text(v):
        return v if v is None or isinstance(v, str) or v != v else str(v)

    out = {}
    for name in (c for c in frame.columns if frame[c].dtype == object):
        values = frame[name].dropna()
        if values.empty:
            out[name] = frame[name].astype("float64")
        elif values.map(lambda v: isinstance(v, (int, float, np.number)) and not isinstance(v, bool)).all():
            out[name] = pd.to_numeric(frame[name])
        elif values.map(type).nunique() > 1:
            out[name] = frame[name].map(text)
    return frame.assign(**out)


def write_results(frame: pd.DataFrame, out: str | Path) -> None:
    """The tidy table as ``out`` (CSV), then beside it as ``.parquet`` (typed, quicker to read):
    each written atomically; the parquet last, so a crash between leaves it older than the CSV."""
    out = Path(out)
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False)
    with atomic_path(out.with_suffix(".parquet")) as tmp:
        parquet_ready(frame).to_parquet(tmp, index=False)


def read_results(path: str | Path) -> pd.DataFrame:
    """A tidy table written by :func:`write_results`, by its CSV path (or the parquet's): the
    parquet beside it when present and not older than the CSV, else the CSV (results folders
    written before the parquet, such as ``results/reference/*``)."""
    path = Path(path)
    csv, parquet = path.with_suffix(".csv"), path.with_suffix(".parquet")
    if parquet.is_file() and (not csv.is_file() or parquet.stat().st_mtime_ns >= csv.stat().st_mtime_ns):
        return pd.read_parquet(parquet)
    if not csv.is_file():
        raise FileNotFoundError(f"{path}: no results table there (neither {csv.name} nor {parquet.name})")
    return pd.read_csv(csv)


UNCERTAINTY_METRICS = ("miou", "miou_single", "aacc", "auroc", "ece", "mean_entropy", "error_rate", "zero_entropy_errors")
UNCERTAINTY_COLUMNS = ["run_id", "experiment", "method", "display_name", "seed", "split", "domain", "kind", "k", "num_images",
                       "metric", "value", *PROVENANCE_COLUMNS]


def aggregate_uncertainty(paths: list[str | Path], out: str | Path, samples_out: str | Path = "") -> pd.DataFrame:
    """``genseg uncertainty`` JSONs -> one tidy CSV (a row per run x domain x metric: the scores,
    ``images_per_s`` and ``wall_seconds``); with ``samples_out``, the kept maps of the lowest seed
    per experiment -> one .npz: ``image/<domain>/<i>``, ``label/<domain>/<i>``, and
    ``pred/<experiment>/<domain>/<i>``, ``entropy/<experiment>/<domain>/<i>``."""
    rows, arrays, seen = [], {}, {}
    for path in (Path(p) for p in paths if str(p)):
        record = json.loads(path.read_text())
        key = {c: record[c] for c in ("run_id", "experiment", "method", "display_name", "split", "domain", "kind", "k", "num_images")}
        key.update(seed=record["provenance"]["seed"], **provenance_columns(record))
        values = {**record["scores"], "images_per_s": record["images_per_s"], "wall_seconds": record["wall_seconds"]}
        rows += [dict(key, metric=m, value=values[m]) for m in (*UNCERTAINTY_METRICS, "images_per_s", "wall_seconds")]
        domain, npz = record["domain"], path.with_suffix(".npz")
        if samples_out and npz.exists() and seen.get((record["experiment"], domain), np.inf) > key["seed"]:
            seen[(record["experiment"], domain)] = key["seed"]
            with np.load(npz) as data:
                for name in data.files:
                    kind, index = name.rsplit("_", 1)
                    own = kind in ("pred", "entropy")
                    arrays[f"{kind}/{record['experiment']}/{domain}/{index}" if own else f"{kind}/{domain}/{index}"] = data[name]
    frame = pd.DataFrame(rows, columns=UNCERTAINTY_COLUMNS)
    write_results(frame, out)
    if samples_out:
        with atomic_path(samples_out) as tmp:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, **arrays)
    return frame
