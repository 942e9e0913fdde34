"""Expand a workflow config into run configs: one per experiment x seed.

The workflow config (``workflow/config/*.yaml``, schema in ``workflow/schemas``) holds
``defaults`` (run-config keys shared by every experiment) and ``experiments`` (each one's
overrides). An experiment runs with the config's ``seeds``, or with its own ``seeds`` key
(e.g. the headline rows with three seeds, the ablation rows with one: :func:`experiment_seeds`).
A run's id is ``<experiment>-s<seed>``; Snakemake wildcards and folder names use it as is.

String values may name another run's files with ``{runs}`` (the runs folder) and
``{seed}`` (this run's seed), and pretrained files with ``{weights}`` (``$GENSEG_WEIGHTS``,
default ``~/.cache/genseg/weights``), e.g. GSS's ``posterior_file: "{runs}/vqvae-d4-s{seed}/model.safetensors"``;
the workflow makes such files inputs of the run's training (:func:`upstream_files`).
``{weights}`` is the pretrained-weights folder (``$GENSEG_WEIGHTS``, :mod:`genseg.weights`), e.g.
``pretrained_file: "{weights}/resnet101c.gluon_in1k.safetensors"``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .config import ConfigError, RunConfig, merge

RUN_ID = re.compile(r"^(?P<experiment>[A-Za-z0-9_.=+]+(?:-[A-Za-z0-9_.=+]+)*)-s(?P<seed>\d+)$")


def run_id(experiment: str, seed: int) -> str:
    return f"{experiment}-s{seed}"


def experiment_seeds(workflow: dict, name: str) -> list[int]:
    """The seeds experiment ``name`` runs with: its own ``seeds`` key, else the config's ``seeds``."""
    own = (workflow["experiments"][name] or {}).get("seeds")
    seeds = workflow["seeds"] if own is None else own
    if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
            and len(set(seeds)) == len(seeds)):
        where = f"experiments.{name}.seeds" if own is not None else "seeds"
        raise ConfigError(f"{where} must be a non-empty list of distinct integers >= 0, got {seeds!r}")
    return list(seeds)


def without_seeds(overrides: dict | None) -> dict:
    """An experiment's run-config keys: its overrides without the workflow-level ``seeds`` key."""
    return {k: v for k, v in (overrides or {}).items() if k != "seeds"}


def fill_placeholders(value, runs_dir: str, seed: int, weights_dir: str | None = None):
    """``{runs}``, ``{seed}`` and ``{weights}`` (default ``$GENSEG_WEIGHTS``) in every string of a nested dict/list."""
    if weights_dir is None:
        from .weights import weights_dir as default_weights_dir

        weights_dir = str(default_weights_dir())
    if isinstance(value, dict):
        return {k: fill_placeholders(v, runs_dir, seed, weights_dir) for k, v in value.items()}
    if isinstance(value, list):
        return [fill_placeholders(v, runs_dir, seed, weights_dir) for v in value]
    if isinstance(value, str):
        return value.replace("{runs}", runs_dir).replace("{seed}", str(seed)).replace("{weights}", weights_dir)
    return value


def training_stage(cfg: RunConfig) -> str:
    """Which workflow rule trains the run, as its method's spec says (:data:`genseg.methods.spec.STAGES`):
    ``train``, ``posterior_learning`` (GSS stage 1) or ``inverse_stage`` (an inverse trained on
    a frozen posterior / prior)."""
    from .methods import method_spec  # the methods import torch; the workflow needs them only here
    from .methods.spec import STAGES

    stage = method_spec(cfg.model.method).stage(cfg.model.options)
    if stage not in STAGES:
        raise ConfigError(f"model.method {cfg.model.method!r}: its spec's stage is {stage!r}; expected one of {STAGES}")
    return stage


def upstream_files(cfg: RunConfig, runs_dir: str | Path) -> list[str]:
    """Files of other runs that ``cfg``'s model options name (inputs of its training)."""
    runs_dir = str(runs_dir).rstrip("/") + "/"
    return sorted(v for v in cfg.model.options.values() if isinstance(v, str) and v.startswith(runs_dir))


def select_experiments(workflow: dict, names: list[str]) -> dict:
    """The workflow config restricted to the experiments ``names`` (config key ``only``) and those
    whose runs they start from (``{runs}/<experiment>-s{seed}`` or ``-s<n>`` in their options); ``compare``
    keeps the pairs within them, ``uncertainty.experiments`` those among them. An unknown name is an error listing the known ones."""
    known = workflow["experiments"]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"only: unknown experiment(s) {', '.join(unknown)}; the config has {', '.join(known)}")
    keep, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name not in keep:
            keep.add(name)
            todo.extend(re.findall(r"\{runs\}/([^/]+?)-s(?:\{seed\}|\d+)/", json.dumps(known[name] or {})))
    out = {**workflow, "experiments": {k: v for k, v in known.items() if k in keep},
           "compare": [pair for pair in workflow.get("compare", []) if set(pair) <= keep]}
    if workflow.get("uncertainty"):
        block = workflow["uncertainty"]
        out["uncertainty"] = {**block, "experiments": [e for e in block.get("experiments", []) if e in keep]}
    return out


def apply_overlay(workflow: dict) -> dict:
    """The workflow config with its overlay ``workflow["overlay"]`` (a key of ``overlays``, e.g.
    ``smoke``; "" for none) merged over it, recursively; results go to ``<name>-<overlay>``.

    An overlay's ``every_experiment`` is merged over each experiment (after the experiment's own
    keys, so it wins over them), then the overlay's ``experiments.<name>`` over that one. An
    overlay's ``experiments`` may only change experiments of the config (a typo is an error); the
    experiments that exist only in an overlay are its ``add_experiments`` (a name the config already
    has is an error)."""
    name = workflow.get("overlay") or ""
    if not name:
        return workflow
    overlays = workflow.get("overlays", {})
    if name not in overlays:
        raise ConfigError(f"overlay {name!r} is not defined in this config's overlays; defined: {', '.join(overlays) or 'none'}")
    overlay = dict(overlays[name])
    every, own = overlay.pop("every_experiment", {}), overlay.pop("experiments", {})
    added = overlay.pop("add_experiments", {}) or {}
    extra = sorted(set(own) - set(workflow["experiments"]))
    if extra:
        raise ConfigError(f"overlays.{name}.experiments.{extra[0]}: not an experiment of this config; expected one of {', '.join(workflow['experiments'])}"
                          f" (an experiment only this overlay runs goes under overlays.{name}.add_experiments)")
    clash = sorted(set(added) & set(workflow["experiments"]))
    if clash:
        raise ConfigError(f"overlays.{name}.add_experiments.{clash[0]}: the config already has this experiment; change it under overlays.{name}.experiments")
    out = merge({k: v for k, v in workflow.items() if k not in ("overlay", "overlays")}, overlay)
    experiments = {**workflow["experiments"], **added}
    out["experiments"] = {e: merge(merge(c or {}, every), own.get(e) or {}) for e, c in experiments.items()}
    out["name"] = overlay.get("name", f"{workflow['name']}-{name}")
    return out


SYNTHETIC_CLASSES = 12  # the synthetic generator's default class count (genseg.data.synthetic.CLASSES)


def synthetic_root(data_root: str, num_classes: int) -> str:
    """Where the workflow writes the synthetic dataset a run with ``data.num_classes`` reads: the
    config's root for the default 12 classes (or 0: the dataset's own), else ``<root>-c<N>`` beside it."""
    return data_root if num_classes in (0, SYNTHETIC_CLASSES) or not data_root else f"{data_root}-c{num_classes}"


def run_configs(workflow: dict, data_root: str | Path, runs_dir: str | Path = "runs",
                weights_dir: str | Path | None = None, require_upstream: bool = True) -> dict[str, RunConfig]:
    """Every run of the workflow config, checked strictly; errors name the experiment, and (with
    ``require_upstream``) a run that starts from a run the config does not train.

    ``data_root`` "" leaves the root to ``$GENSEG_DATA/<dataset>`` at run time; ``runs_dir``
    fills ``{runs}`` placeholders, ``weights_dir`` (default ``$GENSEG_WEIGHTS``) ``{weights}``,
    in ``defaults`` and ``experiments``.
    """
    if weights_dir is None:
        from .weights import weights_dir as default_weights_dir

        weights_dir = default_weights_dir()
    dataset = workflow["dataset"]
    runs = {}
    for name, overrides in workflow["experiments"].items():
        if not re.fullmatch(r"[A-Za-z0-9_.=+-]+", name):
            raise ConfigError(f"experiment name {name!r} may use letters, digits and _ . = + - only")
        for seed in experiment_seeds(workflow, name):
            base = {
                "name": name,
                "seed": seed,
                "data": {
                    "dataset": dataset["name"],
                    "root": str(data_root) if data_root else "",
                    "roots": dict(dataset.get("roots", {})),
                    "train_domains": workflow["train_domains"],
                },
            }
            fill = lambda section: fill_placeholders(section or {}, str(runs_dir), seed, str(weights_dir))  # noqa: E731
            data = merge(merge(base, fill(workflow.get("defaults"))), fill(without_seeds(overrides)))
            if dataset["name"] == "synthetic" and data["data"].get("root") == base["data"]["root"]:  # not set by the run
                data["data"]["root"] = synthetic_root(data["data"]["root"], data["data"].get("num_classes", 0))
            try:
                runs[run_id(name, seed)] = RunConfig.from_dict(data)
            except ConfigError as err:
                raise ConfigError(f"experiment {name!r}: {err}") from None
    for rid, cfg in runs.items() if require_upstream else ():  # a run starts only from runs this config trains
        for path in upstream_files(cfg, runs_dir):
            upstream = Path(path).parent.name
            if RUN_ID.fullmatch(upstream) and upstream not in runs:
                experiment = RUN_ID.fullmatch(upstream)["experiment"]
                have = experiment_seeds(workflow, experiment) if experiment in workflow["experiments"] else []
                raise ConfigError(f"experiment {cfg.name!r} (run {rid}) starts from run {upstream}, which this config does not "
                                  f"train ({experiment}: " + (f"seeds {have})" if have else "not an experiment of this config)"))
    return runs


def eval_domains(evaluate: dict) -> list[dict]:
    """``evaluate.domains`` as ``{name, split, scale}`` entries: a plain name is evaluated on
    ``evaluate.split`` at the run's ``eval.scale`` (scale None); a mapping names its own split
    and, optionally, its own scale. A domain may appear once."""
    out, seen = [], set()
    for i, entry in enumerate(evaluate["domains"]):
        item = {"name": entry} if isinstance(entry, str) else dict(entry)
        unknown = set(item) - {"name", "split", "scale"}
        if unknown or not isinstance(item.get("name"), str):
            raise ConfigError(f"evaluate.domains[{i}]: expected a name or {{name, split, scale}}, got {entry!r}")
        item.setdefault("split", evaluate.get("split", "test"))
        item.setdefault("scale", None)
        if item["scale"] is not None and not (isinstance(item["scale"], (int, float)) and item["scale"] > 0):
            raise ConfigError(f"evaluate.domains[{i}].scale must be > 0, got {item['scale']!r}")
        if item["name"] in seen:
            raise ConfigError(f"evaluate.domains[{i}]: domain {item['name']!r} listed twice (one split per domain)")
        seen.add(item["name"])
        out.append(item)
    return out


def domain_splits(evaluate: dict) -> dict[str, str]:
    """Test domain -> the split it is evaluated (and reported) on."""
    return {d["name"]: d["split"] for d in eval_domains(evaluate)}


def method_sweeps(evaluate: dict, method: str) -> dict[str, list]:
    """``evaluate.sweeps.<method>`` (e.g. ``flowseg: {steps: [1, 2, 5]}``; ``{}``: the spec's
    default sweep); none for a method the config does not list. Only options the method's spec
    declares sweepable may be swept."""
    from .methods import method_spec

    if method not in evaluate.get("sweeps", {}):
        return {}
    spec = method_spec(method)
    sweeps = evaluate["sweeps"][method] or {key: list(values) for key, values in spec.sweeps.items()}
    unknown = sorted(set(sweeps) - set(spec.sweeps))
    if unknown:
        raise ConfigError(f"evaluate.sweeps.{method}.{unknown[0]}: not a sweepable predict option of {method}; "
                          f"sweepable: {', '.join(spec.sweeps) or 'none'}")
    return sweeps


def eval_plan(evaluate: dict, cfg: RunConfig, with_sweeps: bool = True, split: str | None = None) -> list[tuple]:
    """(domain, predict options[, window overrides]) entries to evaluate for one run (on ``split``
    only, if given: the domains whose split it is).

    Every test domain gets the run's own predict options (``{}``), plus ``{"scale": s}`` when
    the domain sets its own scale; the in-domain test domains also get one entry per value of
    each sweep of the run's method (:func:`method_sweeps`), except the value the run uses by
    default, which the ``{}`` entry already measures; ``evaluate.sweep_seeds``, if set, limits
    the sweeps to runs of those seeds. ``with_sweeps=False`` (an ablation variant: one in-domain
    row of its table): only the in-domain ``{}`` entries.
    """
    from .methods import method_options  # the methods import torch; the workflow needs them only here

    domains = eval_domains(evaluate)
    split_of = {d["name"]: d["split"] for d in domains}

    def entry(d: dict, options: dict) -> tuple:
        return (d["name"], options) if d["scale"] is None else (d["name"], options, {"scale": d["scale"]})

    plan = [entry(d, {}) for d in domains]
    if not with_sweeps:
        plan = [e for e in plan if e[0] in cfg.data.train_domains] or plan
    else:
        swept = cfg.seed in evaluate.get("sweep_seeds", [cfg.seed])
        sweeps = method_sweeps(evaluate, cfg.model.method) if swept else {}
        options = method_options(cfg.model)
        own = {key: cfg.eval.predict.get(key, getattr(options, key, None)) for key in sweeps}
        for d in domains:
            if d["name"] in cfg.data.train_domains:  # a sweep value equal to the run's own is its default variant
                plan += [entry(d, {key: value}) for key, values in sweeps.items() for value in values if value != own[key]]
    return [e for e in plan if split is None or split_of[e[0]] == split]


def uncertainty_config(workflow: dict):
    """The ``uncertainty`` block as a checked :class:`~genseg.config.UncertaintyConfig` (absent: no runs);
    an experiment the config does not have is an error naming it."""
    from .config import UncertaintyConfig, from_dict

    block = from_dict(UncertaintyConfig, workflow.get("uncertainty") or {}, "uncertainty")
    block.check()
    unknown = [e for e in block.experiments if e not in workflow["experiments"]]
    if unknown:
        raise ConfigError(f"uncertainty.experiments: {', '.join(unknown)} not an experiment of this config; "
                          f"expected some of {', '.join(workflow['experiments'])}")
    return block


def uncertainty_jobs(workflow: dict, runs: dict[str, RunConfig]) -> list[tuple[str, str, str]]:
    """(run id, domain, split) of every uncertainty job: the runs of ``uncertainty.experiments`` with a
    seed in ``uncertainty.seeds``, on each in-domain test domain.
    A listed experiment whose method declares no uncertainty (:attr:`MethodSpec.uncertainty`) is an error."""
    from .methods import method_spec

    block = uncertainty_config(workflow)
    split_of = domain_splits(workflow["evaluate"])
    jobs = []
    for rid, cfg in runs.items():
        if cfg.name not in block.experiments or cfg.seed not in block.seeds:
            continue
        if not method_spec(cfg.model.method).uncertainty(cfg.model.options):
            raise ConfigError(f"uncertainty.experiments: {cfg.name} (model.method {cfg.model.method!r}) gives no predictive "
                              "distribution (an oracle, or a deterministic generative run); remove it")
        jobs += [(rid, d, split_of[d]) for d in cfg.data.train_domains if d in split_of]
    return jobs
