"""The tidy results as parquet beside each CSV: the same table, typed, and the report reads it back
(falling back to the CSV of older results folders) to the same tables."""

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import REPO

from genseg.report.aggregate import aggregate, read_results, write_results
from genseg.report.build import report_inputs
from genseg.report.families import Table, definitions

TIDY = ("metrics", "curves", "paired")


def record(experiment, method, seed, domain, miou, model=None):
    return {"run_id": f"{experiment}-s{seed}", "experiment": experiment, "method": method, "dataset": "synthetic",
            "provenance": {"seed": seed, "git_commit": "a" * 40, "config_hash": "0123abcd"},
            "budget": {"iterations": 3, "batch_size": 2, "train_wall_seconds": 1.5, "upstream": [], "train_git_commit": "a" * 40},
            "train_domains": ["clean"], "split": "test", "domains": [domain], "predict_options": {}, "model": model or {},
            "nfe": None, "classes": ["x", "y"], "scores": {"miou": miou, "macc": 0.6, "aacc": 0.7, "iou": [miou, miou]},
            "images_per_s": 10.0, "peak_memory_mb": 1.0}


@pytest.fixture
def results(tmp_path):
    """A results folder as `genseg aggregate` writes it: metrics, curves and paired, CSV and parquet."""
    out = tmp_path / "results"
    paths = []
    for i, (experiment, method, model) in enumerate((("deeplabv3plus-r18", "deeplabv3plus", {"encoder": "tu-resnet18"}),
                                                     ("flowseg-kronecker-reshaped", "flowseg", {"reshape": True, "lam": 1.0, "steps": 10}))):
        for seed in (0, 1):
            for domain in ("clean", "shifted"):
                path = tmp_path / "eval" / f"{experiment}-s{seed}-{domain}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(record(experiment, method, seed, domain, 0.5 + 0.1 * i + 0.01 * seed, model)))
                paths.append(path)
    frame = aggregate(paths, out / "metrics.csv")
    curves = pd.DataFrame([{"step": s, "val_miou": 0.1 * s / 100 + 0.01 * seed, "wall_seconds": s / 10, "run_id": r}
                           for r in frame.run_id.unique() for seed in (0,) for s in (100, 200)])
    write_results(curves, out / "curves.csv")
    paired = pd.DataFrame([{"a": "flowseg-kronecker-reshaped", "b": "deeplabv3plus-r18", "seed": s, "split": "test",
                            "domain": "clean", "delta": 0.1, "ci_low": 0.05, "ci_high": 0.15, "p_value": 0.01,
                            "n_images": 8, "n_seeds": 2 if s == "all" else 1} for s in (0, 1, "all")])
    write_results(paired, out / "paired.csv")
    return out


def test_parquet_round_trips_to_the_csvs_table(results):
    for name in TIDY:
        csv, parquet = pd.read_csv(results / f"{name}.csv"), pd.read_parquet(results / f"{name}.parquet")
        assert list(parquet.columns) == list(csv.columns), name
        # the same values; text cells "" in the parquet are what the CSV reads back as missing
        pd.testing.assert_frame_equal(parquet.replace("", np.nan).astype(object), csv.astype(object), check_dtype=False, obj=name)
    metrics = pd.read_parquet(results / "metrics.parquet")
    assert metrics.seed.dtype == "int64" and metrics.value.dtype == "float64" and metrics.dirty.dtype == bool
    assert sorted(metrics.steps.dropna().unique()) == [10] and metrics.steps.dtype == "float64"  # FlowSeg's; none for the others
    assert pd.read_parquet(results / "curves.parquet").val_miou.dtype == "float64"
    assert pd.read_parquet(results / "paired.parquet").seed.tolist() == ["0", "1", "all"]  # as the CSV reads them


def test_read_results_prefers_a_current_parquet(results, tmp_path):
    csv = results / "metrics.csv"
    assert read_results(csv).ablation.tolist()[0] == ""  # the parquet: "" stays ""
    older = tmp_path / "older"
    older.mkdir()
    shutil.copy(csv, older / "metrics.csv")
    assert read_results(older / "metrics.csv").ablation.isna().all()  # no parquet: the CSV
    shutil.copy(results / "metrics.parquet", older / "metrics.parquet")
    stamp = (older / "metrics.csv").stat().st_mtime_ns
    os.utime(older / "metrics.parquet", ns=(stamp - 10**9, stamp - 10**9))  # a crash left the parquet behind the CSV
    assert read_results(older / "metrics.csv").ablation.isna().all()
    with pytest.raises(FileNotFoundError, match=r"nothing\.csv: no results table there \(neither nothing.csv nor nothing.parquet\)"):
        read_results(older / "nothing.csv")


def tables_of(folder) -> dict:
    inputs = report_inputs(folder / "metrics.csv", curves=folder / "curves.csv", paired=folder / "paired.csv")
    return {d.name: d.blocks(inputs) for d in definitions() if isinstance(d, Table)}


def same_tables(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert [c for _, c in a[name]] == [c for _, c in b[name]], name
        for (x, _), (y, _) in zip(a[name], b[name]):
            pd.testing.assert_frame_equal(x, y, obj=name)


def test_the_report_from_parquet_equals_the_report_from_csv(results, tmp_path):
    csv_only = tmp_path / "csv-only"
    csv_only.mkdir()
    for name in TIDY:
        shutil.copy(results / f"{name}.csv", csv_only / f"{name}.csv")
    from_parquet = tables_of(results)
    assert "FlowSeg (flowseg-kronecker-reshaped)" in from_parquet["convergence"][0][0].index
    same_tables(from_parquet, tables_of(csv_only))


@pytest.mark.slow
def test_the_reference_report_from_parquet_equals_the_one_from_csv(tmp_path):
    """The committed three-seed results, rewritten with their parquet: every table the same."""
    ref = REPO / "results/reference/default-seeds"
    for name in TIDY:
        write_results(pd.read_csv(ref / f"{name}.csv"), tmp_path / f"{name}.csv")
    same_tables(tables_of(tmp_path), tables_of(ref))
