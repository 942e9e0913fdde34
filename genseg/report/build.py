"""Every table and figure of the report from aggregated results alone (no model, no data).

Inputs are the files ``genseg aggregate`` writes under ``results/<config>/`` (``metrics.csv``,
``curves.csv``, ``paired.csv``, ``samples.npz``) and the workflow's ``ablations.json``; the
papers' numbers come from ``results/reference/paper_reported.csv`` and are always shown as
"reported", in their own columns or blocks, never mixed with ours.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..io import write_text
from . import figures, tables
from .reference import load_reported
from .vector_field import vector_field_figure

# Report tables: name -> caption of the reproduced block (table_blocks adds the reported ones).
TABLES = {
    "main_results": "Main results (FlowSeg Table 1 layout): in-domain {split} mIoU (%) reproduced on this config's data, "
    "and the papers' numbers for the same method (reported; their backbone, pretraining and dataset in brackets). "
    "Budget: training iterations x batch of the run, and of the runs it starts from (+ ...); train wall: the run's own "
    "training, seconds.",
    "miou_by_domain": "{Split} mIoU (%) on each domain; models trained on the in-domain one. Grid ratio (in-domain): "
    "rate of label changes between neighbouring pixels across the 8 / 16 px patch-grid lines over the rate elsewhere "
    "(1.0: no grid; mean over seeds).",
    "cross_domain": "Cross-domain protocol (GSS Table 6 layout): {split} mIoU (%) on each unseen domain, their harmonic mean, "
    "and in-domain; budget: training iterations x batch (+ the runs it starts from).",
    "flowseg_steps": "FlowSeg in-domain {split} mIoU (%) against Euler sampling steps; last row: reported by the paper.",
    "flowseg_repa": "FlowSeg REPA ablation (reported only).",
    "gss_reconstruction": "Maskige reconstruction upper bound, {split} mIoU (%): labels -> maskige -> frozen posterior -> inverse.",
    "gss_prior": "GSS prior ablation, in-domain {split} mIoU / mAcc (%): token grid d and the auxiliary head (FF inverse).",
    "paired_tests": "Paired bootstrap over {split} images (2000 resamples): mIoU difference in points, its 95% CI and two-sided p-value. "
    "Seed all (n): the pair's n shared seeds, paired by seed as well as by image (seeds and images resampled; the mean difference over seeds).",
}
CI_NOTE = " Several seeds: mean [95% bootstrap CI over seeds]."
VAL_NOTE = (" Val mIoU (selection): the last validation of each run (the validation split, never test),"
            " the number a design is chosen by.")
SPLIT_NOTE = " Split: {split}."
SPLITS_NOTE = " Splits (each domain's own): {splits}."


def split_words(split) -> tuple[str, str]:
    """(caption word for the split, its note): ``test`` and " Split: test.", or, when domains
    are evaluated on different splits, ``evaluation`` and the per-domain list."""
    split = tables.normal_split(split)
    if isinstance(split, str):
        return split, SPLIT_NOTE.format(split=split)
    return "evaluation", SPLITS_NOTE.format(splits=tables.split_text(split))


def table_blocks(name: str, frame: pd.DataFrame, reported: pd.DataFrame, paired: pd.DataFrame,
                 split: str = "test") -> list[tuple[pd.DataFrame, str]]:
    """The (table, caption) blocks of one report table from ``split``'s rows: ours first, then reported blocks."""
    word, note = split_words(split)
    caption = (TABLES[name] + (CI_NOTE if name != "paired_tests" else "")).format(split=word, Split=word.capitalize()) + note
    if name == "main_results":
        return [(tables.main_results(frame, reported, split=split), caption)]
    if name == "cross_domain":
        return [(tables.cross_domain(frame, split=split), caption + tables.unreachable_note(frame, split)),
                (tables.reported_block(reported, "gss_cross_domain", "metric_h"), "Reported: GSS Table 6 (MSeg cross-domain), mIoU (%).")]
    if name == "flowseg_steps":
        return [(tables.steps_with_reported(tables.flowseg_steps(frame, split=split), reported), caption)]
    if name == "flowseg_repa":
        note = ("Not reproduced: REPA aligns a block with a frozen self-supervised encoder, whose weights "
                "are not available offline here.")
        return [(tables.reported_block(reported, "flowseg_repa", "setting"), f"{TABLES[name]} {note}")]
    if name == "gss_reconstruction":
        return [(tables.gss_reconstruction(frame, split=split, reported=reported), caption),
                (tables.reported_block(reported, "gss_posterior", "dataset"), "Reported: GSS Table 2, posterior upper bound mIoU (%).")]
    if name == "gss_prior":
        return [(tables.gss_prior(frame, split=split), caption),
                (tables.reported_block(reported, "gss_prior", "metric"), "Reported: GSS Table 3 (ADE20K), with MLA only in the last row.")]
    if name == "paired_tests":
        return [(tables.paired_tests(tables.select_split(paired, split) if "split" in paired else paired), caption)]
    return [(getattr(tables, name)(frame, split=split), caption)]


def write_table(out: Path, name: str, blocks: list[tuple[pd.DataFrame, str]]) -> None:
    """``<name>.md`` and ``<name>.tex`` with the same blocks."""
    write_text(out / f"{name}.md", "\n".join(tables.to_markdown(t, c) for t, c in blocks))
    label = f"tab:{name.replace('_', '-')}"
    write_text(out / f"{name}.tex", "\n".join(tables.to_latex(t, c, label if i == 0 else f"{label}-{i}") for i, (t, c) in enumerate(blocks)))


def build_report(metrics: str | Path, out_dir: str | Path, *, curves: str | Path = "", ablations: str | Path = "",
                 paired: str | Path = "", samples: str | Path = "", reported: str | Path | None = None,
                 split="test") -> list[str]:
    """Write every table (.md, .tex) and figure (.png, .pdf) of ``split``'s results into
    ``out_dir``; returns the names. ``split``: one split for every domain, or ``{domain: split}``
    (the workflow's ``evaluate.domains``: each domain's own split)."""
    split = tables.normal_split(split)
    frame = pd.read_csv(metrics)
    out = Path(out_dir)
    reference = load_reported(reported)
    paired_frame = pd.read_csv(paired) if paired else pd.DataFrame(columns=["a", "b", "seed", "domain", "delta", "ci_low", "ci_high", "p_value", "n_images"])
    written = []
    for name in TABLES:
        write_table(out, name, table_blocks(name, frame, reference, paired_frame, split))
        written.append(name)
    curve_frame = pd.read_csv(curves) if curves else pd.DataFrame(columns=["run_id", "experiment", "step", "val_miou"])
    if ablations:  # one table (and optional figure) per ablation file, reported numbers beside
        index = json.loads(Path(ablations).read_text())
        for ablation in index["ablations"]:
            rows = [r for r in index["rows"] if r["ablation"] == ablation["name"]]
            word, note = split_words(split)
            caption = (ablation["description"] or f"Ablation {ablation['name']}: in-domain {word} mIoU (%).") + VAL_NOTE
            table = tables.ablation_table(frame, ablation, rows, reference, split=split, curves=curve_frame)
            write_table(out, ablation["feeds"], [(table, caption + CI_NOTE + note)])
            if ablation["figure"] == "bar":
                figures.ablation_bars(frame, rows, out / ablation["feeds"], ablation["description"], split=split)
            written.append(ablation["feeds"])
    figures.miou_by_domain(frame, out / "miou_by_domain", split=split)
    figures.flowseg_steps(frame, out / "flowseg_steps", split=split, reported=reference)
    figures.latency(frame, out / "latency", split=split)
    figures.convergence(curve_frame, out / "convergence")
    flow = frame[(frame.method == "flowseg") & ~frame.experiment.str.contains("+", regex=False)].experiment.unique()
    figures.convergence(curve_frame[curve_frame.experiment.isin(flow)], out / "flowseg_convergence")
    vector_field_figure(out / "vector_field")
    if samples:  # methods proper (no upper bounds, no ablation variants) on the first in-domain test domain
        methods = tables.methods_only(frame)
        in_domain = sorted(methods[methods.in_domain.astype(bool)].domain.unique())
        figures.qualitative(samples, out / "qualitative", domain=in_domain[0] if in_domain else None,
                            experiments=sorted(methods.experiment.unique()))
    return written
