"""Figures with seaborn, saved as PNG and PDF at a paper's column width."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from ..io import atomic_path  # noqa: E402

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
    sel = frame[(frame.metric == "miou") & (frame.split == split)].copy()
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
