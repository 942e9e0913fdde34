"""Tables in Markdown and LaTeX with the same content (mIoU in percent, ratios as numbers)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ..methods import METHODS, methods_feeding
from .aggregate import RUN_IDENTITY, run_identity, with_identity


def normal_split(split):
    """The report's split: a name (every domain on it), or ``{domain: split}`` when the workflow
    evaluates domains on different splits (one shared split collapses to its name)."""
    if isinstance(split, dict):
        values = set(split.values())
        return values.pop() if len(values) == 1 else dict(split)
    return split


def select_split(frame: pd.DataFrame, split) -> pd.DataFrame:
    """Rows of the evaluations the report shows: on ``split`` (a name), or each domain's own
    split (a ``{domain: split}`` mapping; other domains left out)."""
    split = normal_split(split)
    if isinstance(split, str):
        return frame[frame.split == split]
    keep = np.array([split.get(d) == s for d, s in zip(frame.domain, frame.split)], dtype=bool)
    return frame.loc[keep]


def split_text(split) -> str:
    """``test``, or ``camvid: test, idd_lite: val`` (per domain)."""
    split = normal_split(split)
    return split if isinstance(split, str) else ", ".join(f"{d}: {s}" for d, s in split.items())


def split_of(split, domain: str) -> str:
    """The split ``domain`` is shown on; "" when every domain shares one (the caption says it)."""
    split = normal_split(split)
    return "" if isinstance(split, str) else split.get(domain, "")


def cell(values) -> str:
    """One reproduced number (percent): the value for one seed; over several, the mean and
    its 95% bootstrap CI over seeds, ``mean [low, high]`` (:func:`genseg.report.stats.seed_summary`)."""
    return mean_ci_cell(values, scale=100, digits=1)


def mean_ci_cell(values, scale: float = 1.0, digits: int = 0) -> str:
    """``scale`` x the value for one seed; over several, ``mean [low, high]`` (its 95% bootstrap CI
    over seeds, :func:`genseg.report.stats.seed_summary`), ``digits`` decimals; "–" if none (nan dropped)."""
    from .stats import seed_summary

    summary = seed_summary(values)
    if summary["n"] == 0:
        return "–"
    mean, low, high = (f"{scale * summary[k]:.{digits}f}" for k in ("mean", "ci_low", "ci_high"))
    return mean if summary["n"] == 1 or pd.isna(summary["ci_low"]) else f"{mean} [{low}, {high}]"


def ratio_cell(values) -> str:
    """A ratio (not a percent; e.g. the grid ratio): the mean over seeds, 2 decimals; "–" if none."""
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[~np.isnan(x)]
    return f"{x.mean():.2f}" if x.size else "–"


def pivot_cells(sel: pd.DataFrame, index: str, columns: str) -> pd.DataFrame:
    """One :func:`cell` (over seeds) of ``value`` for each (index, columns) pair."""
    stats = sel.groupby([index, columns]).value.apply(lambda v: cell(v.to_numpy())).reset_index(name="cell")
    table = stats.pivot(index=index, columns=columns, values="cell").fillna("–")
    table.columns.name = None
    return table


def flow_axes(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the methods feeding ``flowseg_steps`` (FlowSeg) with ``encoding`` and ``objective``
    (vanilla / reshaped) columns from model options."""
    sel = methods_only(frame[frame.method.isin(methods_feeding("flowseg_steps"))]).copy()
    options = [json.loads(o) for o in sel.model_options]
    sel["encoding"] = [o.get("encoding", "?") for o in options]
    sel["objective"] = [objective_of(m, o) for m, o in zip(sel.method, options)]
    return sel


def oracle_methods() -> list[str]:
    """Methods whose spec marks them an upper bound (they read the labels)."""
    return [name for name, spec in METHODS.items() if spec.oracle]


def methods_only(sel: pd.DataFrame) -> pd.DataFrame:
    """Rows of methods proper: not oracle upper bounds, not ablation variants (rows with an
    ``ablation``, which have their own tables)."""
    ablation = with_identity(sel).ablation
    return sel[~sel.method.isin(oracle_methods()) & (ablation == "").to_numpy()]


def swept(sel: pd.DataFrame, option: str) -> pd.Series:
    """Rows evaluated with the run's own predict options or with only ``option`` changed (its sweep)."""
    return pd.Series([set(json.loads(p)) <= {option} for p in sel.predict_options], index=sel.index, dtype=bool)


def steps_rows(frame: pd.DataFrame, split: str) -> pd.DataFrame:
    """FlowSeg in-domain mIoU rows of the steps sweep, the run's default step count included."""
    sel = flow_axes(frame)
    sweep = swept(sel, "steps")
    sel = select_split(sel, split)
    sel = sel[(sel.metric == "miou") & sel.in_domain & sweep & sel.steps.notna()].copy()
    sel["steps"] = sel.steps.astype(int)
    return sel


def miou_by_domain(frame: pd.DataFrame, split="test") -> pd.DataFrame:
    """Experiments x test domains (default predict options); the in-domain column first, then
    the in-domain grid ratios at 8 and 16 px (:class:`genseg.metrics.GridArtifacts`; "–" for
    results written before them).

    Oracle evaluations (maskige reconstruction upper bounds) have their own table."""
    sel = select_split(frame, split)
    sel = sel[sel.variant == "default"]
    table = domain_columns(methods_only(sel[sel.metric == "miou"]), "experiment", split)
    grid = methods_only(sel[sel.in_domain.astype(bool)])
    for period in (8, 16):
        ratios = grid[grid.metric == f"grid_ratio_{period}"]
        table[f"grid ratio, {period} px"] = [ratio_cell(ratios.value[ratios.experiment == e]) for e in table.index]
    table.index.name = "Method"
    return table


def harmonic_mean(values) -> float:
    """n / sum(1 / x): the cross-domain summary (GSS Table 6); 0 if any value is 0."""
    values = [float(v) for v in values]
    return 0.0 if min(values) <= 0 else len(values) / sum(1.0 / v for v in values)


def cross_domain(frame: pd.DataFrame, split="test") -> pd.DataFrame:
    """GSS Table 6 layout: mIoU on each unseen target domain, their harmonic mean, and in-domain.

    The harmonic mean is taken per seed, then averaged (± std) like every other cell."""
    sel = select_split(frame, split)
    sel = methods_only(sel[(sel.metric == "miou") & (sel.variant == "default")])
    if sel[~sel.in_domain].empty:
        return pd.DataFrame({"Method": ["no unseen test domains in this config"]}).set_index("Method")
    targets = sel[~sel.in_domain].assign(column=lambda f: [labelled(d, split_of(split, d)) for d in f.domain])
    hmean = (targets.groupby(["experiment", "seed"]).value.agg(harmonic_mean).reset_index().assign(column="h.mean"))
    per_domain = isinstance(normal_split(split), dict)  # domains differ in split: name each in-domain one's
    in_splits = ", ".join(sorted({f"{d} {split_of(split, d)}" for d in sel[sel.in_domain].domain})) if per_domain else ""
    in_column = labelled("in-domain", in_splits)
    source = sel[sel.in_domain].assign(column=in_column)
    rows = pd.concat([targets, hmean, source], ignore_index=True)
    table = pivot_cells(rows, "experiment", "column")
    order = sorted(targets.column.unique()) + ["h.mean"] + ([in_column] if not source.empty else [])
    table = table[order]
    trained = sel.groupby("experiment").train_domains.first()
    table.insert(0, "Trained on", [str(trained[e]).replace("+", " + ") for e in table.index])
    table.insert(1, "Budget (iterations x batch)", [budget_cells(frame, e)["Budget (iterations x batch)"] for e in table.index])
    table.index.name = "Method"
    return table


def unreachable_note(frame: pd.DataFrame, split="test") -> str:
    """Caption text: per (trained-on dataset, unseen domain), how many of the domain's classes
    no model class maps to (every pixel of them counted wrong); "" without such rows."""
    sel = select_split(frame, split)
    sel = methods_only(sel[(sel.variant == "default") & ~sel.in_domain.astype(bool)])
    counts = sel[sel.metric == "unreachable_classes"]
    if counts.empty:
        return ""
    parts = []
    for (dataset, domain), part in counts.groupby(["dataset", "domain"]):
        total = sel[(sel.dataset == dataset) & (sel.domain == domain) & sel.metric.str.startswith("iou/")].metric.nunique()
        parts.append(f"{domain} from {dataset}: {int(part.value.max())} of {total}")
    return (" Target classes unreachable (no model class maps to them; every pixel of them is counted wrong): "
            + "; ".join(parts) + ".")


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


def labelled(name: str, split: str) -> str:
    """A column name with the split its numbers come from, when domains differ in split."""
    return f"{name} ({split})" if split else name


def domain_columns(sel: pd.DataFrame, index: str, split="test") -> pd.DataFrame:
    """``index`` x test domains, the in-domain column first (with each domain's split when they differ)."""
    sel = sel.assign(column=[(f"{d} (in-domain, {split_of(split, d)})" if split_of(split, d) else f"{d} (in-domain)") if i
                             else labelled(d, split_of(split, d)) for d, i in zip(sel.domain, sel.in_domain)])
    table = pivot_cells(sel, index, "column")
    return table[sorted(table.columns, key=lambda c: ("in-domain" not in c, c))]


MASKIGE_VARIANTS = {("ff-r", "ff"): "FF-R", ("ff", "ff"): "FF", ("ff", "ft"): "FT", ("ff", "tf"): "TF", ("ff", "ft-w"): "FT-W"}


def gss_reconstruction(frame: pd.DataFrame, split: str = "test", reported: pd.DataFrame | None = None) -> pd.DataFrame:
    """Maskige reconstruction upper bound (GSS Tables 1-2): labels -> posterior -> inverse, mIoU by
    domain; GSS Table 1's number for the same palette/inverse beside it (labelled reported)."""
    sel = select_split(frame, split)
    feeding = methods_feeding("gss_reconstruction")
    sel = sel[sel.method.isin(feeding) & (sel.metric == "miou") & (sel.variant == "default")].copy()
    if sel.empty:
        return pd.DataFrame({"Maskige": ["no maskige runs in this config"]}).set_index("Maskige")
    options = [json.loads(o) for o in sel.model_options]
    names = [MASKIGE_VARIANTS.get((o["palette"], o["inverse"]), f"{o['palette']}/{o['inverse']}") for o in options]
    sel["row"] = [f"{n} ({o['posterior']}, d = {o['maskige_scale']}/{o['downsample']})" for n, o in zip(names, options)]
    order = {v: i for i, v in enumerate(MASKIGE_VARIANTS.values())}
    table = domain_columns(sel, "row", split)
    table = table.loc[sorted(table.index, key=lambda r: (order.get(r.split(" ")[0], 99), r))]
    if reported is not None:
        paper = reported[reported.table == "gss_reconstruction"]
        values = dict(zip(paper.method, paper.value))
        header = f"reported ({paper.backbone.iloc[0]}, {paper.dataset.iloc[0]})" if len(paper) else "reported"
        table[header] = [f"{values[r.split(' ')[0]]:g}" if r.split(" ")[0] in values else "–" for r in table.index]
    table.index.name = "Maskige (posterior, token grid)"
    return table


def gss_prior(frame: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """GSS prior ablation (GSS Table 3): token grid d and the auxiliary head; in-domain mIoU and mAcc, FF inverse."""
    sel = select_split(frame, split)
    sel = sel[sel.method.isin(methods_feeding("gss_prior")) & sel.in_domain & (sel.variant == "default")].copy()
    sel = sel[sel.metric.isin(["miou", "macc"])]
    options = [json.loads(o) for o in sel.model_options]
    keep = [o.get("stage", "prior") == "prior" for o in options]
    sel, options = sel[keep], [o for o, k in zip(options, keep) if k]
    if sel.empty:
        return pd.DataFrame({"Prior": ["no GSS prior runs in this config"]}).set_index("Prior")
    sel["row"] = [f"d = 1/{o['downsample'] // o['maskige_scale']}, " + ("auxiliary head" if o["aux_weight"] > 0 else "no auxiliary head")
                  for o in options]
    table = pivot_cells(sel, "row", "metric").rename(columns={"miou": "mIoU", "macc": "mAcc"})[["mIoU", "mAcc"]]
    table.index.name = "Prior"
    return table


def ablation_table(frame: pd.DataFrame, ablation: dict, rows: list[dict], reported: pd.DataFrame | None = None,
                   split: str = "test", curves: pd.DataFrame | None = None) -> pd.DataFrame:
    """One ablation file's table: a row per variant (file order), the validation mIoU a design is
    chosen by (the last point of each run's validation curve, when ``curves`` are given), in-domain
    test mIoU, and the paper's number for the same setting beside it (labelled reported) when the
    file names one.

    ``rows``: ``{label, experiment}`` for this ablation (from the workflow's ablations.json)."""
    sel = select_split(frame, split)
    sel = sel[(sel.metric == "miou") & sel.in_domain & (sel.variant == "default")]
    labels = [r["label"] for r in rows]
    parts = []
    for row in rows:
        part = sel[sel.experiment == row["experiment"]]
        parts.append(part.assign(row=row["label"], column="mIoU (reproduced)"))
    data = pd.concat(parts, ignore_index=True) if parts else sel.iloc[:0].assign(row=[], column=[])
    if data.empty:
        table = pd.DataFrame({"mIoU (reproduced)": ["–"] * len(labels)}, index=labels)
    else:
        table = pivot_cells(data, "row", "column").reindex(labels).fillna("–")
    if curves is not None and not curves.empty:
        last = curves.sort_values("step").groupby("run_id").tail(1)
        table.insert(0, "val mIoU (selection)", [cell(last[last.experiment == r["experiment"]].val_miou.to_numpy()) for r in rows])
    if ablation.get("reported") and reported is not None:
        paper = reported[reported.table == ablation["reported"]]
        values = []
        for label in labels:
            match = paper[(paper.setting.astype(str) == label) | (paper.method.astype(str) == label)]
            values.append(f"{match.value.iloc[0]:.2f}" if len(match) else "–")
        table["mIoU (reported)"] = values
    table.index.name = ablation.get("axis") or " x ".join(ablation.get("axes") or ()) or "Variant"
    return table


def display_method(method: str, options: dict) -> str:
    """The paper's name for a run's method, as its spec gives it (GSS by its inverse: GSS-FF, GSS-FT);
    a method no longer in the method table by its config name."""
    return METHODS[method].display(options) if method in METHODS else method


def objective_of(method: str, options: dict) -> str:
    """A run's training objective as its method's spec names it ("" for a method with one)."""
    return METHODS[method].objective_name(options) if method in METHODS else ""


def curve_runs(curves: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """Validation curves with each run's identity from the tidy ``frame``, joined by run id
    (identity columns the curves carry themselves, as older curves.csv files do, give way):
    :data:`~genseg.report.aggregate.RUN_IDENTITY`, ``display`` (the method's name, from its spec)
    and ``objective`` (:func:`objective_of`). Runs the frame does not hold are left out."""
    runs = run_identity(frame) if len(frame) else pd.DataFrame(columns=[*RUN_IDENTITY, "model_options"])
    options = [json.loads(o) for o in runs.model_options]
    runs = runs.assign(display=[display_method(m, o) for m, o in zip(runs.method, options)],
                       objective=[objective_of(m, o) for m, o in zip(runs.method, options)]).drop(columns="model_options")
    own = [c for c in curves.columns if c == "run_id" or c not in runs.columns]
    return curves[own].merge(runs, on="run_id", how="inner")


CONVERGENCE_FRACTION = 0.9


def convergence_runs(curves: pd.DataFrame, fraction: float = CONVERGENCE_FRACTION) -> pd.DataFrame:
    """Per run (:func:`curve_runs` rows): ``iterations`` and ``wall_seconds`` at its first validation
    point with val mIoU >= ``fraction`` x its final (last) val mIoU (:func:`genseg.report.stats.time_to_fraction`;
    nan when that is nan, or the curve has no wall time), and ``final`` (that last val mIoU)."""
    from .stats import time_to_fraction

    rows = []
    for run, curve in curves.groupby("run_id", sort=True):
        curve = curve.sort_values("step", kind="stable")
        hit = time_to_fraction(curve.step, curve.val_miou, fraction)
        point = curve.iloc[hit] if hit >= 0 else None
        rows.append({**curve.iloc[-1][["run_id", "experiment", "display", "objective", "ablation", "ablation_value"]].to_dict(),
                     "iterations": float("nan") if point is None else float(point.step),
                     "wall_seconds": float("nan") if point is None else float(point.get("wall_seconds", float("nan"))),
                     "final": float(curve.val_miou.iloc[-1])})
    return pd.DataFrame(rows)


def convergence(curves: pd.DataFrame) -> pd.DataFrame:
    """Per experiment (rows: method name, experiment): its variant (the training objective of a
    method with several, the ablation value), the number of seeds, iterations and wall seconds to
    90% of the final validation mIoU (:func:`convergence_runs`) and the final validation mIoU, each
    the value for one seed or mean [95% bootstrap CI over seeds]."""
    runs = convergence_runs(curves) if not curves.empty else pd.DataFrame()
    if runs.empty:
        return pd.DataFrame({"Method": ["no validation curves"]}).set_index("Method")
    rows = []
    for (display, experiment), part in runs.groupby(["display", "experiment"], sort=True):
        first = part.iloc[0]
        variant = [first.objective] + ([f"{first.ablation}={first.ablation_value}"] if first.ablation else [])
        rows.append({"Method": f"{display} ({experiment})", "Variant": ", ".join(v for v in variant if v) or "–",
                     "Seeds": str(int(part.iterations.notna().sum())),
                     f"Iterations to {CONVERGENCE_FRACTION:.0%}": mean_ci_cell(part.iterations),
                     f"Wall (s) to {CONVERGENCE_FRACTION:.0%}": mean_ci_cell(part.wall_seconds, digits=1),
                     "Final val mIoU (%)": cell(part.final)})
    return pd.DataFrame(rows).set_index("Method")


def backbone(options: dict) -> str:
    """A run's backbone from its model options (the encoder name, or the model family's own)."""
    return str(options.get("encoder") or options.get("backbone") or ("Swin" if "embed_dim" in options else "–"))


def main_results(frame: pd.DataFrame, reported: pd.DataFrame | None = None, split: str = "test") -> pd.DataFrame:
    """FlowSeg's main table layout (Method, Backbone, Pretrain, mIoU reproduced, mIoU reported):
    our runs (in-domain test mIoU) with the papers' numbers for the same method beside them
    (labelled with backbone and dataset: never the same data as ours), then the methods only
    the papers ran. Main-result rows of both papers (``*_main_*`` tables) are used."""
    sel = select_split(frame, split)
    sel = methods_only(sel[(sel.metric == "miou") & sel.in_domain & (sel.variant == "default")])
    paper = reported[reported.table.str.contains("_main_")] if reported is not None else None
    rows = []
    for experiment, part in sel.groupby("experiment", sort=False):
        options = json.loads(part.model_options.iloc[0])
        name = display_method(part.method.iloc[0], options)
        ours = {"Method": f"{name} ({experiment})", "Backbone": backbone(options),
                "Pretrain": pretrain_cell(part, options),
                **budget_cells(frame, experiment), "mIoU reproduced": cell(part.value.to_numpy())}
        rows.append({**ours, "mIoU reported": _reported_cells(paper, name)})
    if paper is not None:
        ran = {display_method(m, json.loads(o)) for m, o in zip(sel.method, sel.model_options)}
        for method, part in paper[~paper.method.isin(ran) & (paper.metric == "mIoU")].groupby("method", sort=False):
            rows.append({"Method": method, "Backbone": "–", "Pretrain": "–", "Budget (iterations x batch)": "–",
                         "Train wall (s)": "–", "mIoU reproduced": "–", "mIoU reported": _reported_cells(paper, method)})
    return pd.DataFrame(rows).set_index("Method") if rows else pd.DataFrame({"Method": ["no runs"]}).set_index("Method")


def pretrain_cell(rows: pd.DataFrame, options: dict) -> str:
    """The weights a run started from: its record's flag (``random (smoke)``), else from its options."""
    flags = set(rows.get("pretrained", pd.Series(dtype=str)).dropna().astype(str)) - {""}
    if flags:
        return "; ".join(sorted(flags))
    return "local weights" if options.get("pretrained_file") or options.get("pixnerd_file") else "none (random init)"


def budget_cells(frame: pd.DataFrame, experiment: str) -> dict[str, str]:
    """The training budget of an experiment's runs (iterations x batch, with the runs it starts
    from) and their mean train wall in seconds; "–" for results recorded before budgets were."""
    runs = frame[frame.experiment == experiment]
    budgets = sorted(set(runs.get("budget", pd.Series(dtype=str)).dropna().astype(str)) - {""})
    wall = runs[runs.metric == "train_wall_seconds"].drop_duplicates("run_id").value
    return {"Budget (iterations x batch)": "; ".join(budgets) or "–", "Train wall (s)": f"{wall.mean():.0f}" if len(wall) else "–"}


def _reported_cells(paper: pd.DataFrame | None, method: str) -> str:
    """``value (backbone, pretraining, dataset)`` for each reported mIoU of ``method``; "–" if none."""
    if paper is None:
        return "–"
    rows = paper[(paper.method == method) & (paper.metric == "mIoU")]
    cells = []
    for value, *about in zip(rows.value, rows.backbone, rows.pretraining, rows.dataset):
        cells.append(f"{value:g} ({', '.join(a for a in about if a not in ('', 'unknown'))})")
    return "; ".join(cells) or "–"


def reported_block(reported: pd.DataFrame, table: str, columns: str = "dataset") -> pd.DataFrame:
    """The papers' numbers of one table as printed: rows method (+ backbone), columns
    ``columns`` (dataset, metric or setting), values in percent. Always labelled reported."""
    rows = reported[reported.table == table].copy()
    if rows.empty:
        return pd.DataFrame({"Reported": [f"no reported numbers for {table}"]}).set_index("Reported")
    rows["row"] = [m if b in ("", "unknown") else f"{m} ({b})" for m, b in zip(rows.method, rows.backbone)]
    if columns == "metric_h":
        rows["column"] = [("h.mean" if "h.mean" in m else d) for m, d in zip(rows.metric, rows.dataset)]
    else:
        rows["column"] = rows[columns].astype(str)
    order = list(dict.fromkeys(rows.column))
    table_ = rows.pivot_table(index="row", columns="column", values="value", aggfunc="first", sort=False)
    table_ = table_[order].map(lambda v: "–" if pd.isna(v) else f"{v:g}")
    table_.columns.name = None
    table_.index.name = f"Reported ({rows.paper.iloc[0]})"
    return table_


def steps_with_reported(table: pd.DataFrame, reported: pd.DataFrame | None) -> pd.DataFrame:
    """The steps table plus a row of the paper's numbers at the same step counts (labelled reported)."""
    if reported is None or "no FlowSeg" in str(table.index[0]):
        return table
    paper = reported[reported.table == "flowseg_steps"]
    by_steps = {int(s): v for s, v in zip(paper.setting, paper.value)}
    row = [f"{by_steps[int(c.split()[0])]:g}" if int(c.split()[0]) in by_steps else "–" for c in table.columns]
    dataset = paper.dataset.iloc[0] if len(paper) else "?"
    out = table.copy()
    out.loc[f"reported (FlowSeg, {dataset})"] = row
    return out


def paired_tests(paired: pd.DataFrame) -> pd.DataFrame:
    """Paired bootstrap over test images of mIoU_a - mIoU_b (percent points) with its 95% CI and p-value.

    Where a pair shares several seeds, only its row over seeds and images (``seed`` ``all``)
    is shown, its Seed cell "all (n)" with n the seeds paired."""
    if paired.empty:
        return pd.DataFrame({"Comparison": ["no comparisons configured (workflow config: compare)"]}).set_index("Comparison")
    paired = paired.assign(seed=paired.seed.astype(str), split=paired.split if "split" in paired else "")
    key = list(zip(paired.a, paired.b, paired.split, paired.domain))
    pooled = {k for k, seed in zip(key, paired.seed) if seed == "all"}
    paired = paired[[seed == "all" or k not in pooled for k, seed in zip(key, paired.seed)]]
    n_seeds = paired.n_seeds if "n_seeds" in paired else pd.Series(1, index=paired.index)
    seeds = [f"all ({int(n)})" if seed == "all" else seed for seed, n in zip(paired.seed, n_seeds)]
    out = pd.DataFrame({
        "Comparison": [f"{a} − {b}" for a, b in zip(paired.a, paired.b)],
        "Seed": seeds,
        "Domain": paired.domain,
        "Δ mIoU": [f"{100 * d:+.1f}" for d in paired.delta],
        "95% CI": [f"[{100 * lo:+.1f}, {100 * hi:+.1f}]" for lo, hi in zip(paired.ci_low, paired.ci_high)],
        "p": [f"{p:.3g}" for p in paired.p_value],
        "Images": paired.n_images.astype(int).astype(str),
    })
    return out.set_index("Comparison")


def uncertainty(frame: pd.DataFrame) -> pd.DataFrame:
    """``uncertainty.csv`` -> a row per experiment and domain (mean over its seeds): the predictive
    distribution, mIoU (%) of its argmax and of one sample, mean entropy (nats), AUROC (%) of entropy
    for errors, ECE (%), the share of errors at zero entropy (%), images/s (K draws included) and the
    step's wall seconds per run."""
    if frame.empty:
        return pd.DataFrame({"Method": ["no uncertainty runs (workflow config: uncertainty.experiments)"]}).set_index("Method")
    wide = frame.pivot_table(index=["experiment", "display_name", "domain", "kind", "k", "num_images"], columns="metric",
                             values="value", aggfunc="mean").reset_index()
    seeds = frame.groupby(["experiment", "domain"]).seed.nunique()
    pct, num = (lambda v: f"{100 * v:.1f}"), (lambda v: f"{v:.3f}")
    out = pd.DataFrame({
        "Method": [f"{d} ({e})" for d, e in zip(wide.display_name, wide.experiment)],
        "Domain": wide.domain,
        "Predictive": [f"{int(k)} samples (votes)" if kind == "samples" else "softmax" for kind, k in zip(wide.kind, wide.k)],
        "Images": wide.num_images.astype(int).astype(str),
        "Seeds": [str(seeds[(e, d)]) for e, d in zip(wide.experiment, wide.domain)],
        "mIoU (argmax)": wide.miou.map(pct),
        "mIoU (1 sample)": wide.miou_single.map(pct),
        "Mean entropy": wide.mean_entropy.map(num),
        "AUROC (%)": wide.auroc.map(pct),
        "ECE (%)": wide.ece.map(pct),
        "Errors at H = 0 (%)": wide.zero_entropy_errors.map(pct),
        "Images/s": wide.images_per_s.map(lambda v: f"{v:.1f}"),
        "Wall (s)": wide.wall_seconds.map(lambda v: f"{v:.1f}"),
    })
    return out.set_index("Method")


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
