"""The paper-reported numbers: the CSV matches methods.md and loads with kind "reported"."""

import csv
import re
from collections import Counter
from pathlib import Path

import pytest

from genseg.report.reference import (
    COLUMNS,
    REFERENCE_CSV,
    TABLES,
    load_reported,
    reported,
)

REPO = Path(__file__).resolve().parents[1]
METHODS_MD = REPO.parent / "shared/docs/methods.md"
# A result is a decimal number standing alone: this skips names (R101, MiT-B2, HRNet-W48, SD1.5,
# SD2.1, IN-1k, 160k, d=1/8), step counts ("1: 43.47") and table numbers (Table 1).
RESULT = re.compile(r"(?<![\w./=])\d+\.\d+(?![\w/]|\.\d)")


def section_numbers() -> list[str]:
    """The result numbers, as printed, in methods.md's "Numbers the papers report" section."""
    if not METHODS_MD.exists():
        pytest.skip(f"{METHODS_MD} is absent: cannot compare the CSV with methods.md")
    text = METHODS_MD.read_text()
    start = text.index("## Numbers the papers report")
    end = text.find("\n## ", start + 1)
    return RESULT.findall(text[start : end if end > 0 else None])


def raw_rows() -> list[dict]:
    with open(REFERENCE_CSV, newline="") as f:
        return list(csv.DictReader(f))


def test_csv_loads_and_is_labelled_reported():
    frame = load_reported()
    assert list(frame.columns) == [*COLUMNS, "kind"]
    assert len(frame) > 0
    assert (frame["kind"] == "reported").all()
    assert set(frame["table"]) == set(TABLES)
    assert set(frame["paper"]) == {"FlowSeg", "GSS"}
    assert set(frame["split"]) == {"val"}
    assert set(frame["metric"]) <= {"mIoU", "mAcc", "h.mean mIoU"}
    assert frame["source"].str.startswith("methods.md:").all()


def test_row_count_and_values_match_methods_md():
    numbers = section_numbers()
    assert len(numbers) == 90  # the hand count: FlowSeg 29, GSS 61
    rows = raw_rows()
    assert len(rows) == len(numbers)
    # every number printed in the section appears once in the CSV, exactly as printed
    assert Counter(r["value"] for r in rows) == Counter(numbers)


def test_table_sizes():
    sizes = load_reported().groupby("table").size().to_dict()
    assert sizes == {
        "flowseg_main_ade20k": 6, "flowseg_main_cocostuff": 5, "flowseg_steps": 8, "flowseg_objective": 4,
        "flowseg_repa": 2, "flowseg_distance": 4, "gss_main_cityscapes": 4, "gss_main_ade20k": 4,
        "gss_cross_domain": 4 * 7 + 3, "gss_reconstruction": 6, "gss_posterior": 8, "gss_prior": 8,
    }


def one(frame, **match) -> float:
    sel = frame
    for key, value in match.items():
        sel = sel[sel[key] == value]
    assert len(sel) == 1, match
    return float(sel["value"].iloc[0])


def test_specific_rows():
    frame = load_reported()
    assert one(frame, table="flowseg_main_ade20k", method="FlowSeg", dataset="ADE20K") == 47.1
    assert one(frame, table="gss_cross_domain", method="GSS-FT-W", backbone="Swin-L", metric="h.mean mIoU") == 61.9
    assert one(frame, table="flowseg_steps", setting="10") == 47.1
    assert one(frame, table="gss_prior", method="d=1/4 + auxiliary", metric="mAcc") == 56.11
    assert one(frame, table="flowseg_distance", setting="log") == 29.75
    assert set(reported("flowseg_distance", frame)["setting"]) == {"sqrt", "linear", "inverse", "log"}
    steps = reported("flowseg_steps", frame)
    assert sorted(int(s) for s in steps["setting"]) == [1, 2, 5, 10, 20, 30, 50, 100]
    assert steps["source"].str.contains("secondary source").all()


def test_filter_by_table():
    frame = load_reported()
    sel = reported("gss_posterior", frame)
    assert len(sel) == 8 and (sel["table"] == "gss_posterior").all()
    assert len(reported("flowseg_repa")) == 2
    with pytest.raises(ValueError, match="known: .*gss_prior"):
        reported("no_such_table", frame)


def write_broken(path: Path, drop: str | None = None, value: str | None = None) -> Path:
    rows = raw_rows()[:3]
    if value is not None:
        rows[1]["value"] = value
    fields = [c for c in COLUMNS if c != drop]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_missing_column_names_file(tmp_path):
    path = write_broken(tmp_path / "missing.csv", drop="metric")
    with pytest.raises(ValueError, match=r"missing\.csv.*missing columns \['metric'\]"):
        load_reported(path)


def test_extra_column_names_file(tmp_path):
    path = tmp_path / "extra.csv"
    path.write_text(",".join([*COLUMNS, "note"]) + "\n" + ",".join(["x"] * 8 + ["1.0", "", "s", "n"]) + "\n")
    with pytest.raises(ValueError, match=r"extra\.csv.*extra columns \['note'\]"):
        load_reported(path)


def test_non_numeric_value_names_file_and_row(tmp_path):
    path = write_broken(tmp_path / "bad_value.csv", value="n/a")
    with pytest.raises(ValueError, match=r"bad_value\.csv: row 2 .*non-numeric value 'n/a'"):
        load_reported(path)
