"""Figures with seaborn, saved as PNG and PDF at a paper's column width.

Styling goes through :func:`_theme` (an ``rc_context``), so nothing here changes matplotlib's
global state. Reported numbers are drawn in their own panel labelled ``reported (<dataset>)``.
"""

from __future__ import annotations

import textwrap
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

from ..io import atomic_path  # noqa: E402
from ..methods import METHODS  # noqa: E402
from .tables import methods_only, normal_split, select_split, split_of, swept  # noqa: E402


def _word(split) -> str:
    """The split in axis labels: its name, or "evaluation" when domains differ in split."""
    split = normal_split(split)
    return split if isinstance(split, str) else "evaluation"

COLUMN_WIDTH_IN = 3.4
SMALL = 6  # pt: the smallest font used (legends, point labels, grid titles)


@contextmanager
def _theme():
    """seaborn's paper/whitegrid look as a temporary rc context (no global state)."""
    rc = {**sns.axes_style("whitegrid"), **sns.plotting_context("paper", font_scale=0.9),
          "axes.prop_cycle": matplotlib.cycler(color=sns.color_palette("deep"))}
    with plt.rc_context(rc):
        yield


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


def _empty(stem: Path, message: str) -> list[Path]:
    """A small placeholder figure that says why there is nothing to plot."""
    with _theme():
        fig, ax = plt.subplots(figsize=(COLUMN_WIDTH_IN, 1.0))
        ax.axis("off")
        ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=8)
        return save(fig, stem)


def _log_ticks(lo: float, hi: float) -> list[float]:
    """Readable ticks (1-2-5 style, denser for narrow ranges) for a log axis spanning [lo, hi]."""
    lo, hi = float(lo), float(hi)
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo <= 0:
        return []
    decades = range(int(np.floor(np.log10(lo))) - 1, int(np.ceil(np.log10(hi))) + 1)
    ticks: list[float] = []
    for mantissas in ([1], [1, 2, 5], [1, 2, 3, 5, 7], list(range(1, 10))):
        ticks = [float(f"{m * 10.0 ** k:.6g}") for k in decades for m in mantissas]
        ticks = [t for t in ticks if lo <= t <= hi]
        if len(ticks) >= 3:
            break
    return ticks


def _set_log_x(ax, values, ticks=None) -> None:
    """Log x axis with plain-number tick labels (no 10^k), padded around ``values``."""
    values = np.asarray([v for v in values if np.isfinite(v) and v > 0], dtype=float)
    ax.set_xscale("log")
    if values.size == 0:
        return
    lo, hi = values.min(), values.max()
    pad = max(np.log10(hi / lo) * 0.08, 0.05)
    ax.set_xlim(lo / 10 ** pad, hi * 10 ** pad)
    ticks = _log_ticks(*ax.get_xlim()) if ticks is None else ticks
    if not ticks:
        ticks = [float(f"{v:.2g}") for v in (lo, hi)]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())


def _place_labels(ax, points, fontsize: int = SMALL) -> None:
    """Annotate ``points`` [(x, y, text, colour)] next to their markers, trying a few offsets
    per label so labels overlap neither each other nor markers and stay inside the axes.
    Call once the axes' limits and the figure layout are final."""
    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    px = ax.figure.dpi / 72
    taken = []
    for x, y, *_ in points:  # the markers themselves
        cx, cy = ax.transData.transform((x, y))
        taken.append(matplotlib.transforms.Bbox.from_extents(cx - 3 * px, cy - 3 * px, cx + 3 * px, cy + 3 * px))
    offsets = [(4, 2, "left", "bottom"), (4, -2, "left", "top"), (-4, 2, "right", "bottom"), (-4, -2, "right", "top"),
               (0, 5, "center", "bottom"), (0, -5, "center", "top"), (4, 9, "left", "bottom"), (4, -9, "left", "top"),
               (-4, 9, "right", "bottom"), (-4, -9, "right", "top"), (0, 14, "center", "bottom"), (0, -14, "center", "top")]
    for x, y, text, colour in points:
        first = None
        for dx, dy, ha, va in offsets:
            label = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                                fontsize=fontsize, color=colour)
            box = label.get_window_extent(renderer)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if inside and not any(box.overlaps(b) for b in taken):
                break
            first = first or (dx, dy, ha, va)
            label.remove()
        else:  # nothing free: the first offset that stays inside, or the first one
            dx, dy, ha, va = first
            label = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                                fontsize=fontsize, color=colour)
            box = label.get_window_extent(renderer)
        taken.append(box)


def miou_by_domain(frame: pd.DataFrame, stem: Path, split: str = "test") -> list[Path]:
    """Bars of test mIoU per domain and method (mean over seeds, error bar = sd), and beside
    them each method's in-domain grid ratio at 8 px (:class:`genseg.metrics.GridArtifacts`;
    dashed line: 1.0, no grid)."""
    if frame.empty:
        return _empty(stem, "no evaluations yet")
    sel = select_split(frame, split)
    sel = sel[sel.variant == "default"]
    grid = methods_only(sel[(sel.metric == "grid_ratio_8") & sel.in_domain.astype(bool)]).dropna(subset=["value"])
    sel = methods_only(sel[sel.metric == "miou"]).copy()
    if sel.empty:
        return _empty(stem, f"no {_word(split)} mIoU yet")
    sel["mIoU (%)"] = 100 * sel.value
    sel["domain"] = [(f"{d}\n(in-domain)" if i else d) + (f"\n[{split_of(split, d)}]" if split_of(split, d) else "")
                     for d, i in zip(sel.domain, sel.in_domain)]
    order = sorted(sel.domain.unique(), key=lambda d: ("in-domain" not in d, d))
    experiments = list(dict.fromkeys(sel.experiment))
    with _theme():
        palette = dict(zip(experiments, sns.color_palette(n_colors=len(experiments))))
        fig, (ax, right) = plt.subplots(1, 2, figsize=(COLUMN_WIDTH_IN, 2.4), width_ratios=(3, 1))
        sns.barplot(data=sel, x="domain", y="mIoU (%)", hue="experiment", order=order, hue_order=experiments,
                    palette=palette, errorbar="sd", ax=ax)
        ax.set_xlabel("test domain")
        ax.set_ylim(0, 100)
        grid = grid[grid.experiment.isin(experiments)]
        if grid.empty:
            right.text(0.5, 0.5, "no grid ratio\nin these results", ha="center", va="center", fontsize=SMALL,
                       transform=right.transAxes)
            right.set_yticks([])
        else:
            sns.barplot(data=grid, x="experiment", y="value", hue="experiment", order=experiments, hue_order=experiments,
                        palette=palette, errorbar="sd", legend=False, ax=right)
            right.axhline(1.0, color="0.3", linestyle="--", linewidth=0.8)
            right.set_ylim(bottom=0)
        right.set_xticks([])
        right.set_xlabel("in-domain")
        right.set_ylabel("grid ratio, 8 px")
        fig.tight_layout(w_pad=0.8)
        below = ax.get_position().y0 - 40 / (fig.get_figheight() * 72)  # 40 pt under the axes: past the x label
        sns.move_legend(ax, "upper center", bbox_to_anchor=(0.5, below), bbox_transform=fig.transFigure, ncol=2,
                        fontsize=6, title=None, frameon=False)
        return save(fig, stem)


def flowseg_steps(frame: pd.DataFrame, stem: Path, split: str = "test", reported: pd.DataFrame | None = None) -> list[Path]:
    """In-domain test mIoU against Euler steps (log x); colour = encoding, dashes = objective.

    With ``reported`` (a :func:`~genseg.report.reference.load_reported` frame), a second panel
    on the same steps axis shows the paper's curve (table ``flowseg_steps``), titled
    ``reported (<dataset>)``; its y axis is independent (another dataset)."""
    from .reference import reported as reported_table
    from .tables import steps_rows

    sel = steps_rows(frame, split) if not frame.empty else frame
    if sel.empty:
        return _empty(stem, "no FlowSeg steps sweep in this config")
    sel["mIoU (%)"] = 100 * sel.value
    paper = reported_table("flowseg_steps", reported) if reported is not None else pd.DataFrame()
    if not paper.empty:
        paper = paper.assign(steps=paper.setting.astype(int)).sort_values("steps")
    with _theme():
        if paper.empty:
            fig, ax = plt.subplots(figsize=(COLUMN_WIDTH_IN, 2.4))
            axes = [ax]
        else:
            fig, axes = plt.subplots(1, 2, figsize=(2 * COLUMN_WIDTH_IN, 2.4), sharex=True)
            ax = axes[0]
        sns.lineplot(data=sel, x="steps", y="mIoU (%)", hue="encoding", style="objective", markers=True,
                     errorbar="sd", ax=ax)
        ax.set_xlabel("sampling steps (Euler)")
        ax.set_ylabel(f"in-domain {_word(split)} mIoU (%)")
        steps = set(sel.steps)
        if len(axes) == 2:
            ax.set_title(f"reproduced ({', '.join(sorted(map(str, sel.dataset.unique())))})", fontsize=8)
            right = axes[1]
            for dataset, part in paper.groupby("dataset", sort=True):
                right.plot(part.steps, part.value, marker="o", markersize=3.5, color="0.25", label=f"reported ({dataset})")
            right.set_title(f"reported ({', '.join(sorted(paper.dataset.unique()))})", fontsize=8)
            right.set_xlabel("sampling steps (Euler)")
            right.set_ylabel(f"{paper.metric.iloc[0]} (%), {'/'.join(sorted(paper.split.unique()))}")
            right.legend(fontsize=SMALL, loc="lower right", frameon=False)
            right.tick_params(labelbottom=True)
            steps |= set(paper.steps)
        ticks = sorted(steps)
        _set_log_x(ax, ticks, ticks)
        if len(axes) == 2:
            fig.tight_layout(w_pad=1.5)
        below = 36 / (ax.get_position().height * fig.get_figheight() * 72)  # 36 pt under the axes: past the x label
        sns.move_legend(ax, "upper center", bbox_to_anchor=(0.5, -below), ncol=2, fontsize=SMALL, title=None, frameon=False)
        return save(fig, stem)


def _latency_points(frame: pd.DataFrame, split: str) -> pd.DataFrame:
    """In-domain (mIoU, latency, NFE) per experiment and variant, mean over seeds (and in-domain
    test domains): the default variant of every non-oracle method plus the ``steps`` sweep of the
    methods whose spec sweeps sampling steps (FlowSeg); ``in_sweep`` marks the sweep's variants."""
    keys = ["run_id", "split", "domain", "variant"]
    sel = select_split(frame, split)
    sel = methods_only(sel[sel.in_domain.astype(bool)])
    stepped = [name for name, spec in METHODS.items() if "steps" in spec.sweeps]
    default = sel.variant == "default"
    sel = sel.assign(in_sweep=(swept(sel, "steps") & sel.method.isin(stepped) & ~default).to_numpy())
    sel = sel[default | sel.in_sweep]
    miou = sel[sel.metric == "miou"][keys + ["experiment", "method", "nfe", "steps", "in_sweep", "value"]]
    speed = sel[sel.metric == "images_per_s"][keys + ["value"]].rename(columns={"value": "images_per_s"})
    data = miou.merge(speed, on=keys, how="inner")
    data = data[data.images_per_s > 0]
    data = data.assign(miou=100 * data.value, latency_ms=1000 / data.images_per_s,
                       nfe=pd.to_numeric(data.nfe, errors="coerce"), steps=pd.to_numeric(data.steps, errors="coerce"))
    if data.empty:
        return data
    points = data.groupby(["experiment", "method", "variant"], as_index=False).agg(
        miou=("miou", "mean"), latency_ms=("latency_ms", "mean"), nfe=("nfe", "mean"), steps=("steps", "mean"),
        in_sweep=("in_sweep", "any"))
    points["single"] = points.nfe.isna()
    points["nfe_plot"] = points.nfe.fillna(1.0)
    return points


def latency(frame: pd.DataFrame, stem: Path, split: str = "test") -> list[Path]:
    """mIoU against latency and NFE for every method (mean over seeds, in-domain ``split``).

    (a) mIoU vs ms per image (1000 / images_per_s of the same evaluation), log x, each point
    labelled with its experiment; (b) mIoU vs function evaluations per image, discriminative
    methods (no NFE) at 1 as "single forward pass". FlowSeg's ``steps=k`` variants are joined
    by a line in both panels (the speed / quality trade-off). Oracle methods are left out."""
    points = _latency_points(frame, split) if not frame.empty else pd.DataFrame()
    if points.empty:
        return _empty(stem, "no evaluations with mIoU and throughput yet")
    experiments = sorted(points.experiment.unique())
    palette = dict(zip(experiments, sns.color_palette("deep" if len(experiments) <= 10 else "husl", len(experiments))))
    with _theme():
        fig, (ax_lat, ax_nfe) = plt.subplots(1, 2, figsize=(2 * COLUMN_WIDTH_IN, 2.6), sharey=True)
        labels = []
        for experiment in experiments:
            part = points[points.experiment == experiment]
            colour = palette[experiment]
            sweep = part[part.in_sweep | ((part.variant == "default") & part.steps.notna())]
            if not part.in_sweep.any():  # no steps sweep: no line
                sweep = sweep.iloc[:0]
            if len(sweep) > 1:  # the sweep as a line; the default variant wins a duplicate step count
                sweep = sweep.assign(first=sweep.variant != "default").sort_values(["steps", "first"])
                sweep = sweep.drop_duplicates("steps")
                for ax, x in ((ax_lat, "latency_ms"), (ax_nfe, "nfe_plot")):
                    ax.plot(sweep[x], sweep.miou, color=colour, lw=1, alpha=0.7, zorder=1)
                    ax.scatter(sweep[x], sweep.miou, color=colour, s=9, marker="o", zorder=2, linewidths=0)
            for row in part[part.variant == "default"].itertuples():
                marker = "s" if row.single else "o"
                for ax, x in ((ax_lat, row.latency_ms), (ax_nfe, row.nfe_plot)):
                    ax.scatter([x], [row.miou], color=colour, s=22, marker=marker, edgecolors="white", linewidths=0.5, zorder=3)
                labels.append((row.latency_ms, row.miou, experiment, colour))
        _set_log_x(ax_lat, points.latency_ms)
        nfes = sorted(points.nfe_plot.unique())
        _set_log_x(ax_nfe, nfes, nfes if len(nfes) <= 8 else None)
        ax_lat.set_xlabel("latency (ms / image)")
        ax_nfe.set_xlabel("function evaluations per image (NFE)")
        ax_lat.set_ylabel(f"in-domain {_word(split)} mIoU (%)")
        ax_lat.set_title("(a) mIoU vs latency", fontsize=8)
        ax_nfe.set_title("(b) mIoU vs NFE", fontsize=8)
        ax_nfe.tick_params(labelleft=True)
        lo, hi = points.miou.min(), points.miou.max()
        pad = max(0.12 * (hi - lo), 2.0)
        ax_lat.set_ylim(max(lo - pad, 0), hi + pad)
        handles = [Line2D([], [], color=palette[e], marker="o", ls="", markersize=4, label=e) for e in experiments]
        kinds = []
        if points.single.any():
            kinds.append(Line2D([], [], color="0.4", marker="s", ls="", markersize=4, label="single forward pass"))
        if (~points.single).any():
            kinds.append(Line2D([], [], color="0.4", marker="o", ls="", markersize=4, label="iterative sampler"))
        if (points.variant != "default").any():
            kinds.append(Line2D([], [], color="0.4", marker="o", markersize=2.5, lw=1, label="FlowSeg steps sweep"))
        fig.tight_layout(rect=(0, 0.1, 1, 1), w_pad=1.5)
        fig.legend(handles=handles + kinds, loc="upper center", bbox_to_anchor=(0.5, 0.1), ncol=min(3, len(handles + kinds)),
                   fontsize=SMALL, frameon=False)
        _place_labels(ax_lat, labels)
        return save(fig, stem)


def _class_colours(count: int) -> np.ndarray:
    """A lookup table (count + 1, 3): a fixed palette colour per class id, then black."""
    name = "tab10" if count <= 10 else "tab20" if count <= 20 else "husl"
    return np.vstack([np.asarray(sns.color_palette(name, count)), np.zeros((1, 3))])


def _colourise(ids: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Class ids -> RGB; ignore (255) and unmapped ids (>= number of classes) are black."""
    ids = np.asarray(ids).astype(np.int64)
    count = len(lut) - 1
    return lut[np.where((ids >= 0) & (ids < count), ids, count)]


def qualitative(samples_path: str | Path, stem: Path, domain: str | None = None, experiments: list[str] | None = None,
                max_images: int = 4) -> list[Path]:
    """A grid from ``samples.npz`` (:func:`~genseg.report.aggregate.collect_samples`): a row per
    image, columns image, ground truth and each experiment's prediction (given order, else
    sorted; experiments without this domain are skipped). Ignore / unmapped pixels are black;
    the classes shown are listed below. ``domain`` defaults to the first one with predictions.

    Raises ``ValueError`` naming the file when ``domain`` is not in it."""
    path = Path(samples_path)
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    preds: dict[str, dict[str, dict[str, np.ndarray]]] = {}  # domain -> experiment -> index -> ids
    for key, value in arrays.items():
        if key.startswith("pred/"):
            experiment, dom, index = key[len("pred/"):].rsplit("/", 2)
            preds.setdefault(dom, {}).setdefault(experiment, {})[index] = value
    images = {}
    for key in arrays:
        if key.startswith("image/"):
            dom, index = key[len("image/"):].rsplit("/", 1)
            images.setdefault(dom, []).append(index)
    if domain is None:
        if not preds:
            return _empty(stem, "no qualitative samples kept")
        domain = next(iter(preds))
    if domain not in images:
        raise ValueError(f"{path}: no samples for domain {domain!r}; domains with samples: {sorted(images)}")
    indices = sorted((i for i in images[domain] if f"label/{domain}/{i}" in arrays), key=lambda i: (len(i), i))[:max_images]
    if not indices:
        raise ValueError(f"{path}: domain {domain!r} has images but no labels")
    available = preds.get(domain, {})
    columns = [e for e in experiments if e in available] if experiments is not None else sorted(available)
    names = arrays.get(f"classes/{domain}")
    labels = [arrays[f"label/{domain}/{i}"] for i in indices]
    if names is None:  # no class names kept: number them
        top = max([int(x[x != 255].max(initial=0)) for x in labels])
        names = np.array([str(c) for c in range(top + 1)])
    names = [str(n) for n in names]
    lut = _class_colours(len(names))

    ncols = 2 + len(columns)
    cell = min(1.0, 2 * COLUMN_WIDTH_IN / ncols)
    first = arrays[f"image/{domain}/{indices[0]}"]
    aspect = first.shape[0] / first.shape[1]
    wrap = max(6, int(cell * 72 / (SMALL * 0.55)))
    titles = ["image", "ground truth"] + ["\n".join(textwrap.wrap(e, wrap, break_on_hyphens=True)) for e in columns]
    present: set[int] = set()
    black = False
    with _theme():
        fig, axes = plt.subplots(len(indices), ncols, figsize=(cell * ncols, cell * aspect * len(indices)), squeeze=False,
                                 gridspec_kw={"wspace": 0.04, "hspace": 0.04})
        fig.subplots_adjust(left=0, right=1, bottom=0, top=1)  # titles and legend lie outside: saved with a tight box
        for r, index in enumerate(indices):
            label = arrays[f"label/{domain}/{index}"]
            cells = [arrays[f"image/{domain}/{index}"], label] + [available[e].get(index) for e in columns]
            for c, content in enumerate(cells):
                ax = axes[r, c]
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                if content is None:
                    ax.set_facecolor("0.85")
                    ax.text(0.5, 0.5, "–", ha="center", va="center", fontsize=SMALL, transform=ax.transAxes)
                elif c == 0:
                    ax.imshow(content, cmap="gray" if content.ndim == 2 else None, interpolation="nearest")
                else:
                    ids = np.asarray(content).astype(np.int64)
                    valid = (ids >= 0) & (ids < len(names))
                    present |= set(np.unique(ids[valid]).tolist())
                    black |= bool((~valid).any())
                    ax.imshow(_colourise(ids, lut), interpolation="nearest")
                for side in ax.spines.values():
                    side.set_linewidth(0.3)
                if r == 0:
                    ax.set_title(titles[c], fontsize=SMALL, pad=2)
        handles = [Patch(facecolor=lut[c], label=names[c]) for c in sorted(present)]
        if black:
            handles.append(Patch(facecolor="black", label="ignore / unmapped"))
        width = cell * ncols
        fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.01), fontsize=SMALL, frameon=False,
                   ncol=max(1, min(len(handles), int(width / 0.9))), handlelength=1.0, handleheight=1.0,
                   columnspacing=0.8, handletextpad=0.4, title=f"classes ({domain})", title_fontsize=SMALL)
        return save(fig, stem)


def convergence(curves: pd.DataFrame, stem: Path, experiments: list[str] | None = None) -> list[Path]:
    """Validation mIoU against training iterations (mean over seeds, band = sd).

    ``experiments`` filters (default: all). With the runs' identity (:func:`~genseg.report.tables.curve_runs`),
    a line's colour is its model: the method's name (and ablation value; the experiment where
    that still leaves two with one objective), so runs of one model that differ only in their
    training objective (``objective``, from the method's spec) share a colour and differ in dashes."""
    if experiments is not None and not curves.empty:
        curves = curves[curves.experiment.isin(experiments)]
    if curves.empty:
        return _empty(stem, "no validation curves")
    data = curves.assign(**{"val mIoU (%)": 100 * curves.val_miou})
    objective = [o or "other" for o in data.objective] if "objective" in data else ["other"] * len(data)
    data = data.assign(model=_models(data, objective), objective=objective)
    models = sorted(data.model.unique())
    palette = dict(zip(models, sns.color_palette("deep" if len(models) <= 10 else "husl", len(models))))
    named = sorted(set(objective) - {"other"})
    paired = bool(named)
    styles = named + (["other"] if "other" in objective else [])
    dashes = {**{k: ["", (4, 1.5), (1.5, 1.5), (4, 1.5, 1.5, 1.5)][i % 4] for i, k in enumerate(named)}, "other": ""}
    with _theme():
        fig, ax = plt.subplots(figsize=(COLUMN_WIDTH_IN, 2.6))
        sns.lineplot(data=data, x="step", y="val mIoU (%)", hue="model", hue_order=models, palette=palette,
                     style="objective" if paired else None, style_order=styles if paired else None,
                     dashes={k: dashes[k] for k in styles} if paired else True, errorbar="sd", legend=False, ax=ax)
        ax.set_xlabel("training iteration")
        handles = [Line2D([], [], color=palette[m], lw=1.5, label=m) for m in models]
        if paired:
            handles += [Line2D([], [], color="0.3", lw=1.2, dashes=dashes[k] or (None, None), label=f"{k} objective")
                        for k in styles if k != "other"]
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=SMALL, frameon=False)
        return save(fig, stem)


def _models(data: pd.DataFrame, objective: list[str]) -> list[str]:
    """Each curve row's model (its colour): the method's name, with the ablation value of an
    ablation variant; by experiment where that name and objective would still hold two
    experiments, and where the runs' identity is not joined (no ``display`` column)."""
    if "display" not in data:
        return list(data.experiment)
    name = [d if not a else f"{d} {a}={v}" for d, a, v in zip(data.display, data.ablation, data.ablation_value)]
    keys = pd.DataFrame({"name": name, "objective": objective, "experiment": list(data.experiment)})
    shared = keys.groupby(["name", "objective"]).experiment.transform("nunique") > 1
    return [f"{n} ({e})" if s else n for n, e, s in zip(name, keys.experiment, shared)]


def ablation_bars(frame: pd.DataFrame, rows: list[dict], stem: Path, title: str = "", split: str = "test") -> list[Path]:
    """One ablation file as bars: in-domain test mIoU per variant (mean over seeds, error bar = sd)."""
    if frame.empty or not rows:
        return _empty(stem, "no runs for this ablation yet")
    sel = select_split(frame, split)
    sel = sel[(sel.metric == "miou") & sel.in_domain & (sel.variant == "default")]
    labels = [r["label"] for r in rows]
    data = pd.concat([sel[sel.experiment == r["experiment"]].assign(variant_label=r["label"]) for r in rows], ignore_index=True)
    if data.empty:
        return _empty(stem, "no runs for this ablation yet")
    data["mIoU (%)"] = 100 * data.value
    with _theme():
        fig, ax = plt.subplots(figsize=(COLUMN_WIDTH_IN, 2.2))
        sns.barplot(data=data, x="variant_label", y="mIoU (%)", order=labels, errorbar="sd", color="tab:blue", ax=ax)
        for patch, label in zip(ax.patches, labels):
            ax.annotate(f"{patch.get_height():.1f}", (patch.get_x() + patch.get_width() / 2, patch.get_height()),
                        ha="center", va="bottom", fontsize=7)
        ax.set_xlabel("")
        ax.set_ylim(0, max(100.0, float(data["mIoU (%)"].max()) + 8))
        if title:
            ax.set_title(title.split(":")[0], fontsize=8)
        return save(fig, stem)


SPACING_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def spacing_scatter(data: pd.DataFrame, stem: Path, title: str = "") -> list[Path]:
    """Min pairwise centroid distance (x) against val and test mIoU (two panels): a colour per
    class count N, a marker per encoding (``data``: :func:`genseg.report.spacing.points`)."""
    if data.empty:
        return _empty(stem, "no runs for this ablation yet")
    encodings = list(dict.fromkeys(data.encoding))
    counts = sorted(data.N.unique())
    colours = dict(zip(counts, sns.color_palette("deep", len(counts))))
    with _theme():
        fig, axes = plt.subplots(1, 2, figsize=(2 * COLUMN_WIDTH_IN, 2.4), sharey=True)
        for ax, (column, name) in zip(axes, (("val_miou", "val mIoU (%)"), ("test_miou", "test mIoU (%)"))):
            for (n, encoding), part in data.groupby(["N", "encoding"], sort=False):
                ax.scatter(part.min_distance, 100 * part[column], color=colours[n], s=22,
                           marker=SPACING_MARKERS[encodings.index(encoding) % len(SPACING_MARKERS)])
            ax.set_xlabel("min pairwise centroid distance")
            ax.set_ylabel(name)
        handles = [Line2D([], [], color=colours[n], marker="o", ls="", label=f"N = {n}") for n in counts]
        handles += [Line2D([], [], color="grey", ls="", label=e, marker=SPACING_MARKERS[i % len(SPACING_MARKERS)])
                    for i, e in enumerate(encodings)]
        axes[1].legend(handles=handles, fontsize=SMALL, loc="best", frameon=False)
        if title:
            fig.suptitle(title.split(":")[0], fontsize=8)
        return save(fig, stem)


def uncertainty_maps(samples_path: str | Path, stem: Path, experiments: list[str] | None = None, max_images: int = 3) -> list[Path]:
    """From ``uncertainty_samples.npz`` (:func:`~genseg.report.aggregate.aggregate_uncertainty`): per
    image two rows, its error maps (red: argmax wrong; grey: ignore) beside the image and its
    entropy maps (nats, one colour scale) beside the ground truth; a column per experiment."""
    if not samples_path:
        return _empty(stem, "no uncertainty maps (workflow config: uncertainty.experiments)")
    with np.load(Path(samples_path)) as data:
        arrays = {k: data[k] for k in data.files}
    domains = sorted({k.split("/")[2] for k in arrays if k.startswith("entropy/")})
    if not domains:
        return _empty(stem, "no uncertainty maps (workflow config: uncertainty.experiments)")
    domain = domains[0]
    found = sorted({k.split("/")[1] for k in arrays if k.startswith(f"entropy/") and k.split("/")[2] == domain})
    columns = [e for e in experiments if e in found] if experiments is not None else found
    indices = sorted({k.rsplit("/", 1)[1] for k in arrays if k.startswith(f"label/{domain}/")}, key=int)[:max_images]
    top = max(float(arrays[f"entropy/{e}/{domain}/{i}"].max()) for e in columns for i in indices if f"entropy/{e}/{domain}/{i}" in arrays)
    ncols = 1 + len(columns)
    cell = min(0.9, 2 * COLUMN_WIDTH_IN / ncols)
    lut = _class_colours(int(max(arrays[f"label/{domain}/{i}"][arrays[f"label/{domain}/{i}"] != 255].max(initial=0) for i in indices)) + 1)
    with _theme():
        fig, axes = plt.subplots(2 * len(indices), ncols, figsize=(cell * ncols, cell * 2 * len(indices)), squeeze=False,
                                 gridspec_kw={"wspace": 0.04, "hspace": 0.04})
        fig.subplots_adjust(left=0, right=1, bottom=0, top=1)
        shown = None
        for r, index in enumerate(indices):
            label = arrays[f"label/{domain}/{index}"]
            ignore = label == 255
            for c in range(ncols):
                for row, ax in ((2 * r, axes[2 * r, c]), (2 * r + 1, axes[2 * r + 1, c])):
                    ax.set_xticks([])
                    ax.set_yticks([])
                    ax.grid(False)
                    for side in ax.spines.values():
                        side.set_linewidth(0.3)
                    error_row = row == 2 * r
                    if c == 0:
                        ax.imshow(arrays[f"image/{domain}/{index}"] if error_row else _colourise(label.astype(np.int64), lut),
                                  interpolation="nearest")
                        if r == 0 and error_row:
                            ax.set_title("image / truth", fontsize=SMALL, pad=2)
                        continue
                    e = columns[c - 1]
                    pred, ent = arrays.get(f"pred/{e}/{domain}/{index}"), arrays.get(f"entropy/{e}/{domain}/{index}")
                    if pred is None:
                        ax.set_facecolor("0.85")
                        continue
                    if error_row:
                        err = np.zeros((*label.shape, 3))
                        err[(pred != label) & ~ignore] = (0.84, 0.15, 0.16)
                        err[ignore] = 0.6
                        ax.imshow(err, interpolation="nearest")
                        if r == 0:
                            ax.set_title("\n".join(textwrap.wrap(e, 12, break_on_hyphens=True)), fontsize=SMALL, pad=2)
                    else:
                        shown = ax.imshow(np.where(ignore, np.nan, ent.astype(np.float32)), cmap="magma", vmin=0, vmax=max(top, 1e-6),
                                          interpolation="nearest")
        if shown is not None:
            bar = fig.colorbar(shown, ax=axes, orientation="horizontal", fraction=0.04, pad=0.02)
            bar.set_label("entropy (nats); rows: errors (red), entropy", fontsize=SMALL)
            bar.ax.tick_params(labelsize=SMALL)
        return save(fig, stem)
