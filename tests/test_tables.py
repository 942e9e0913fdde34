"""Report tables computed from a tidy frame with known numbers."""

import pandas as pd
import pytest

from genseg.report.tables import cross_domain, harmonic_mean


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
    assert list(table.columns) == ["Trained on", "blurred", "shifted", "h.mean", "in-domain"]
    assert list(table.index) == ["gss-ff"]
    # h.mean per seed: 1/3 and 1/2 -> mean 41.7; the bootstrap CI of a 2-seed mean spans the two
    assert table.loc["gss-ff", "h.mean"] == "41.7 [33.3, 50.0]"
    assert table.loc["gss-ff", "in-domain"] == "80.0 [70.0, 90.0]"
    assert table.loc["gss-ff", "Trained on"] == "clean"


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
