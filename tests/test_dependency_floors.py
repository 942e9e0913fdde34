"""The dependency floors in pyproject.toml are true: each API the code uses that is newer than some
release of its package has its first release listed below, with where that comes from, and the
floor is at least that. Every entry must still match the source (a stale entry fails too), and
environment.yml states the same ranges as pyproject.toml."""

import re
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

REPO = Path(__file__).resolve().parents[1]

# (regular expression over genseg/**/*.py, package, first release that has it, source)
API_MINIMUMS = [
    (r"torch\.accelerator\.memory\.", "torch", "2.9",
     "torch.accelerator.memory (max_memory_allocated, reset_peak_memory_stats): pytorch/pytorch PR #152932 "
     "'Add unified memory APIs for torch.accelerator'; checked on the wheels: torch-2.8.0 has no "
     "torch/accelerator/memory.py, torch-2.9.0 has it (and genseg's model, engine and CLI tests pass on 2.9.0)"),
    (r"torch\.accelerator\.(is_available|current_accelerator|device_count|set_device_index|synchronize)\b", "torch", "2.6",
     "torch.accelerator is new in 2.6 (pytorch/tutorials#3263: absent from torch 2.5, January 2025)"),
    (r"torch\.amp\.is_autocast_available", "torch", "2.4",
     "pytorch/pytorch PR #124938 'add new API torch.amp.is_autocast_available', merged 2024-04-26"),
    (r"torch\.get_device_module", "torch", "2.3", "torch.get_device_module: new in torch 2.3 (its docs)"),
    (r"torch\.amp\.GradScaler", "torch", "2.3", "torch.amp.GradScaler(device): new in torch 2.3 (torch.cuda.amp's is deprecated in 2.4)"),
    (r"from torch\.utils\.flop_counter import", "torch", "2.1", "torch.utils.flop_counter.FlopCounterMode: public from torch 2.1"),
    (r"rng=np\.random\.default_rng", "scipy", "1.15",
     "scipy.stats.bootstrap(rng=...): the SPEC 7 `rng` keyword, new in SciPy 1.15.0 (random_state before)"),
    (r"\.to_parquet\(|pd\.read_parquet\(", "pyarrow", "16",
     "pandas' parquet IO (genseg.report.aggregate write_results / read_results) with the pyarrow engine: pandas 3 "
     "requires pyarrow >= 16.0.0 (pandas.compat._optional.VERSIONS); checked: pyarrow 16.0.0 round-trips a frame with "
     "pandas 3.1.1 and numpy 2.4, 15.0.2 fails to import with numpy 2"),
    (r"smp\.UPerNet", "segmentation-models-pytorch", "0.5",
     "UPerNet: new in 0.4.0 (qubvel-org/segmentation_models.pytorch PR #1025, 'Release 0.4.0'), rebuilt incompatibly "
     "by PR #1124 ('Fix UperNet model', 2025-04-12), first released in 0.5.0"),
    (r"smp\.Segformer", "segmentation-models-pytorch", "0.4",
     "Segformer: new model in 0.4.0 (qubvel-org/segmentation_models.pytorch PR #1025, 'Release 0.4.0')"),
]


def floors(requirements: list[str]) -> dict[str, Version]:
    """Package -> its lower bound (>= or ==) in a list of requirement strings."""
    out = {}
    for text in requirements:
        req = Requirement(text)
        lows = [Version(s.version) for s in req.specifier if s.operator in (">=", "==", "~=")]
        if lows:
            out[req.name.lower()] = max(lows)
    return out


def pyproject_dependencies() -> list[str]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]


def source_text() -> str:
    return "\n".join(p.read_text() for p in sorted((REPO / "genseg").rglob("*.py")))


@pytest.mark.parametrize("pattern, package, minimum, source", API_MINIMUMS, ids=[e[0] for e in API_MINIMUMS])
def test_floor_admits_no_release_without_the_api(pattern, package, minimum, source):
    assert re.search(pattern, source_text()), f"{pattern!r} no longer matches genseg/: drop or update this entry"
    floor = floors(pyproject_dependencies()).get(package)
    assert floor is not None, f"pyproject.toml: {package} has no lower bound"
    assert floor >= Version(minimum), f"pyproject.toml: {package}>={floor}, but the code uses {pattern!r}: {source}"


def test_torchvision_floor_matches_torch():
    """torchvision releases pair with one torch each (0.24 with 2.9, ...): its floor is torch's pair."""
    found = floors(pyproject_dependencies())
    torch_minor = found["torch"].release[1]
    assert found["torchvision"] >= Version(f"0.{torch_minor + 15}"), found["torchvision"]


def test_environment_yml_states_the_same_ranges():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    stated = sorted(str(Requirement(r)) for r in pip if not r.startswith("-"))
    assert stated == sorted(str(Requirement(r)) for r in pyproject_dependencies())
