import json

import yaml

from genseg.cli import main


def test_cli_train_evaluate_aggregate_report(tmp_path, tiny_synthetic, tiny_config, capsys):
    cfg = tiny_config(tiny_synthetic, optim__iterations=2)
    run = tmp_path / "runs" / "tiny-s0"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    assert main(["train", str(run / "config.yaml")]) == 0
    for domain in ("clean", "shifted"):
        out = run / "eval" / f"test_{domain}.json"
        assert main(["evaluate", str(run), "--split", "test", "--domains", domain, "--out", str(out)]) == 0
    csv = tmp_path / "metrics.csv"
    summary = tmp_path / "summary.csv"
    paired_csv = tmp_path / "paired.csv"
    assert main(["aggregate", *map(str, sorted((run / "eval").glob("*.json"))), "--out", str(csv), "--summary-out", str(summary),
                 "--pairs", json.dumps([["tiny", "tiny"]]), "--paired-out", str(paired_csv)]) == 0
    # every row carries the run's provenance: the commit it was trained from is the one it was evaluated from
    import pandas as pd

    tidy, seeds = pd.read_csv(csv, dtype={"commit": str, "train_commit": str}), pd.read_csv(summary, dtype={"commits": str})
    assert (tidy["commit"] == tidy["train_commit"]).all() and tidy["config_hash"].nunique() == 1
    assert set(seeds["commits"]) == set(tidy["commit"]) and "dirty" in seeds.columns
    paired = pd.read_csv(paired_csv)
    assert len(paired) == 2 and (paired["dirty"] == tidy["dirty"].any()).all()  # one row per test domain
    assert main(["report", "--metrics", str(csv), "--out-dir", str(tmp_path / "report")]) == 0
    assert "clean (in-domain)" in (tmp_path / "report" / "miou_by_domain.md").read_text()


def test_cli_reports_config_errors_cleanly(tmp_path, capsys):
    bad = tmp_path / "c.yaml"
    bad.write_text("optim: {iteratons: 3}\n")
    assert main(["train", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'optim.iteratons'" in err and "did you mean 'iterations'" in err


def test_write_config_checks_json(tmp_path, capsys):
    assert main(["write-config", "--json", json.dumps({"seed": 3}), "--out", str(tmp_path / "c.yaml")]) == 0
    assert yaml.safe_load((tmp_path / "c.yaml").read_text())["seed"] == 3
    assert main(["write-config", "--json", json.dumps({"seeed": 3}), "--out", str(tmp_path / "d.yaml")]) == 2
    assert not (tmp_path / "d.yaml").exists()
