"""Provenance in the aggregated results (commit, dirty flag, config hash per run), and `genseg publish`,
which refuses results from a dirty tree unless told otherwise (and then records it)."""

import json
import subprocess

import pandas as pd
import pytest

from genseg.cli import main
from genseg.report.aggregate import COLUMNS, group_provenance, pair_provenance, provenance_columns, tidy_rows
from genseg.report.publish import PublishError, publish

CLEAN, OTHER = "a" * 40, "b" * 40


def record(commit=CLEAN, train_commit=CLEAN, run_id="a-s0", seed=0):
    return {"run_id": run_id, "experiment": run_id.rsplit("-s", 1)[0], "method": "deeplabv3plus", "dataset": "synthetic",
            "provenance": {"seed": seed, "git_commit": commit, "config_hash": "0123abcd"},
            "budget": {"iterations": 3, "batch_size": 2, "train_wall_seconds": 1.0, "upstream": [], "train_git_commit": train_commit},
            "train_domains": ["clean"], "split": "test", "domains": ["clean"], "predict_options": {}, "model": {}, "nfe": None,
            "classes": ["x"], "scores": {"miou": 0.5, "macc": 0.6, "aacc": 0.7, "iou": [0.5]}, "images_per_s": 1.0, "peak_memory_mb": 1.0}


@pytest.mark.parametrize("commit, train_commit, expected", [
    (CLEAN, CLEAN, {"commit": CLEAN, "train_commit": CLEAN, "dirty": False}),
    (CLEAN, OTHER + "+dirty", {"commit": CLEAN, "train_commit": OTHER, "dirty": True}),  # trained from a dirty tree
    (CLEAN + "+dirty", CLEAN, {"commit": CLEAN, "train_commit": CLEAN, "dirty": True}),  # evaluated from one
    ("unknown", "unknown", {"commit": "unknown", "train_commit": "unknown", "dirty": False}),
])
def test_provenance_columns(commit, train_commit, expected):
    assert provenance_columns(record(commit, train_commit)) == {**expected, "config_hash": "0123abcd"}


def test_every_tidy_row_carries_the_provenance():
    rows = tidy_rows(record(train_commit=OTHER + "+dirty"))
    assert {"commit", "train_commit", "dirty", "config_hash"} <= set(COLUMNS)
    assert all(r["dirty"] is True and r["train_commit"] == OTHER and r["config_hash"] == "0123abcd" for r in rows)
    old = record()
    del old["budget"]["train_git_commit"]  # an evaluation written before the training commit was recorded
    assert tidy_rows(old)[0]["train_commit"] == "unknown"


def test_summary_groups_carry_commits_and_dirty():
    frame = pd.DataFrame(tidy_rows(record(run_id="a-s0")) + tidy_rows(record(CLEAN, OTHER + "+dirty", run_id="a-s1", seed=1))
                         + tidy_rows(record(run_id="b-s0")))
    prov = group_provenance(frame[frame.metric == "miou"], ["experiment", "metric"]).set_index("experiment")
    assert prov.loc["a", "commits"] == f"{CLEAN} {OTHER}" and bool(prov.loc["a", "dirty"])
    assert prov.loc["b", "commits"] == CLEAN and not prov.loc["b", "dirty"]


def test_paired_rows_say_whether_either_run_was_dirty():
    frame = pd.DataFrame(tidy_rows(record(run_id="a-s0")) + tidy_rows(record(CLEAN, OTHER + "+dirty", run_id="b-s0"))
                         + tidy_rows(record(run_id="c-s0")))
    paired = pd.DataFrame([{"a": "a", "b": "b", "seed": 0, "delta": 0.1}, {"a": "a", "b": "c", "seed": 0, "delta": 0.2}])
    assert pair_provenance(paired, frame)["dirty"].tolist() == [True, False]
    frame = pd.concat([frame, pd.DataFrame(tidy_rows(record(CLEAN, OTHER + "+dirty", run_id="c-s1", seed=1)))])
    pooled = pd.DataFrame([{"a": "a", "b": "c", "seed": "all", "delta": 0.2}, {"a": "a", "b": "c", "seed": "0", "delta": 0.2}])
    assert pair_provenance(pooled, frame)["dirty"].tolist() == [True, False]  # over seeds: any run of either


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    """A git work tree with one commit: a tracked file and an empty reference folder."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    git(root, "config", "user.email", "t@example.com")
    git(root, "config", "user.name", "t")
    (root / "tracked.txt").write_text("one\n")
    git(root, "add", "tracked.txt")
    git(root, "commit", "-qm", "init")
    return root


def results(folder, *records):
    folder.mkdir(parents=True)
    pd.DataFrame([row for r in records for row in tidy_rows(r)], columns=COLUMNS).to_csv(folder / "metrics.csv", index=False)
    (folder / "summary.csv").write_text("experiment\na\n")
    return folder


def test_publish_copies_clean_results_and_records_them(repo, tmp_path):
    src = results(tmp_path / "results/default", record(), record(run_id="b-s0"))
    written = publish(src, repo / "results/reference/new")
    dest = repo / "results/reference/new"
    assert written["files"] == ["metrics.csv", "summary.csv"] and written["overridden"] == []
    assert (dest / "metrics.csv").read_text() == (src / "metrics.csv").read_text()
    assert json.loads((dest / "publish.json").read_text())["tree_commit"] == git(repo, "rev-parse", "HEAD")
    assert written["source"] == "default"  # outside a work tree: the folder's name, no machine path
    inside = results(repo / "results/default", record())
    assert publish(inside, repo / "results/reference/again")["source"] == "results/default"  # relative to the tree
    publish(src, dest)  # publishing again: the destination's own changes do not count as a dirty tree


def test_publish_refuses_runs_from_a_dirty_tree(repo, tmp_path, capsys):
    src = results(tmp_path / "results/default", record(), record(CLEAN, OTHER + "+dirty", run_id="b-s0"), record("unknown", run_id="c-s0"))
    dest = repo / "results/reference/new"
    with pytest.raises(PublishError, match=r"(?s)run b-s0: trained or evaluated from a dirty tree.*run c-s0: no commit"):
        publish(src, dest)
    assert not dest.exists()
    assert main(["publish", str(src), str(dest)]) == 2
    assert "refusing to publish" in capsys.readouterr().err and not dest.exists()
    # the override publishes and records what it overrode
    assert main(["publish", str(src), str(dest), "--allow-dirty"]) == 0
    recorded = json.loads((dest / "publish.json").read_text())
    assert recorded["allow_dirty"] is True and any("b-s0" in reason for reason in recorded["overridden"])


def test_publish_refuses_a_dirty_work_tree(repo, tmp_path):
    src = results(tmp_path / "results/default", record())
    (repo / "tracked.txt").write_text("two\n")
    with pytest.raises(PublishError, match=r"has uncommitted changes: M tracked.txt"):
        publish(src, repo / "results/reference/new")
    assert publish(src, repo / "results/reference/new", allow_dirty=True)["overridden"]


def test_publish_refuses_metrics_without_provenance_columns(repo, tmp_path):
    src = tmp_path / "old"
    src.mkdir()
    pd.DataFrame([{"run_id": "a-s0", "metric": "miou", "value": 0.5}]).to_csv(src / "metrics.csv", index=False)
    with pytest.raises(PublishError, match=r"no provenance columns \['commit', 'train_commit', 'dirty', 'config_hash'\]"):
        publish(src, repo / "results/reference/new")
    with pytest.raises(FileNotFoundError, match=r"nothing/metrics.csv: missing"):
        publish(tmp_path / "nothing", repo / "results/reference/new")
