"""Figures with seaborn, saved as PNG and PDF at a paper's column width."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from ..io import atomic_path  # noqa: E402
from .tables import ORACLE_METHODS  # noqa: E402

COLUMN_WIDTH_IN = 3.4


def save(fig, stem: Path) -> list[Path]:
    """Write ``stem``.png and ``stem``.pdf atomically."""
    paths = []
    for ext in ("png", "pdf"):
        path = Path(f"{stem}.{ext}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=200, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def miou_by_domain(frame: pd.DataFrame, stem: Path, split: str = "test") -> list[Path]:
    """Bars of test mIoU per domain and method (mean over seeds, error bar = sd)."""
    sel = frame[(frame.metric == "miou") & (frame.split == split) & (frame.variant == "default")]
    sel = sel[~sel.method.isin(ORACLE_METHODS)].copy()
    sel["mIoU (%)"] = 100 * sel.value
    sel["domain"] = [f"{d}\n(in-domain)" if i else d for d, i in zip(sel.domain, sel.in_domain)]
    order = sorted(sel.domain.unique(), key=lambda d: ("in-domain" not in d, d))
    sns.set_theme(context="paper", style="whitegrid", font_scale=0.9)
    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH_IN, 2.4))
    sns.barplot(data=sel, x="domain", y="mIoU (%)", hue="experiment", order=order, errorbar="sd", ax=ax)
    ax.set_xlabel("test domain")
    ax.set_ylim(0, 100)
    ax.legend(title=None, fontsize=7, loc="upper right")
    return save(fig, stem)


def _empty(stem: Path, message: str) -> list[Path]:
    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH_IN, 1.0))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=8)
    return save(fig, stem)


def flowseg_steps(frame: pd.DataFrame, stem: Path, split: str = "test") -> list[Path]:
    """In-domain test mIoU against Euler steps (log x axis); colour = encoding, dashes = objective."""
    from .tables import steps_rows

    sel = steps_rows(frame, split)
    if sel.empty:
        return _empty(stem, "no FlowSeg steps sweep in this config")
    sel["mIoU (%)"] = 100 * sel.value
    sns.set_theme(context="paper", style="whitegrid", font_scale=0.9)
    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH_IN, 2.4))
    sns.lineplot(data=sel, x="steps", y="mIoU (%)", hue="encoding", style="objective", markers=True, errorbar="sd", ax=ax)
    ax.set_xscale("log")
    ticks = sorted(sel.steps.unique())
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.set_xlabel("sampling steps (Euler)")
    sns.move_legend(ax, "upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=6, title=None, frameon=False)
    return save(fig, stem)


def convergence(curves: pd.DataFrame, stem: Path) -> list[Path]:
    """Validation mIoU against training iterations, one line per experiment."""
    if curves.empty:
        return _empty(stem, "no validation curves")
    data = curves.assign(**{"val mIoU (%)": 100 * curves.val_miou})
    sns.set_theme(context="paper", style="whitegrid", font_scale=0.9)
    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH_IN, 2.6))
    sns.lineplot(data=data, x="step", y="val mIoU (%)", hue="experiment", errorbar="sd", ax=ax)
    ax.set_xlabel("training iteration")
    sns.move_legend(ax, "upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=6, title=None, frameon=False)
    return save(fig, stem)
