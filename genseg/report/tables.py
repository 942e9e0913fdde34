"""Tables in Markdown and LaTeX with the same content (mIoU in percent)."""

from __future__ import annotations

import json

import pandas as pd


def cell(mean: float, std: float, count: int) -> str:
    """One reproduced number: ``mean`` for one seed, ``mean ± std`` over several."""
    return f"{100 * mean:.1f}" if count == 1 or pd.isna(std) else f"{100 * mean:.1f} ± {100 * std:.1f}"


def pivot_cells(sel: pd.DataFrame, index: str, columns: str) -> pd.DataFrame:
    """Mean (± std over seeds) of ``value`` for each (index, columns) pair, as strings."""
    stats = sel.groupby([index, columns]).value.agg(["mean", "std", "count"]).reset_index()
    stats["cell"] = [cell(m, s, n) for m, s, n in zip(stats["mean"], stats["std"], stats["count"])]
    table = stats.pivot(index=index, columns=columns, values="cell").fillna("–")
    table.columns.name = None
    return table


def flow_axes(frame: pd.DataFrame) -> pd.DataFrame:
    """FlowSeg rows with ``encoding`` and ``objective`` (vanilla / reshaped) columns from model options."""
    sel = frame[frame.method == "flowseg"].copy()
    options = [json.loads(o) for o in sel.model_options]
    sel["encoding"] = [o.get("encoding", "?") for o in options]
    sel["objective"] = ["reshaped" if o.get("reshape") and o.get("lam", 0) > 0 else "vanilla" for o in options]
    return sel


ORACLE_METHODS = ("vqvae", "maskige")  # reconstruction upper bounds: they read the labels


def steps_rows(frame: pd.DataFrame, split: str) -> pd.DataFrame:
    """FlowSeg in-domain mIoU rows of the steps sweep, the run's default step count included."""
    sel = flow_axes(frame)
    sweep = sel.variant.str.startswith("steps=") | (sel.variant == "default")
    sel = sel[(sel.metric == "miou") & (sel.split == split) & sel.in_domain & sweep & sel.steps.notna()].copy()
    sel["steps"] = sel.steps.astype(int)
    return sel


def miou_by_domain(frame: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """Experiments x test domains (default predict options); the in-domain column first.

    Oracle evaluations (maskige reconstruction upper bounds) have their own table."""
    sel = frame[(frame.metric == "miou") & (frame.split == split) & (frame.variant == "default")]
    table = domain_columns(sel[~sel.method.isin(ORACLE_METHODS)], "experiment")
    table.index.name = "Method"
    return table


def flowseg_steps(frame: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """FlowSeg in-domain mIoU against sampling steps (the steps sweep)."""
    sel = steps_rows(frame, split)
    if sel.empty:
        return pd.DataFrame({"Steps": ["no FlowSeg steps sweep in this config"]}).set_index("Steps")
    sel["row"] = sel.encoding + ", " + sel.objective
    table = pivot_cells(sel, "row", "steps")
    table.columns = [f"{c} step" + ("s" if c > 1 else "") for c in table.columns]
    table.index.name = "Encoding, objective"
    return table


def flowseg_encodings(frame: pd.DataFrame, split: str = "test", steps=(1, 10)) -> pd.DataFrame:
    """FlowSeg in-domain mIoU by centroid encoding (rows) and objective x steps (columns)."""
    sel = steps_rows(frame, split)
    sel = sel[sel.steps.isin(steps)]
    if sel.empty:
        return pd.DataFrame({"Encoding": ["no FlowSeg steps sweep in this config"]}).set_index("Encoding")
    sel["column"] = [f"{o}, {int(s)} step" + ("s" if int(s) > 1 else "") for o, s in zip(sel.objective, sel.steps)]
    table = pivot_cells(sel, "encoding", "column")
    table.index.name = "Encoding"
    return table


def domain_columns(sel: pd.DataFrame, index: str) -> pd.DataFrame:
    """``index`` x test domains, the in-domain column first."""
    sel = sel.assign(column=[f"{d} (in-domain)" if i else d for d, i in zip(sel.domain, sel.in_domain)])
    table = pivot_cells(sel, index, "column")
    return table[sorted(table.columns, key=lambda c: ("in-domain" not in c, c))]


MASKIGE_VARIANTS = {("ff-r", "ff"): "FF-R", ("ff", "ff"): "FF", ("ff", "ft"): "FT", ("ff", "tf"): "TF", ("ff", "ft-w"): "FT-W"}


def gss_reconstruction(frame: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """Maskige reconstruction upper bound (GSS Tables 1-2): labels -> posterior -> inverse, mIoU by domain."""
    sel = frame[(frame.method == "maskige") & (frame.metric == "miou") & (frame.split == split) & (frame.variant == "default")].copy()
    if sel.empty:
        return pd.DataFrame({"Maskige": ["no maskige runs in this config"]}).set_index("Maskige")
    options = [json.loads(o) for o in sel.model_options]
    names = [MASKIGE_VARIANTS.get((o["palette"], o["inverse"]), f"{o['palette']}/{o['inverse']}") for o in options]
    sel["row"] = [f"{n} ({o['posterior']}, d = {o['maskige_scale']}/{o['downsample']})" for n, o in zip(names, options)]
    order = {v: i for i, v in enumerate(MASKIGE_VARIANTS.values())}
    table = domain_columns(sel, "row")
    table = table.loc[sorted(table.index, key=lambda r: (order.get(r.split(" ")[0], 99), r))]
    table.index.name = "Maskige (posterior, token grid)"
    return table


def gss_prior(frame: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """GSS prior ablation (GSS Table 3): token grid d and the auxiliary head; in-domain mIoU and mAcc, FF inverse."""
    sel = frame[(frame.method == "gss") & (frame.split == split) & frame.in_domain & (frame.variant == "default")].copy()
    sel = sel[sel.metric.isin(["miou", "macc"])]
    options = [json.loads(o) for o in sel.model_options]
    keep = [o.get("stage", "prior") == "prior" for o in options]
    sel, options = sel[keep], [o for o, k in zip(options, keep) if k]
    if sel.empty:
        return pd.DataFrame({"Prior": ["no GSS prior runs in this config"]}).set_index("Prior")
    sel["row"] = [f"d = 1/{o['downsample'] // o['maskige_scale']}, " + ("auxiliary head" if o["aux_weight"] > 0 else "no auxiliary head")
                  for o in options]
    table = pivot_cells(sel, "row", "metric").rename(columns={"miou": "mIoU", "macc": "mAcc"})
    table.index.name = "Prior"
    return table


def to_markdown(table: pd.DataFrame, caption: str = "") -> str:
    header = [table.index.name or ""] + [str(c) for c in table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, row in table.iterrows():
        lines.append("| " + " | ".join([str(index)] + [str(v) for v in row]) + " |")
    text = "\n".join(lines) + "\n"
    return f"{caption}\n\n{text}" if caption else text


def to_latex(table: pd.DataFrame, caption: str = "", label: str = "") -> str:
    def esc(value) -> str:
        return str(value).replace("_", r"\_").replace("±", r"$\pm$").replace("%", r"\%").replace("&", r"\&").replace("–", "--")

    cols = "l" + "c" * len(table.columns)
    lines = [r"\begin{table}[t]", r"\centering", rf"\begin{{tabular}}{{{cols}}}", r"\toprule"]
    lines.append(" & ".join(esc(c) for c in [table.index.name or ""] + list(table.columns)) + r" \\")
    lines.append(r"\midrule")
    for index, row in table.iterrows():
        lines.append(" & ".join(esc(v) for v in [index] + list(row)) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        lines.append(rf"\caption{{{esc(caption)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"
