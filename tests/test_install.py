"""A non-editable install is self-sufficient: `genseg report` from the installed package, run
outside the repository on a copy of the committed results, writes the tables (the reported
numbers, taxonomies, mappings and the weights manifest are package data, not repository files)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RESULTS = ("metrics.csv", "curves.csv", "ablations.json", "paired.csv", "samples.npz")
PACKAGE_DATA = (
    "genseg/report/data/paper_reported.csv",
    "genseg/weights_manifest.yaml",
    "genseg/data/mappings/camvid-to-cityscapes.csv",
    "genseg/data/taxonomies/mseg/universal.csv",
)


@pytest.mark.slow
def test_installed_package_writes_the_report_outside_the_repository(tmp_path):
    pytest.importorskip("setuptools", reason="the install builds with --no-build-isolation: it needs setuptools here")
    src = tmp_path / "src"  # a copy, so the build leaves nothing (build/, *.egg-info) in the checkout
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "genseg", src / "genseg", ignore=shutil.ignore_patterns("__pycache__"))
    site = tmp_path / "site"
    # No dependencies and no build isolation: torch, pandas ... come from this environment.
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(site), str(src)], check=True, capture_output=True, text=True)
    for rel in PACKAGE_DATA:
        assert (site / rel).is_file(), f"{rel} is not package data of the installed genseg"

    results, work, out = tmp_path / "results", tmp_path / "work", tmp_path / "work/report"
    shutil.copytree(REPO / "results/reference/default", results)
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    where = subprocess.run([sys.executable, "-c", "import genseg; print(genseg.__file__)"],
                           cwd=work, env=env, check=True, capture_output=True, text=True).stdout.strip()
    assert Path(where).is_relative_to(site), f"imported genseg from {where}, not from the install"

    args = [f"--{name.split('.')[0]}={results / name}" for name in RESULTS]
    run = subprocess.run([str(site / "bin/genseg"), "report", *args, f"--out-dir={out}"],
                         cwd=work, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    for name in ("main_results.md", "main_results.tex", "cross_domain.md", "gss_prior.md", "gss_reconstruction.md",
                 "flowseg_steps.png", "paired_tests.md"):
        assert (out / name).stat().st_size > 0, name
    assert "reported" in (out / "main_results.md").read_text()
    assert "40.64" in (out / "gss_prior.md").read_text()  # GSS Table 3's first row, from the packaged CSV
