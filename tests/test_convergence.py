"""Convergence as a number: iterations (and wall seconds) to 90% of each run's final validation
mIoU, per experiment over seeds, with each curve's identity joined from the metrics by run id."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from genseg.report import figures
from genseg.report.aggregate import aggregate_curves
from genseg.report.families import report_files
from genseg.report.stats import time_to_fraction
from genseg.report.tables import convergence, curve_runs

FLOW = {"encoding": "kronecker", "reshape": True, "lam": 1.0}


@pytest.mark.parametrize("steps, values, expected", [
    ([100, 200, 300, 400], [0.2, 0.5, 0.7, 0.75], 2),  # 0.7 >= 0.9 * 0.75 = 0.675 first
    ([300, 100, 200], [0.7, 0.2, 0.65], 2),  # in step order: the final is step 300's; step 200 (index 2) reaches 0.63
    ([100], [0.4], 0),  # one point: it is the final
    ([100, 200, 300], [0.1, np.nan, 1.0], 2),  # a nan point never qualifies
    ([100, 200], [0.5, np.nan], -1),  # a nan final: undefined
    ([], [], -1),
])
def test_time_to_fraction(steps, values, expected):
    assert time_to_fraction(steps, values) == expected


def identity_rows():
    """A tidy frame's identity: run ids that do not spell their experiment (nothing is parsed)."""
    runs = [("run-d0", "deeplabv3plus-r18", "deeplabv3plus", 0, {}, ""),
            ("run-d1", "deeplabv3plus-r18", "deeplabv3plus", 1, {}, ""),
            ("run-d2", "deeplabv3plus-r18", "deeplabv3plus", 2, {}, ""),
            ("run-r0", "flowseg-kronecker-reshaped", "flowseg", 0, FLOW, ""),
            ("run-r1", "flowseg-kronecker-reshaped", "flowseg", 1, FLOW, ""),
            ("run-v0", "flowseg-kronecker-vanilla", "flowseg", 0, {**FLOW, "reshape": False}, ""),
            ("run-t0", "flowseg-kronecker-reshaped+flowseg-tau=0.5", "flowseg", 0, FLOW, "0.5")]
    return pd.DataFrame([{"run_id": r, "experiment": e, "method": m, "seed": s, "model_options": json.dumps(o),
                          "ablation": "flowseg-tau" if v else "", "ablation_value": v, "metric": "miou", "value": 0.5}
                         for r, e, m, s, o, v in runs])


def curve(run, points, **extra):
    return [{"run_id": run, "step": s, "val_miou": v, "wall_seconds": w, **extra} for s, v, w in points]


def curves_fixture():
    return pd.DataFrame(
        curve("run-d0", [(100, 0.5, 10), (200, 0.8, 20), (300, 0.85, 30)], experiment="bogus")  # old columns give way
        + curve("run-d1", [(100, 0.7, 12), (200, 0.75, 22), (300, 0.76, 33)])
        + curve("run-d2", [(300, 0.8, 31), (100, 0.3, 11), (200, 0.6, 21)])  # out of order: sorted by step
        + curve("run-r0", [(100, 0.4, 50), (200, 0.6, 100)])
        + curve("run-r1", [(100, 0.55, 40), (200, 0.6, 80)])
        + curve("run-v0", [(100, 0.5, 9)])  # a single validation point
        + curve("run-t0", [(100, 0.3, 5), (200, np.nan, 10)])  # final nan: no number
        + curve("orphan", [(100, 0.9, 1)]))  # not in the metrics: left out


def test_convergence_table_from_known_curves():
    table = convergence(curve_runs(curves_fixture(), identity_rows()))
    assert list(table.columns) == ["Variant", "Seeds", "Iterations to 90%", "Wall (s) to 90%", "Final val mIoU (%)"]
    assert table.to_dict("index") == {
        # 200, 100, 300 iterations (0.765, 0.684, 0.72 thresholds); 3 seeds: percentile bootstrap CI
        "DeepLabV3+ (deeplabv3plus-r18)": {"Variant": "–", "Seeds": "3", "Iterations to 90%": "200 [100, 300]",
                                           "Wall (s) to 90%": "21.0 [12.0, 31.0]", "Final val mIoU (%)": "80.3 [76.0, 85.0]"},
        "FlowSeg (flowseg-kronecker-reshaped)": {"Variant": "reshaped", "Seeds": "2", "Iterations to 90%": "150 [100, 200]",
                                                 "Wall (s) to 90%": "70.0 [40.0, 100.0]", "Final val mIoU (%)": "60.0 [60.0, 60.0]"},
        "FlowSeg (flowseg-kronecker-reshaped+flowseg-tau=0.5)": {"Variant": "reshaped, flowseg-tau=0.5", "Seeds": "0",
                                                                 "Iterations to 90%": "–", "Wall (s) to 90%": "–",
                                                                 "Final val mIoU (%)": "–"},
        "FlowSeg (flowseg-kronecker-vanilla)": {"Variant": "vanilla", "Seeds": "1", "Iterations to 90%": "100",
                                                "Wall (s) to 90%": "9.0", "Final val mIoU (%)": "50.0"},
    }


def test_convergence_without_wall_time_or_curves():
    old = curves_fixture().drop(columns="wall_seconds")  # a curve written before wall time was recorded
    table = convergence(curve_runs(old, identity_rows()))
    assert table.loc["FlowSeg (flowseg-kronecker-vanilla)", "Iterations to 90%"] == "100"
    assert table.loc["FlowSeg (flowseg-kronecker-vanilla)", "Wall (s) to 90%"] == "–"
    empty = pd.DataFrame(columns=["run_id", "experiment", "step", "val_miou"])
    assert convergence(curve_runs(empty, identity_rows())).index.tolist() == ["no validation curves"]


def test_curves_take_their_identity_from_the_metrics():
    runs = curve_runs(curves_fixture(), identity_rows()).drop_duplicates("run_id").set_index("run_id")
    assert "orphan" not in runs.index and runs.loc["run-d0", "experiment"] == "deeplabv3plus-r18"
    assert runs.loc["run-d0", "display"] == "DeepLabV3+" and runs.loc["run-d0", "objective"] == ""
    assert runs.loc["run-v0", "objective"] == "vanilla" and runs.loc["run-t0", "ablation_value"] == "0.5"


def test_the_convergence_table_sits_beside_its_figure():
    assert set(report_files()["convergence"]) == {"png", "pdf", "md", "tex"}
    runs = curve_runs(curves_fixture(), identity_rows()).drop_duplicates("run_id")
    models = dict(zip(runs.experiment, figures._models(runs, list(runs.objective))))
    assert models == {"deeplabv3plus-r18": "DeepLabV3+", "flowseg-kronecker-reshaped": "FlowSeg",  # one colour,
                      "flowseg-kronecker-vanilla": "FlowSeg",  # the objectives told apart by dashes
                      "flowseg-kronecker-reshaped+flowseg-tau=0.5": "FlowSeg flowseg-tau=0.5"}


def test_aggregate_curves_joins_the_run_identity(tmp_path):
    # run-new's mIoU reads as integers (a tiny run's 0), run-d1 has no point (no iterations)
    for run, points in (("run-d0", [(100, 0.5, 1.0)]), ("run-new", [(100, 0, 2.0)]), ("run-d1", [])):
        folder = tmp_path / "runs" / run
        folder.mkdir(parents=True)
        pd.DataFrame(points, columns=["step", "val_miou", "wall_seconds"]).to_csv(folder / "val_curve.csv", index=False)
    (tmp_path / "runs/run-new/config.yaml").write_text(yaml.safe_dump(
        {"name": "segformer-b0+width=2", "seed": 3, "model": {"method": "segformer"}}))  # not evaluated yet
    paths = [tmp_path / "runs" / r / "val_curve.csv" for r in ("run-d0", "run-new", "run-d1")]
    out = aggregate_curves(paths, tmp_path / "curves.csv", identity_rows())
    got = out.set_index("run_id")[["experiment", "method", "seed", "ablation", "ablation_value"]].to_dict("index")
    assert got == {"run-d0": {"experiment": "deeplabv3plus-r18", "method": "deeplabv3plus", "seed": 0, "ablation": "",
                              "ablation_value": ""},
                   "run-new": {"experiment": "segformer-b0+width=2", "method": "segformer", "seed": 3, "ablation": "width",
                               "ablation_value": "2"}}
    parquet = pd.read_parquet(tmp_path / "curves.parquet")
    assert parquet.val_miou.dtype == "float64" and parquet.val_miou.tolist() == [0.5, 0.0]  # numbers, as the CSV reads
    (tmp_path / "runs/run-new/config.yaml").unlink()
    with pytest.raises(ValueError, match=r"run-new: run has no evaluation .* no config.yaml"):
        aggregate_curves(paths, tmp_path / "curves.csv", identity_rows())
