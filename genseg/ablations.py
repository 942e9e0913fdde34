"""Ablations as files: ``ablations/<name>.yaml`` adds runs and a table with no code change.

A file names a ``base`` experiment of the workflow config and what to change in it, either
one ``axis`` (a dotted run-config key) with its ``values``, or named ``variants`` (each a
mapping of dotted keys to values); ``feeds`` names the table (and, with ``figure: bar``,
the figure) it produces under ``report/``. Example (``ablations/flowseg-distance.yaml``)::

    description: Distance transform T(d) in the reshaped objective (FlowSeg ablation).
    base: flowseg-kronecker-reshaped
    axis: model.distance_transform
    values: [sqrt, linear, inverse, log]
    feeds: flowseg_distance
    reported: flowseg_distance    # table id in results/reference/paper_reported.csv

Several axes at once (their product, the first axis slowest): ``axes``, a mapping of dotted
keys to their values, e.g. ``axes: {model.encoding: [kronecker, r3], data.num_classes: [12, 40]}``;
a variant's label is its values joined by spaces (``r3 40``) and each row of ``ablations.json``
carries its ``settings`` ({dotted key: value}), so nothing reads a label back.

Each variant becomes the experiment ``<base>+<name>=<label>``, unless it resolves to the
base's own run config (then the base run is that row). ``configs`` lists the workflow
configs (by ``name``) the ablation joins; default ``[default]``.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .config import ConfigError, RunConfig, merge
from .experiments import without_seeds

KEYS = {"description", "base", "axis", "values", "axes", "variants", "feeds", "figure", "configs", "reported"}
FIGURES = ("none", "bar", "spacing")  # spacing: genseg.report.families.ablations (min centroid distance vs mIoU)


@dataclass(frozen=True)
class Ablation:
    name: str
    description: str
    base: str
    variants: dict[str, dict[str, Any]]  # label -> {dotted key: value}
    feeds: str
    figure: str = "none"
    configs: tuple[str, ...] = ("default",)
    reported: str = ""
    axis: str = ""
    axes: tuple[str, ...] = ()  # the dotted keys varied (``axis`` alone, or ``axes``); () for named variants


def load_ablation(path: Path) -> Ablation:
    """Read and check one ablation file; errors name the file and the key."""
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with keys {sorted(KEYS)}")
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown}; allowed: {sorted(KEYS)}")
    for key in ("base", "feeds"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ConfigError(f"{path}: '{key}' must be a non-empty string")
    if not re.fullmatch(r"[a-z0-9_]+", data["feeds"]):
        raise ConfigError(f"{path}: 'feeds' must be a file-name stem of a-z, 0-9 and _, got {data['feeds']!r}")
    if sum(k in data for k in ("axis", "axes", "variants")) != 1:
        raise ConfigError(f"{path}: give either 'axis' with 'values', 'axes', or 'variants'")
    if "axis" in data or "axes" in data:
        axes = {data["axis"]: data.get("values")} if "axis" in data else data["axes"]
        if not isinstance(axes, dict) or not axes:
            raise ConfigError(f"{path}: 'axes' must map each dotted key to a non-empty list of values")
        for key, values in axes.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{path}: 'values' must be a non-empty list for axis {key!r}")
        variants = {" ".join(map(str, combo)): dict(zip(axes, combo)) for combo in itertools.product(*axes.values())}
    else:
        if not isinstance(data["variants"], dict) or not all(isinstance(v, dict) for v in data["variants"].values()):
            raise ConfigError(f"{path}: 'variants' must map each label to a mapping of dotted keys to values")
        variants = {str(k): dict(v or {}) for k, v in data["variants"].items()}
    figure = data.get("figure", "none")
    if figure not in FIGURES:
        raise ConfigError(f"{path}: 'figure' must be one of {FIGURES}, got {figure!r}")
    return Ablation(
        name=path.stem, description=str(data.get("description", "")), base=data["base"], variants=variants,
        feeds=data["feeds"], figure=figure, configs=tuple(data.get("configs", ["default"])),
        reported=str(data.get("reported", "")), axis=str(data.get("axis", "")),
        axes=tuple(axes) if "variants" not in data else (),
    )


def load_ablations(folder: str | Path) -> list[Ablation]:
    """Every ``*.yaml`` in ``folder`` (sorted); two files feeding one table is an error."""
    ablations = [load_ablation(p) for p in sorted(Path(folder).glob("*.yaml"))]
    feeds = [a.feeds for a in ablations]
    for a in ablations:
        if feeds.count(a.feeds) > 1:
            raise ConfigError(f"ablations {[b.name for b in ablations if b.feeds == a.feeds]} all feed {a.feeds!r}; give each its own table")
    return ablations


def dotted(overrides: dict[str, Any]) -> dict:
    """``{"model.tau": 2}`` -> ``{"model": {"tau": 2}}``."""
    out: dict = {}
    for key, value in overrides.items():
        out = merge(out, _nest(key.split("."), value))
    return out


def _nest(parts: list[str], value):
    return {parts[0]: _nest(parts[1:], value)} if len(parts) > 1 else {parts[0]: value}


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "_", label).strip("_") or "variant"


def variant_experiment(base: str, ablation: str, label: str) -> str:
    """The experiment name of an ablation variant: ``<base>+<ablation>=<label, slugged>``."""
    return f"{base}+{ablation}={_slug(label)}"


def variant_identity(experiment: str) -> dict[str, str]:
    """``{ablation, ablation_value}`` of an experiment name (both "" for a config's own experiments):
    the inverse of :func:`variant_experiment`, for results that do not carry these columns."""
    base, plus, rest = experiment.partition("+")
    ablation, _, value = rest.partition("=")
    return {"ablation": ablation, "ablation_value": value} if plus else {"ablation": "", "ablation_value": ""}


def _resolved(workflow: dict, overrides: dict) -> dict:
    """The run config an experiment resolves to (method options with their defaults filled
    in), without its name, for comparing variants."""
    from .methods import method_options  # imports torch; needed only here

    cfg = RunConfig.from_dict(merge(merge(workflow.get("defaults", {}), without_seeds(overrides)), {"name": "x"}))
    out = cfg.to_dict()
    out.pop("name")
    out["model"] = {"method": cfg.model.method, **dataclasses.asdict(method_options(cfg.model))}
    return out


def expand(workflow: dict, ablations: list[Ablation]) -> tuple[dict, list[dict]]:
    """The workflow config with each applicable ablation's variants added as experiments,
    and one row per (ablation, variant): ``{ablation, feeds, label, experiment, settings}``
    (``settings``: the variant's {dotted key: value}).

    A variant that resolves to its base's run config is the base run itself (no new run,
    its seeds); the others run with the config's ``seeds``, not the base's own.
    """
    experiments = dict(workflow["experiments"])
    rows = []
    for ablation in ablations:
        if workflow["name"] not in ablation.configs:
            continue
        if ablation.base not in workflow["experiments"]:
            raise ConfigError(
                f"ablations/{ablation.name}.yaml: base {ablation.base!r} is not an experiment of config "
                f"{workflow['name']!r}; it has {', '.join(workflow['experiments'])}"
            )
        base = workflow["experiments"][ablation.base] or {}
        try:
            base_config = _resolved(workflow, base)
        except ConfigError as err:
            raise ConfigError(f"ablations/{ablation.name}.yaml: base {ablation.base!r}: {err}") from None
        for label, overrides in ablation.variants.items():
            variant = merge(without_seeds(base), dotted(overrides))  # the config's seeds (one, by default)
            try:
                same = _resolved(workflow, variant) == base_config
            except ConfigError as err:
                raise ConfigError(f"ablations/{ablation.name}.yaml: variant {label!r}: {err}") from None
            name = ablation.base if same else variant_experiment(ablation.base, ablation.name, label)
            if not same:
                experiments[name] = variant
            rows.append({"ablation": ablation.name, "feeds": ablation.feeds, "label": label, "experiment": name,
                         "settings": overrides})
    return {**workflow, "experiments": experiments}, rows
