"""The paper-reported numbers: the packaged CSV equals an independent transcription of
methods.md (kept below, typed from ../shared/docs/methods.md, never generated from the CSV),
cites its papers, and loads with kind "reported"."""

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

# ---- The independent transcription: one entry a number, (table id, method, backbone, dataset,
# metric, setting, value as printed), typed from methods.md's "Numbers the papers report".
ADE, COCO, CITY, MSEG = "ADE20K", "COCO-Stuff-164k", "Cityscapes", "MSeg cross-domain"


def _flowseg() -> list[tuple]:
    rows = [("flowseg_main_ade20k", m, b, ADE, "mIoU", "", v) for m, b, v in [
        ("DeepLabV3+", "R101", "44.1"), ("SegFormer", "MiT-B2", "46.5"), ("MaskFormer", "Swin-T", "46.7"),
        ("InstructDiffusion", "unknown", "33.6"), ("PixWizard", "unknown", "32.8"), ("FlowSeg", "PixNerd", "47.1")]]
    rows += [("flowseg_main_cocostuff", m, b, COCO, "mIoU", "", v) for m, b, v in [
        ("DeepLabV3+", "R50", "38.4"), ("OCRNet", "HRNet-W48", "42.3"), ("SegFormer", "MiT-B2", "44.6"),
        ("SymmFlow", "unknown", "39.6"), ("FlowSeg", "PixNerd", "44.9")]]
    steps = "1: 43.47 · 2: 45.85 · 5: 46.82 · 10: 47.1 · 20: 46.78 · 30: 46.59 · 50: 46.13 · 100: 45.78"
    rows += [("flowseg_steps", "FlowSeg", "PixNerd", ADE, "mIoU", s, v)
             for s, v in (item.split(": ") for item in steps.split(" · "))]
    rows += [("flowseg_objective", m, "PixNerd", ADE, "mIoU", s, v) for m, s, v in [
        ("v-pred annealed", "annealed", "24.65"), ("v-pred static", "static", "28.15"),
        ("v-pred static + ignore masking", "static", "29.75"), ("x-pred static + masking", "static", "29.06")]]
    rows += [("flowseg_repa", "without REPA", "PixNerd", ADE, "mIoU", "false", "29.8"),
             ("flowseg_repa", "with REPA", "PixNerd", ADE, "mIoU", "true", "32.7")]
    rows += [("flowseg_distance", m, "PixNerd", ADE, "mIoU", s, v) for m, s, v in [
        ("sqrt(d)", "sqrt", "28.32"), ("d", "linear", "27.15"), ("1/(d+eps)", "inverse", "29.12"),
        ("-log(d+eps)", "log", "29.75")]]
    return rows


def _gss() -> list[tuple]:
    rows = [("gss_main_cityscapes", m, b, CITY, "mIoU", "", v) for m, b, v in [
        ("GSS-FF", "R101", "77.76"), ("GSS-FT-W", "R101", "78.46"),
        ("GSS-FF", "Swin-L", "78.90"), ("GSS-FT-W", "Swin-L", "80.05")]]
    rows += [("gss_main_ade20k", m, "Swin-L", ADE, metric, "", v) for m, metric, v in [
        ("GSS-FF", "mIoU", "46.29"), ("GSS-FT-W", "mIoU", "48.54"),
        ("GSS-FF", "mAcc", "57.84"), ("GSS-FT-W", "mAcc", "58.94")]]
    targets = ["PASCAL VOC", "PASCAL Context", "CamVid", "WildDash", "KITTI", "ScanNet", MSEG]
    for method, backbone, line in [
        ("GSS-FF", "HRNet-W48", "64.1 / 37.1 / 72.3 / 59.3 / 62.0 / 40.6 / 52.6"),
        ("GSS-FT-W", "HRNet-W48", "65.2 / 38.8 / 75.2 / 62.5 / 66.2 / 43.1 / 55.2"),
        ("GSS-FF", "Swin-L", "78.7 / 45.8 / 74.2 / 61.8 / 65.4 / 46.9 / 59.5"),
        ("GSS-FT-W", "Swin-L", "79.5 / 47.7 / 75.9 / 65.3 / 68.0 / 49.7 / 61.9"),
    ]:
        for target, value in zip(targets, line.split(" / "), strict=True):
            metric = "h.mean mIoU" if target == MSEG else "mIoU"
            rows.append(("gss_cross_domain", method, backbone, target, metric, "", value))
    rows += [("gss_cross_domain", m, b, MSEG, "h.mean mIoU", s, v) for m, b, s, v in [
        ("MSeg", "HRNet-W48", "160k", "54.9"), ("MSeg", "Swin-L", "160k", "61.7"),
        ("MSeg (original)", "HRNet", "500k", "59.2")]]
    rows += [("gss_reconstruction", m, "DALL-E dVAE", ADE, "mIoU", "", v) for m, v in [
        ("FF-R", "62.83"), ("FF", "84.31"), ("FT", "86.10"), ("TF", "84.37"), ("TT", "36.11"), ("FT-W", "87.73")]]
    for method, backbone, city, ade in [
        ("VQGAN without maskige", "VQGAN", "82.16", "81.89"), ("VQGAN with maskige", "VQGAN", "75.09", "42.70"),
        ("UViM", "UViM", "89.14", "78.98"), ("DALL-E with maskige", "DALL-E dVAE", "95.17", "87.73"),
    ]:
        rows += [("gss_posterior", method, backbone, CITY, "mIoU", "", city),
                 ("gss_posterior", method, backbone, ADE, "mIoU", "", ade)]
    for method, setting, miou, macc in [
        ("d=1/8", "d=1/8", "40.64", "52.55"), ("d=1/8 + unlabeled auxiliary", "d=1/8", "43.72", "56.08"),
        ("d=1/4 + auxiliary", "d=1/4", "43.98", "56.11"), ("d=1/4 + auxiliary + MLA", "d=1/4", "46.29", "57.84"),
    ]:
        rows += [("gss_prior", method, "Swin-L", ADE, "mIoU", setting, miou),
                 ("gss_prior", method, "Swin-L", ADE, "mAcc", setting, macc)]
    return rows


# Where each table is in its paper; None: not recorded. GSS's were read in a full text of the paper
# (Tables 1-6); FlowSeg's Table 1 is as shared/docs/pixnerd.md cites it ("FlowSeg's Table 1 row reads ...").
LOCATIONS = {
    "flowseg_main_ade20k": "Table 1",
    "gss_reconstruction": "Table 1",
    "gss_posterior": "Table 2",
    "gss_prior": "Table 3",
    "gss_main_cityscapes": "Table 4",
    "gss_main_ade20k": "Table 5",
    "gss_cross_domain": "Table 6",
}
# Rows cited apart from their table: GSS's Table 5 prints mIoU only; GSS-FF's mAcc is Table 3's
# "+ MLA" row and GSS-FT-W's is in no table of the paper's text (the official README gives it).
ROW_LOCATIONS = {
    ("gss_main_ade20k", "GSS-FF", "mAcc"): "Table 3",
    ("gss_main_ade20k", "GSS-FT-W", "mAcc"): "in no table of the paper's text seen (official fudan-zvg/GSS README)",
}
# The arXiv id each paper's rows cite: a version ("2303.11316v2") only where the numbers were seen in
# that version's text; neither paper's could be pinned (README, "Reported numbers").
ARXIV = {"GSS": "2303.11316", "FlowSeg": "2603.19218v1"}  # FlowSeg: v1 is the only version arXiv lists

TRANSCRIPTION = _flowseg() + _gss()
# ---- end of the transcription

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
    with REFERENCE_CSV.open(newline="") as f:
        return list(csv.DictReader(f))


def test_transcription_count():
    assert len(TRANSCRIPTION) == 90  # the hand count: FlowSeg 29, GSS 61
    assert sum(t[0].startswith("flowseg") for t in TRANSCRIPTION) == 29


def test_csv_equals_the_transcription():
    """Every number of the CSV is in the transcription and every transcribed number is in the
    CSV, with the same table, method, backbone, dataset, metric, setting and printed value."""
    key = ("table", "method", "backbone", "dataset", "metric", "setting", "value")
    in_csv = Counter(tuple(r[k] for k in key) for r in raw_rows())
    transcribed = Counter(TRANSCRIPTION)
    assert not in_csv - transcribed, f"in the CSV, not transcribed: {sorted(in_csv - transcribed)}"
    assert not transcribed - in_csv, f"transcribed, not in the CSV: {sorted(transcribed - in_csv)}"


def test_every_row_cites_paper_and_location():
    frame = load_reported()
    gss, flowseg = frame[frame["paper"] == "GSS"], frame[frame["paper"] == "FlowSeg"]
    assert set(gss["venue"]) == {"CVPR 2023"} and set(gss["arxiv"]) == {ARXIV["GSS"]}
    assert set(flowseg["venue"]) == {"arXiv preprint"} and set(flowseg["arxiv"]) == {ARXIV["FlowSeg"]}
    for row in frame.itertuples():
        expected = ROW_LOCATIONS.get((row.table, row.method, row.metric), LOCATIONS.get(row.table))
        if expected is None:  # not recorded: the row says so rather than guessing a number
            assert "not recorded" in row.location, (row.table, row.location)
        else:
            assert row.location == expected, (row.table, row.method, row.metric, row.location)


def test_unversioned_arxiv_id_says_version_not_verified():
    """A row citing a bare arXiv id says why it names no version; a versioned one does not hedge."""
    frame = load_reported()
    versioned = frame["arxiv"].str.contains("v")
    assert frame.loc[~versioned, "note"].str.contains("version not verified").all()
    assert not frame.loc[versioned, "note"].str.contains("version not verified").any()
    gss = frame["paper"] == "GSS"
    assert frame.loc[gss, "note"].str.contains("pp. 7111-7120").all()  # no version: the proceedings pages


def test_repository_path_is_a_link_to_the_packaged_csv():
    link = REPO / "results/reference/paper_reported.csv"
    assert link.is_symlink() and not Path(link.readlink()).is_absolute()
    assert link.resolve() == (REPO / "genseg/report/data/paper_reported.csv").resolve()


def test_csv_loads_and_is_labelled_reported():
    frame = load_reported()
    assert list(frame.columns) == [*COLUMNS, "kind"]
    assert len(frame) > 0
    assert (frame["kind"] == "reported").all()
    assert set(frame["table"]) == set(TABLES)
    assert set(frame["paper"]) == {"FlowSeg", "GSS"}
    cross = frame["table"] == "gss_cross_domain"  # GSS Table 6: MSeg's test split of the unseen datasets
    assert set(frame.loc[cross, "split"]) == {"test"} and set(frame.loc[~cross, "split"]) == {"val"}
    assert set(frame["metric"]) <= {"mIoU", "mAcc", "h.mean mIoU"}
    assert (frame["location"].str.len() > 0).all()


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
    assert steps["note"].str.contains("secondary source").all()


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
    path.write_text(",".join([*COLUMNS, "remark"]) + "\n" + ",".join(["x"] * 8 + ["1.0", "", "v", "a", "l", "n", "r"]) + "\n")
    with pytest.raises(ValueError, match=r"extra\.csv.*extra columns \['remark'\]"):
        load_reported(path)


def test_non_numeric_value_names_file_and_row(tmp_path):
    path = write_broken(tmp_path / "bad_value.csv", value="n/a")
    with pytest.raises(ValueError, match=r"bad_value\.csv: row 2 .*non-numeric value 'n/a'"):
        load_reported(path)


def write_rows(path: Path, change: dict) -> Path:
    rows = raw_rows()[:3]
    rows[1].update(change)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.mark.parametrize("change, message", [
    ({"location": " "}, r"row 2 .*empty location"),
    ({"arxiv": "2303.11316"}, r"row 2 .*FlowSeg is 'arXiv preprint', arXiv 2603.19218"),
    ({"arxiv": "2303.11316v2"}, r"row 2 .*cites venue 'arXiv preprint', arXiv '2303.11316v2'"),
    ({"arxiv": "2603.19218v"}, r"row 2 .*arXiv '2603.19218v'"),
    ({"arxiv": "2603.19218v1v2"}, r"row 2 .*arXiv '2603.19218v1v2'"),
    ({"arxiv": "v1"}, r"row 2 .*arXiv 'v1'"),
    ({"venue": "CVPR 2023"}, r"row 2 .*cites venue 'CVPR 2023'"),
    ({"paper": "SegFormer"}, r"row 2 .*unknown paper 'SegFormer'"),
])
def test_row_without_its_citation_names_file_and_row(tmp_path, change, message):
    path = write_rows(tmp_path / "uncited.csv", change)
    with pytest.raises(ValueError, match=r"uncited\.csv: " + message):
        load_reported(path)


@pytest.mark.parametrize("arxiv", ["2603.19218v1", "2603.19218v12"])
def test_arxiv_version_is_accepted(tmp_path, arxiv):
    frame = load_reported(write_rows(tmp_path / "v.csv", {"arxiv": arxiv}))
    assert len(frame) == 3 and frame.loc[1, "arxiv"] == arxiv  # kept as written, a string
