"""Tables in Markdown and LaTeX with the same content."""

from __future__ import annotations

import pandas as pd


def miou_by_domain(frame: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """Experiments x test domains, mIoU in percent; mean +- std over seeds when there are several."""
    sel = frame[(frame.metric == "miou") & (frame.split == split)]
    stats = sel.groupby(["experiment", "domain", "in_domain"]).value.agg(["mean", "std", "count"]).reset_index()
    stats["cell"] = [
        f"{100 * m:.1f}" if n == 1 else f"{100 * m:.1f} ± {100 * s:.1f}"
        for m, s, n in zip(stats["mean"], stats["std"], stats["count"])
    ]
    stats["column"] = [f"{d} (in-domain)" if i else d for d, i in zip(stats.domain, stats.in_domain)]
    order = stats.sort_values(["in_domain", "domain"], ascending=[False, True]).column.unique()
    table = stats.pivot(index="experiment", columns="column", values="cell")[list(order)]
    table.index.name = "Method"
    table.columns.name = None
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
        return str(value).replace("_", r"\_").replace("±", r"$\pm$").replace("%", r"\%").replace("&", r"\&")

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
