"""``genseg publish RESULTS_DIR DEST``: copy a workflow's aggregated results (``results/<config>/``)
into a folder meant to be committed (``results/reference/<name>/``), refusing results that cannot
be traced to a commit.

Refused, with the reasons listed: a run whose provenance (``metrics.csv``'s ``dirty``) says it was
trained or evaluated from a tree with uncommitted changes, a run with no commit (``unknown``), a
``metrics.csv`` written before the provenance columns, and a dirty work tree holding ``DEST`` (its
changes outside ``DEST``). ``allow_dirty`` publishes anyway and records the reasons it overrode in
``DEST/publish.json``, which every publish writes (source, time, the tree's commit).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd

from ..io import atomic_path
from .aggregate import PROVENANCE_COLUMNS

REQUIRED = ("metrics.csv",)
OPTIONAL = ("summary.csv", "curves.csv", "paired.csv", "samples.npz", "ablations.json", "uncertainty.csv", "uncertainty_samples.npz")


class PublishError(Exception):
    """Results that may not be published as they are (the message lists why)."""


def _git(folder: Path, *args: str) -> str | None:
    """``git -C folder args`` output, or None when git or a work tree is absent."""
    try:
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=30,
                              check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def tree_state(dest: Path) -> dict:
    """The git work tree that will hold ``dest``: its HEAD and its tracked changes outside ``dest``
    (``None`` values outside a work tree)."""
    folder = next(p for p in (dest, *dest.parents) if p.exists())
    top = _git(folder, "rev-parse", "--show-toplevel")
    if top is None:
        return {"tree": None, "commit": None, "changes": None}
    inside = dest.resolve().is_relative_to(Path(top).resolve())
    outside = [f":(exclude){dest.resolve().relative_to(Path(top).resolve())}"] if inside else []
    status = _git(Path(top), "status", "--porcelain", "--untracked-files=no", "--", ".", *outside)
    return {"tree": top, "commit": _git(Path(top), "rev-parse", "HEAD"), "changes": status.splitlines() if status else []}


def run_problems(metrics: Path) -> list[str]:
    """Why the runs in ``metrics`` (a ``metrics.csv``) cannot be traced to a clean commit."""
    frame = pd.read_csv(metrics, dtype={"commit": str, "train_commit": str})
    missing = [c for c in PROVENANCE_COLUMNS if c not in frame.columns]
    if missing:
        return [f"{metrics}: no provenance columns {missing} (aggregated before they existed: run `genseg aggregate` again)"]
    runs = frame.drop_duplicates("run_id").set_index("run_id")
    problems = [f"run {r}: trained or evaluated from a dirty tree (commit {runs.at[r, 'commit']}, trained at "
                f"{runs.at[r, 'train_commit']})" for r in runs.index[runs["dirty"].astype(str).str.lower() == "true"]]
    unknown = (runs["commit"].fillna("unknown") == "unknown") | (runs["train_commit"].fillna("unknown") == "unknown")
    problems += [f"run {r}: no commit recorded (unknown)" for r in runs.index[unknown]]
    return problems


def source_label(results: Path) -> str:
    """Where the results came from, without this machine's paths: relative to the root of the git work
    tree holding them (a worktree or clone of the repository: ``results/default``), else the folder name."""
    top = _git(results, "rev-parse", "--show-toplevel")
    if top:
        try:
            return str(results.resolve().relative_to(Path(top).resolve()))
        except ValueError:
            pass
    return results.name


def publish(results: str | Path, dest: str | Path, allow_dirty: bool = False) -> dict:
    """Copy the aggregated files of ``results`` into ``dest`` and write ``dest/publish.json``;
    returns what it wrote there. Raises :class:`PublishError` listing every problem found
    (unless ``allow_dirty``) and ``FileNotFoundError`` naming a missing required file."""
    results, dest = Path(results), Path(dest)
    for name in REQUIRED:
        if not (results / name).is_file():
            raise FileNotFoundError(f"{results / name}: missing (publish copies the files `genseg aggregate` writes)")
    tree = tree_state(dest)
    problems = run_problems(results / "metrics.csv")
    if tree["changes"]:
        problems.append(f"work tree {tree['tree']} has uncommitted changes: " + "; ".join(tree["changes"][:10]))
    if problems and not allow_dirty:
        raise PublishError(f"refusing to publish {results} to {dest}:\n  " + "\n  ".join(problems)
                           + "\n(commit first and rerun the runs, or pass --allow-dirty: the reasons are then recorded in publish.json)")
    dest.mkdir(parents=True, exist_ok=True)
    copied = [name for name in REQUIRED + OPTIONAL if (results / name).is_file()]
    for name in copied:
        shutil.copy2(results / name, dest / name)
    record = {
        "source": source_label(results), "files": copied, "published_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tree_commit": tree["commit"], "allow_dirty": allow_dirty, "overridden": problems,
    }
    with atomic_path(dest / "publish.json") as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")
    return record
