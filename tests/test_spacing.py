"""The centroid-spacing study's report: points, table, correlations and figure from a fake tidy frame."""

import json

import numpy as np
import pandas as pd
import pytest

from genseg.encodings import encoding_min_distance
from genseg.report import spacing
from genseg.report.aggregate import COLUMNS
from genseg.report.families import Inputs, report_files
from genseg.report.families.ablations import definitions
from genseg.report.stats import correlation

ABLATION = {"name": "spacing", "feeds": "spacing_study", "figure": "spacing", "description": "Spacing: test", "axes": ["a", "b"]}
ENCODINGS = ("kronecker", "r3", "grid", "random")


def evaluation(experiment, encoding, n, miou):
    """The miou and per-class iou rows of one in-domain test evaluation of a run with ``n`` classes."""
    key = {"run_id": f"{experiment}-s0", "experiment": experiment, "method": "any", "seed": 0, "dataset": "synthetic",
           "train_domains": "clean", "split": "test", "domain": "clean", "in_domain": True, "variant": "default",
           "predict_options": "{}", "model_options": json.dumps({"encoding": encoding, "encoding_seed": 0}),
           "budget": "150 x 16"}
    return [dict(key, metric="miou", value=miou)] + [dict(key, metric=f"iou/c{i}", value=miou) for i in range(n)]


def study():
    """Per N, mIoU rising with min distance (test) and falling (val), so within-N correlations are +1 / -1."""
    frame, curves, rows = [], [], []
    for n in (12, 40, 150):
        order = sorted(ENCODINGS, key=lambda e: encoding_min_distance(e, n))
        for rank, encoding in enumerate(order):
            experiment = f"base+spacing={encoding}_{n}"
            frame += evaluation(experiment, encoding, n, 0.8 - n / 500 + 0.01 * rank)
            curves.append({"run_id": f"{experiment}-s0", "experiment": experiment, "step": 150, "val_miou": 0.5 - 0.01 * rank})
            curves.append({"run_id": f"{experiment}-s0", "experiment": experiment, "step": 50, "val_miou": 0.0})
            rows.append({"ablation": "spacing", "label": f"{encoding} {n}", "experiment": experiment,
                         "settings": {"a": encoding, "b": n}})
    rows.append({"ablation": "spacing", "label": "bits 12", "experiment": "base+spacing=bits_12", "settings": {}})  # no results
    return pd.DataFrame(frame, columns=COLUMNS), pd.DataFrame(curves), rows


def test_points_read_encoding_classes_and_both_mious():
    frame, curves, rows = study()
    data = spacing.points(frame, curves, rows)
    assert len(data) == 12 and set(data.N) == {12, 40, 150}
    first = data.iloc[0]
    assert first.variant == rows[0]["label"] and first.val_miou == pytest.approx(0.5)  # the last validation
    for row in data.itertuples():
        assert row.min_distance == pytest.approx(encoding_min_distance(row.encoding, row.N))
    assert data[data.N == 150].set_index("encoding").min_distance.round(3).to_dict() == {
        "random": 0.055, "kronecker": 0.154, "r3": 0.276, "grid": 0.4}


def test_table_and_correlations():
    data = spacing.points(*study())
    table = spacing.table(data)
    assert list(table.columns) == ["N", "min distance", "val mIoU", "test mIoU"] and table.index.name == "Encoding"
    assert table.iloc[0].tolist() == [12, "0.321", "50.0", "77.6"]  # N = 12's smallest distance: random
    corr = spacing.correlations(data, n_resamples=200)
    assert list(corr.index) == ["N = 12", "N = 40", "N = 150", "pooled", "within N"]
    assert corr.loc["N = 40", "test Spearman"].startswith("+1.00") and corr.loc["N = 40", "val Spearman"].startswith("-1.00")
    within = float(corr.loc["within N", "test Spearman"].split()[0])  # centred per N: monotone within N, not across
    assert 0.9 < within < 1 and corr.loc["within N", "n"] == 12
    assert float(corr.loc["pooled", "test Spearman"].split()[0]) > 0  # N lowers both distance and mIoU


def test_correlation_matches_scipy_and_needs_three_points():
    from scipy import stats

    x, y = np.array([0.1, 0.4, 0.2, 0.9, 0.5]), np.array([1.0, 3.0, 2.5, 2.0, 6.0])
    c = correlation(x, y, n_resamples=500)
    assert c["spearman"] == pytest.approx(stats.spearmanr(x, y).statistic)
    assert c["pearson"] == pytest.approx(stats.pearsonr(x, y).statistic)
    assert -1 <= c["pearson_low"] <= c["pearson"] <= c["pearson_high"] <= 1
    assert np.isnan(correlation([1, 2], [2, 1])["spearman"]) and correlation([1, 2, np.nan], [2, 1, 3])["n"] == 2


def test_the_family_lists_and_writes_the_table_and_figure(tmp_path):
    files = report_files([ABLATION])
    assert files["spacing_study"] == ("md", "tex", "png", "pdf")
    frame, curves, rows = study()
    inputs = Inputs(frame=frame, reported=pd.DataFrame(), paired=pd.DataFrame(), curves=curves,
                    ablations={"ablations": [ABLATION], "rows": rows})
    table, figure = definitions([ABLATION])
    blocks = table.blocks(inputs)
    assert len(blocks) == 2 and "Budget: 150 x 16" in blocks[0][1] and "Split: test" in blocks[0][1]
    paths = figure.draw(inputs, tmp_path / "spacing_study")
    assert [p.name for p in paths] == ["spacing_study.png", "spacing_study.pdf"] and all(p.stat().st_size > 5000 for p in paths)
    empty = Inputs(frame=frame.iloc[:0], reported=pd.DataFrame(), paired=pd.DataFrame(), curves=curves.iloc[:0],
                   ablations={"ablations": [ABLATION], "rows": rows})
    assert table.blocks(empty)[0][0].empty
    figure.draw(empty, tmp_path / "empty")
