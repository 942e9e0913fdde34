"""Statistics for the report: spread over seeds and paired bootstraps over test images.

* :func:`seed_summary` / :func:`summarise_seeds`: mean, sample std (ddof=1) and a
  percentile-bootstrap confidence interval of the mean over seeds
  (:func:`scipy.stats.bootstrap`, seeded).
* :func:`paired_bootstrap` / :func:`compare_evaluations`: two methods evaluated on the
  same images; image indices are resampled with replacement (the same draw for both
  methods), each method's dataset-level mIoU is recomputed from the summed per-image
  areas (the ``.npz`` written beside each evaluation JSON, see
  :mod:`genseg.engine.evaluate`) and the difference ``mIoU_a - mIoU_b`` gets a
  percentile CI and a two-sided bootstrap p-value.
* :func:`paired_bootstrap_seeds` / :func:`compare_seeds`: the same with several seeds of
  each method, paired by seed (seed s of A against seed s of B) as well as by image: each
  resample draws images (shared by every seed) and seeds, both with replacement; the
  statistic is the mean over the drawn seeds of mIoU_a(s) - mIoU_b(s).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

AREA_KEYS = ("intersect", "union", "pred_area", "label_area")
SEED_GROUPS = ("experiment", "split", "domain", "variant", "metric")


def seed_summary(values, confidence: float = 0.95, n_resamples: int = 9999, seed: int = 0) -> dict:
    """``n``, ``mean``, ``std`` (ddof=1) and a bootstrap CI (``ci_low``, ``ci_high``) of the mean.

    The CI is the percentile bootstrap of the mean (:func:`scipy.stats.bootstrap`,
    ``method="percentile"``, rng ``np.random.default_rng(seed)``): unlike BCa it stays
    defined for 2-5 values. NaN values are dropped (``n`` counts the rest). Fewer than
    2 values: std and CI are nan; identical values: the CI is ``[v, v]``.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[~np.isnan(x)]
    n = int(x.size)
    nan = float("nan")
    mean = float(x.mean()) if n else nan
    std = float(x.std(ddof=1)) if n >= 2 else nan
    if n < 2:
        low = high = nan
    elif np.all(x == x[0]):  # degenerate bootstrap distribution: scipy would warn
        mean = low = high = float(x[0])
        std = 0.0
    else:
        result = stats.bootstrap(
            (x,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
            method="percentile", rng=np.random.default_rng(seed),
        )
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    return {"n": n, "mean": mean, "std": std, "ci_low": low, "ci_high": high}


def summarise_seeds(frame: pd.DataFrame, by=SEED_GROUPS, value: str = "value", **kw) -> pd.DataFrame:
    """One row per group of ``by`` (e.g. the tidy CSV of :mod:`genseg.report.aggregate`)
    with ``n``, ``mean``, ``std``, ``ci_low``, ``ci_high`` of ``value`` over its rows (the
    seeds), from :func:`seed_summary` (``kw`` passed on)."""
    by = list(by)
    columns = by + ["n", "mean", "std", "ci_low", "ci_high"]
    rows = []
    for key, group in frame.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)), **seed_summary(group[value].to_numpy(dtype=np.float64), **kw)})
    return pd.DataFrame(rows, columns=columns)


def time_to_fraction(steps, values, fraction: float = 0.9) -> int:
    """Index of the first point with ``values[i] >= fraction * values[-1]`` (the final value),
    points in ``steps`` order; -1 when the final value is nan (nan points never qualify). The
    resolution is the spacing of the points (a validation curve: the validation interval)."""
    order = np.argsort(np.asarray(steps, dtype=np.float64), kind="stable")
    y = np.asarray(values, dtype=np.float64)[order]
    if y.size == 0 or np.isnan(y[-1]):
        return -1
    hits = np.flatnonzero(y >= fraction * y[-1])
    return int(order[hits[0]]) if hits.size else -1


def miou_from_areas(intersect, union) -> float:
    """mIoU from per-class areas as in :func:`genseg.metrics.scores_from_areas`:
    nanmean over classes of I/U, classes with U = 0 skipped (nan if none is left).
    2-D inputs (images, K) are summed over images first."""
    intersect = np.asarray(intersect, dtype=np.float64)
    union = np.asarray(union, dtype=np.float64)
    if intersect.ndim == 2:
        intersect, union = intersect.sum(0), union.sum(0)
    return float(_miou_rows(intersect[None], union[None])[0])


def _miou_rows(intersect: np.ndarray, union: np.ndarray) -> np.ndarray:
    """Row-wise mIoU of (R, K) area sums (nan for a row with no class of positive union)."""
    valid = union > 0
    iou = np.divide(intersect, union, out=np.zeros_like(intersect), where=valid)
    count = valid.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, iou.sum(1) / count, np.nan)


def _per_image(areas: dict, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        intersect, union = np.asarray(areas["intersect"]), np.asarray(areas["union"])
    except KeyError as err:
        raise ValueError(f"areas {name} lack {err.args[0]!r} (need 'intersect' and 'union')") from None
    if intersect.ndim != 2 or intersect.shape != union.shape:
        raise ValueError(f"areas {name}: intersect {intersect.shape} and union {union.shape} must be the same (images, classes)")
    return intersect, union


def paired_bootstrap(areas_a: dict, areas_b: dict, n_resamples: int = 2000, seed: int = 0, confidence: float = 0.95, chunk: int = 500) -> dict:
    """Paired bootstrap over images of delta = mIoU_a - mIoU_b.

    ``areas_*``: per-image, per-class ``intersect`` and ``union`` arrays (images, K) of two
    methods on the same images. Each resample draws N image indices with replacement
    (the same for both methods), turns them into a count matrix C (R, N) and gets the
    dataset-level areas as ``C @ areas`` (R, K), hence each method's mIoU and the delta.
    Returns ``delta`` (full set), ``miou_a``, ``miou_b``, ``ci_low``/``ci_high`` (percentile
    CI of the resampled deltas), ``p_value`` = min(1, 2 min((#{d* <= 0} + 1) / (R + 1),
    (#{d* >= 0} + 1) / (R + 1))), ``n_images``, ``n_resamples``.
    """
    stacked, n, k = _stack(areas_a, areas_b, n_resamples)
    total = stacked.sum(0)
    miou_a = float(_miou_rows(total[None, :k], total[None, k:2 * k])[0])
    miou_b = float(_miou_rows(total[None, 2 * k:3 * k], total[None, 3 * k:])[0])
    rng = np.random.default_rng(seed)
    deltas = np.empty(n_resamples)
    for start in range(0, n_resamples, chunk):
        rows = min(chunk, n_resamples - start)
        deltas[start:start + rows] = _deltas(_image_counts(rng, rows, n) @ stacked, k)
    return {"delta": miou_a - miou_b, "miou_a": miou_a, "miou_b": miou_b, **_interval(deltas, confidence),
            "n_images": int(n), "n_resamples": int(n_resamples)}


def paired_bootstrap_seeds(pairs: list[tuple[dict, dict]], n_resamples: int = 2000, seed: int = 0,
                           confidence: float = 0.95, chunk: int = 500) -> dict:
    """Paired bootstrap over seeds and images of delta = mean_s (mIoU_a(s) - mIoU_b(s)).

    ``pairs``: one ``(areas_a, areas_b)`` per seed (seed s of method A with seed s of B), every
    one on the same images. Each resample draws N image indices (one draw for every seed and
    both methods, as in :func:`paired_bootstrap`) and S seed indices, both with replacement;
    its statistic is the mean over the drawn seeds of the per-seed deltas on the drawn images.
    Returns what :func:`paired_bootstrap` returns, with ``miou_a``, ``miou_b`` and ``delta``
    the means over seeds of the full-set values, plus ``n_seeds``.
    """
    if not pairs:
        raise ValueError("paired bootstrap over seeds needs at least one seed")
    stacks = [_stack(a, b, n_resamples) for a, b in pairs]
    shapes = {stack.shape for stack, _, _ in stacks}
    if len(shapes) != 1:
        raise ValueError(f"paired bootstrap over seeds needs the same images and classes for every seed, got shapes {sorted(shapes)}")
    n, k = stacks[0][1], stacks[0][2]
    seeds = np.stack([stack for stack, _, _ in stacks])  # (S, N, 4K)
    totals = seeds.sum(1)  # (S, 4K)
    miou_a = _miou_rows(totals[:, :k], totals[:, k:2 * k])
    miou_b = _miou_rows(totals[:, 2 * k:3 * k], totals[:, 3 * k:])
    rng = np.random.default_rng(seed)
    s = len(pairs)
    deltas = np.empty(n_resamples)
    for start in range(0, n_resamples, chunk):
        rows = min(chunk, n_resamples - start)
        counts = _image_counts(rng, rows, n)
        per_seed = np.stack([_deltas(counts @ stack, k) for stack in seeds], axis=1)  # (rows, S)
        drawn = rng.integers(0, s, size=(rows, s))
        deltas[start:start + rows] = np.take_along_axis(per_seed, drawn, axis=1).mean(1)
    return {"delta": float(np.mean(miou_a - miou_b)), "miou_a": float(np.mean(miou_a)), "miou_b": float(np.mean(miou_b)),
            **_interval(deltas, confidence), "n_images": int(n), "n_resamples": int(n_resamples), "n_seeds": s}


def _stack(areas_a: dict, areas_b: dict, n_resamples: int) -> tuple[np.ndarray, int, int]:
    """(N, 4K) per-image [intersect_a, union_a, intersect_b, union_b], N and K, checked."""
    ia, ua = _per_image(areas_a, "a")
    ib, ub = _per_image(areas_b, "b")
    if ia.shape != ib.shape:
        raise ValueError(f"paired bootstrap needs the same images and classes: a has shape {ia.shape}, b has {ib.shape}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be positive, got {n_resamples}")
    n, k = ia.shape
    if n == 0:
        raise ValueError("paired bootstrap needs at least one image")
    return np.concatenate([ia, ua, ib, ub], axis=1).astype(np.float64), n, k


def _image_counts(rng: np.random.Generator, rows: int, n: int) -> np.ndarray:
    """(rows, N) counts of N image indices drawn with replacement, one draw per row."""
    index = rng.integers(0, n, size=(rows, n)) + (np.arange(rows) * n)[:, None]
    return np.bincount(index.ravel(), minlength=rows * n).reshape(rows, n).astype(np.float64)


def _deltas(sums: np.ndarray, k: int) -> np.ndarray:
    """mIoU_a - mIoU_b per row of (rows, 4K) dataset-level area sums."""
    return _miou_rows(sums[:, :k], sums[:, k:2 * k]) - _miou_rows(sums[:, 2 * k:3 * k], sums[:, 3 * k:])


def _interval(deltas: np.ndarray, confidence: float) -> dict:
    """Percentile CI and two-sided bootstrap p-value of resampled deltas (non-finite ones dropped)."""
    alpha = 1.0 - confidence
    finite = deltas[np.isfinite(deltas)]
    if finite.size:
        low, high = np.percentile(finite, [100 * alpha / 2, 100 * (1 - alpha / 2)])
        below = (np.count_nonzero(finite <= 0) + 1) / (finite.size + 1)
        above = (np.count_nonzero(finite >= 0) + 1) / (finite.size + 1)
        p_value = min(1.0, 2.0 * min(below, above))
    else:
        low = high = p_value = float("nan")
    return {"ci_low": float(low), "ci_high": float(high), "p_value": float(p_value)}


def load_areas(eval_json_path: str | Path) -> dict[str, np.ndarray]:
    """Per-image areas (``intersect``, ``union``, ``pred_area``, ``label_area``; (images, K))
    from the ``.npz`` written beside an evaluation JSON."""
    path = Path(eval_json_path).with_suffix(".npz")
    if not path.is_file():
        raise FileNotFoundError(f"no per-image areas {path} beside evaluation {eval_json_path}")
    with np.load(path) as data:
        missing = [key for key in AREA_KEYS if key not in data.files]
        if missing:
            raise ValueError(f"{path} lacks arrays {missing}")
        return {key: data[key] for key in AREA_KEYS}


def compare_evaluations(json_a: str | Path, json_b: str | Path, **kw) -> dict:
    """:func:`paired_bootstrap` of two evaluation JSONs (A - B) plus ``run_id_a``, ``run_id_b``.

    Both must have evaluated the same split, domains, number of images (and classes,
    where recorded); ``kw`` goes to :func:`paired_bootstrap`."""
    areas, records = _paired_areas(json_a, json_b)
    result = paired_bootstrap(*areas, **kw)
    return {**result, "run_id_a": records[0].get("run_id"), "run_id_b": records[1].get("run_id")}


def compare_seeds(pairs: list[tuple[str | Path, str | Path]], **kw) -> dict:
    """:func:`paired_bootstrap_seeds` of one (JSON of A, JSON of B) pair of evaluations per
    seed, each pair checked as in :func:`compare_evaluations`; ``kw`` goes to the bootstrap."""
    return paired_bootstrap_seeds([_paired_areas(a, b)[0] for a, b in pairs], **kw)


def _paired_areas(json_a: str | Path, json_b: str | Path) -> tuple[list[dict], list[dict]]:
    """The per-image areas and records of two evaluations of the same images, checked."""
    records = [json.loads(Path(p).read_text()) for p in (json_a, json_b)]
    for field in ("split", "domains", "num_images", "classes"):
        values = [r.get(field) for r in records]
        if field == "classes" and None in values:
            continue
        if values[0] != values[1]:
            raise ValueError(f"{json_a} and {json_b} evaluated different {field}: {values[0]!r} vs {values[1]!r}")
    areas = [load_areas(p) for p in (json_a, json_b)]
    for path, record, area in zip((json_a, json_b), records, areas):
        if record.get("num_images") is not None and len(area["intersect"]) != record["num_images"]:
            raise ValueError(f"{path}: {len(area['intersect'])} images in its .npz, {record['num_images']} in the JSON")
    return areas, records


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson's r of each row pair (nan where a row is constant)."""
    a, b = a - a.mean(-1, keepdims=True), b - b.mean(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(-1) / np.sqrt((a * a).sum(-1) * (b * b).sum(-1))


def correlation(x, y, groups=None, n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0) -> dict:
    """Spearman's rho (Pearson's r of average ranks) and Pearson's r of paired values, each with a
    percentile-bootstrap CI over the pairs (resampled with replacement, within each of ``groups``
    when given; seeded; resamples with a constant side are dropped).

    ``n`` counts the pairs left after dropping NaNs; under 3 pairs, or a constant side, all nan.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    keep = ~(np.isnan(x) | np.isnan(y))
    groups = np.zeros(x.size, dtype=int)[keep] if groups is None else np.asarray(groups)[keep]
    x, y = x[keep], y[keep]
    names = ("spearman", "spearman_low", "spearman_high", "pearson", "pearson_low", "pearson_high")
    out = {"n": int(x.size), **dict.fromkeys(names, float("nan"))}
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return out
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    picks = np.concatenate([m[rng.integers(0, m.size, size=(n_resamples, m.size))] for m in members], axis=1)
    alpha = (1 - confidence) / 2
    for name, transform in (("spearman", lambda v: stats.rankdata(v, axis=-1)), ("pearson", lambda v: v)):
        out[name] = float(_pearson_rows(transform(x), transform(y)))
        draws = _pearson_rows(transform(x[picks]), transform(y[picks]))
        draws = draws[~np.isnan(draws)]
        if draws.size:
            out[f"{name}_low"], out[f"{name}_high"] = (float(q) for q in np.quantile(draws, [alpha, 1 - alpha]))
    return out
