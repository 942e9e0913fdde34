"""Report tables computed from a tidy frame with known numbers."""

import pandas as pd
import pytest

from genseg.report.tables import cross_domain, harmonic_mean, miou_by_domain


def rows(experiment, seed, values, method="gss"):
    base = {"metric": "miou", "split": "test", "variant": "default", "method": method, "experiment": experiment,
            "seed": seed, "train_domains": "clean"}
    return [dict(base, domain=d, value=v, in_domain=d == "clean") for d, v in values.items()]


def test_harmonic_mean():
    assert harmonic_mean([0.5, 0.25]) == pytest.approx(1 / 3)
    assert harmonic_mean([0.4, 0.0]) == 0.0


def test_cross_domain_table_takes_the_harmonic_mean_per_seed():
    frame = pd.DataFrame(
        rows("gss-ff", 0, {"clean": 0.9, "shifted": 0.5, "blurred": 0.25})
        + rows("gss-ff", 1, {"clean": 0.7, "shifted": 0.5, "blurred": 0.5})
        + rows("maskige-ff", 0, {"clean": 0.99, "shifted": 0.99}, method="maskige")  # oracle: left out
    )
    table = cross_domain(frame)
    assert list(table.columns) == ["Trained on", "Budget (iterations x batch)", "blurred", "shifted", "h.mean", "in-domain"]
    assert table.loc["gss-ff", "Budget (iterations x batch)"] == "–"  # no budget column in these rows
    assert list(table.index) == ["gss-ff"]
    # h.mean per seed: 1/3 and 1/2 -> mean 41.7; the bootstrap CI of a 2-seed mean spans the two
    assert table.loc["gss-ff", "h.mean"] == "41.7 [33.3, 50.0]"
    assert table.loc["gss-ff", "in-domain"] == "80.0 [70.0, 90.0]"
    assert table.loc["gss-ff", "Trained on"] == "clean"


def test_main_and_cross_domain_tables_show_the_budget():
    frame = pd.DataFrame(rows("gss-ft", 0, {"clean": 0.8, "shifted": 0.4}) + rows("dlv3", 0, {"clean": 0.9, "shifted": 0.5}, method="deeplabv3plus"))
    frame["model_options"] = "{}"
    frame["budget"] = ["100 x 16 (+ gss-ff 300 x 16)" if e == "gss-ft" else "300 x 16" for e in frame.experiment]
    walls = pd.DataFrame([dict(frame[frame.experiment == e].iloc[0], run_id=f"{e}-s0", metric="train_wall_seconds", value=w)
                          for e, w in (("gss-ft", 20.0), ("dlv3", 70.4))])
    frame = pd.concat([frame.assign(run_id=[f"{e}-s0" for e in frame.experiment]), walls], ignore_index=True)
    from genseg.report.tables import main_results

    main = main_results(frame)
    assert main.loc["GSS-FF (gss-ft)", "Budget (iterations x batch)"] == "100 x 16 (+ gss-ff 300 x 16)"
    assert main.loc["DeepLabV3+ (dlv3)", "Budget (iterations x batch)"] == "300 x 16"
    assert main.loc["DeepLabV3+ (dlv3)", "Train wall (s)"] == "70"
    assert cross_domain(frame).loc["gss-ft", "Budget (iterations x batch)"] == "100 x 16 (+ gss-ff 300 x 16)"


def test_cross_domain_table_without_unseen_domains_says_so():
    frame = pd.DataFrame(rows("gss-ff", 0, {"clean": 0.9}))
    assert "no unseen test domains" in cross_domain(frame).index[0]


def test_tidy_rows_hold_no_machine_specific_run_paths(tmp_path):
    """Model options naming another run's files are written with ``{runs}``, as in the config."""
    from genseg.report.aggregate import portable

    runs = tmp_path / "results" / "runs"
    record = {"run_id": "gss-ff-s0", "model": {"posterior_file": f"{runs}/vqvae-d4-s0/model.safetensors", "dim": 64}}
    out = portable(record, runs / "gss-ff-s0" / "eval" / "test" / "clean" / "default.json")
    assert out["model"] == {"posterior_file": "{runs}/vqvae-d4-s0/model.safetensors", "dim": 64}
    assert record["model"]["posterior_file"].startswith(str(runs))  # the input is left as it was


def test_miou_by_domain_shows_in_domain_grid_ratios_beside_miou():
    grid = [dict(r, metric=f"grid_ratio_{p}", value=v) for p, values in ((8, (1.5, 2.5)), (16, (1.2, float("nan"))))
            for r, v in zip(rows("gss-ff", 0, {"clean": 0}) + rows("gss-ff", 1, {"clean": 0}), values)]
    frame = pd.DataFrame(rows("gss-ff", 0, {"clean": 0.9, "shifted": 0.5}) + rows("gss-ff", 1, {"clean": 0.7, "shifted": 0.5})
                         + rows("deeplab", 0, {"clean": 0.8, "shifted": 0.6}, method="deeplabv3plus") + grid)
    table = miou_by_domain(frame)
    assert list(table.columns) == ["clean (in-domain)", "shifted", "grid ratio, 8 px", "grid ratio, 16 px"]
    assert table.loc["gss-ff", "grid ratio, 8 px"] == "2.00" and table.loc["gss-ff", "grid ratio, 16 px"] == "1.20"
    assert table.loc["deeplab", "grid ratio, 8 px"] == "–"  # results written before the grid ratio
    assert table.loc["gss-ff", "clean (in-domain)"] == "80.0 [70.0, 90.0]"


def test_tidy_rows_carry_the_grid_ratios():
    from genseg.report.aggregate import tidy_rows

    record = {"run_id": "a-s0", "experiment": "a", "method": "deeplabv3plus", "provenance": {"seed": 0}, "dataset": "synthetic",
              "train_domains": ["clean"], "split": "test", "domains": ["clean"], "predict_options": {}, "model": {}, "nfe": None,
              "classes": ["x"], "scores": {"miou": 0.5, "macc": 0.6, "aacc": 0.7, "iou": [0.5]}, "images_per_s": 1.0,
              "peak_memory_mb": 1.0, "grid_ratio": {"8": 1.25, "16": None}}
    values = {r["metric"]: r["value"] for r in tidy_rows(record)}
    assert values["grid_ratio_8"] == 1.25 and pd.isna(values["grid_ratio_16"]) and values["miou"] == 0.5
    del record["grid_ratio"]  # written before it: no rows
    assert not any(r["metric"].startswith("grid_ratio") for r in tidy_rows(record))


def test_ablation_table_shows_the_validation_mIoU_designs_are_chosen_by():
    from genseg.report.tables import ablation_table

    frame = pd.DataFrame(rows("base", 0, {"clean": 0.7}) + rows("base+a=x", 0, {"clean": 0.6}))
    curves = pd.DataFrame([
        {"run_id": "base-s0", "experiment": "base", "step": 100, "val_miou": 0.5},
        {"run_id": "base-s0", "experiment": "base", "step": 300, "val_miou": 0.72},  # the last point counts
        {"run_id": "base+a=x-s0", "experiment": "base+a=x", "step": 300, "val_miou": 0.61},
    ])
    rows_ = [{"label": "base", "experiment": "base"}, {"label": "x", "experiment": "base+a=x"}]
    table = ablation_table(frame, {"axis": "a"}, rows_, curves=curves)
    assert list(table.columns) == ["val mIoU (selection)", "mIoU (reproduced)"]
    assert table.loc["base"].tolist() == ["72.0", "70.0"] and table.loc["x"].tolist() == ["61.0", "60.0"]
    assert list(ablation_table(frame, {"axis": "a"}, rows_).columns) == ["mIoU (reproduced)"]  # no curves: test only


def test_report_tables_read_the_configs_evaluation_split():
    """A paper config evaluates on val: a tidy CSV with only val rows gives full tables, captioned val."""
    from conftest import REPO

    from genseg.report.build import table_blocks
    from genseg.report.reference import load_reported

    frame = pd.read_csv(REPO / "results/reference/default/metrics.csv")
    frame = frame[frame.split == "test"].assign(split="val")
    paired = pd.DataFrame(columns=["a", "b", "seed", "split", "domain", "delta", "ci_low", "ci_high", "p_value", "n_images"])
    reported = load_reported(None)
    [(main, caption)] = table_blocks("main_results", frame, reported, paired, split="val")
    ours = main[main["mIoU reproduced"] != "–"]
    assert len(ours) >= 7 and "FlowSeg (flowseg-kronecker-reshaped)" in ours.index
    assert "in-domain val mIoU" in caption and "Split: val." in caption
    [(by_domain, caption)] = table_blocks("miou_by_domain", frame, reported, paired, split="val")
    assert "deeplabv3plus-r18" in by_domain.index and caption.startswith("Val mIoU")
    [(empty, _)] = table_blocks("main_results", frame, reported, paired, split="test")  # the old default: nothing
    assert (empty["mIoU reproduced"] == "–").all()
