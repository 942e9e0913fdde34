"""Pretrained files: the manifest (``weights_manifest.yaml``), their status, and fetching them.

Files live in ``$GENSEG_WEIGHTS`` (default ``~/.cache/genseg/weights``); a workflow config names
one as ``"{weights}/<file>"``. Nothing here runs inside a workflow: ``genseg weights fetch`` is
the only code path that downloads, and only when the user types it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
from pathlib import Path

import yaml

WEIGHTS_ENV = "GENSEG_WEIGHTS"
DEFAULT_DIR = "~/.cache/genseg/weights"
MANIFEST = Path(__file__).with_name("weights_manifest.yaml")
# Run-config keys (under ``model``) whose value may name a pretrained file.
FILE_KEYS = ("pretrained_file", "posterior_file", "pixnerd_file", "repa_file", "backbone_file")
# Classifier keys an smp encoder's ImageNet file may carry and the encoder lacks (as
# genseg.methods.baselines.HEAD_PREFIXES; not imported, to keep this module free of torch).
HEAD_PREFIXES = ("fc.", "head.", "classifier.", "incre_modules.", "downsamp_modules.", "final_layer.")
CHUNK = 1 << 20


class WeightsError(ValueError):
    """A weights name, file or download is wrong; the message names it and what was expected."""


def weights_dir() -> Path:
    """``$GENSEG_WEIGHTS``, else ``~/.cache/genseg/weights``."""
    return Path(os.environ.get(WEIGHTS_ENV) or DEFAULT_DIR).expanduser()


def load_manifest(path: str | Path = MANIFEST) -> dict[str, dict]:
    """name -> entry (a dict with ``name`` added); errors name the file and the entry."""
    path = Path(path)
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise WeightsError(f"{path}: expected a mapping of weight names to entries")
    for name, entry in data.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str) or not isinstance(entry.get("sources", []), list):
            raise WeightsError(f"{path}: entry {name!r} needs a `file` (string) and a `sources` list")
        entry["name"] = name
        entry.setdefault("sources", [])
    return data


def entry(name: str, manifest: dict | None = None) -> dict:
    """The manifest entry ``name``; an unknown name lists the known ones."""
    manifest = load_manifest() if manifest is None else manifest
    if name not in manifest:
        raise WeightsError(f"unknown weights {name!r}; known: {', '.join(manifest)}")
    return manifest[name]


def resolve(name: str, manifest: dict | None = None) -> Path:
    """Where the file of manifest entry ``name`` lives: ``$GENSEG_WEIGHTS/<file>``."""
    return weights_dir() / entry(name, manifest)["file"]


def _entry_for_value(value: str, manifest: dict) -> dict | None:
    """The entry a config value names: a manifest name, ``{weights}/<file>`` or a path in ``$GENSEG_WEIGHTS``."""
    if value in manifest:
        return manifest[value]
    if value.startswith("{weights}/"):
        file = value[len("{weights}/"):]
    else:
        path = Path(value).expanduser()
        if path.parent.resolve() != weights_dir().resolve():
            return None
        file = path.name
    return next((e for e in manifest.values() if e["file"] == file), None)


def needed_weights(workflow: dict, manifest: dict | None = None) -> list[dict]:
    """Manifest entries a workflow config's ``defaults`` and ``experiments`` name, in manifest order."""
    manifest = load_manifest() if manifest is None else manifest
    sections = [workflow.get("defaults") or {}] + [e or {} for e in (workflow.get("experiments") or {}).values()]
    names = set()
    for section in sections:
        model = section.get("model") or {}
        model = {**model, **(model.get("options") or {})}
        for key in FILE_KEYS:
            value = model.get(key)
            found = _entry_for_value(value, manifest) if isinstance(value, str) and value else None
            if found:
                names.add(found["name"])
    return [e for name, e in manifest.items() if name in names]


def source_text(e: dict) -> str:
    """Where to get an entry, in words."""
    urls = [s["url"] for s in e["sources"] if s.get("url")]
    how = f"`genseg weights fetch --name {e['name']}` (from {', '.join(urls)})" if urls else "no download"
    if e.get("converter"):
        how += f", converted by `genseg {e['converter']}`"
    return how + (f"; {e['note']}" if e.get("note") and not urls else "")


# ---------------------------------------------------------------------------- checks


def expected_shapes(e: dict) -> dict[str, tuple[int, ...]]:
    """State-dict names and shapes of the entry's architecture, built offline without weights (on the meta device but smp's)."""
    import torch

    if e.get("smp_encoder"):  # smp's MiT calls .item() while building: not on the meta device
        import segmentation_models_pytorch as smp

        model = smp.encoders.get_encoder(e["smp_encoder"], weights=None)
    else:
        with torch.device("meta"):
            if e.get("timm_model"):
                import timm

                model = timm.create_model(e["timm_model"], pretrained=False)
            else:
                from .methods.flowseg.pixnerd import PRESETS, PixNerd

                model = PixNerd(PRESETS[e["pixnerd_network"]])
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def file_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of a safetensors file, from its header (no tensor is read)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as err:  # noqa: BLE001 -- any parser error: not a safetensors file
        raise WeightsError(f"{path} is not a readable safetensors file ({type(err).__name__}: {err})") from None


def first_mismatch(expected: dict, found: dict, arch: str, path, ignore: tuple[str, ...] = ()) -> str:
    """'' if ``found`` (file) has exactly ``expected``'s names and shapes (besides ``ignore`` prefixes and
    BatchNorm counters), else the first difference, naming ``path`` and the key."""
    skip = lambda k: k.endswith("num_batches_tracked") or k.startswith(ignore)  # noqa: E731
    for key, shape in expected.items():
        if skip(key):
            continue
        if key not in found:
            return f"{path}: key {key} of {arch} is missing (expected shape {shape})"
        if found[key] != shape:
            return f"{path}: key {key} has shape {found[key]}, {arch} expects {shape}"
    extra = [k for k in found if k not in expected and not skip(k)]
    if extra:
        return f"{path}: key {extra[0]} is not in {arch} ({len(extra)} unexpected keys)"
    return ""


def architecture_mismatch(e: dict, path: Path) -> str:
    """'' if the file fits the entry's architecture (timm, smp, PixNerd preset, dVAE), else the first mismatch."""
    if e.get("converter") == "convert-dvae":
        from .methods.gss.dvae import DVAEError, load_dvae

        try:
            load_dvae(path)
        except DVAEError as err:
            return str(err)
        return ""
    if e.get("timm_model"):
        arch = f"timm model {e['timm_model']!r}"
    elif e.get("smp_encoder"):
        arch = f"smp encoder {e['smp_encoder']!r}"
    elif e.get("pixnerd_network"):
        arch = f"PixNerd {e['pixnerd_network']!r}"
    else:
        return ""
    ignore = HEAD_PREFIXES if e.get("smp_encoder") else ()
    return first_mismatch(expected_shapes(e), file_shapes(path), arch, path, ignore)


def _published_sha(e: dict) -> str | None:
    """The sha256 the file itself must have: only for a single download used as is."""
    if e.get("converter") or len(e["sources"]) != 1:
        return None
    return e["sources"][0].get("sha256")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def status(e: dict, directory: Path | None = None) -> tuple[str, str]:
    """(present | missing | wrong checksum | wrong architecture | unreadable, detail) of one entry's file."""
    path = (directory or weights_dir()) / e["file"]
    if not path.is_file():
        return "missing", f"{path} does not exist"
    sha = _published_sha(e)
    if sha:
        got = sha256_file(path)
        if got != sha:
            return "wrong checksum", f"{path}: sha256 {got}, expected {sha}"
    try:
        mismatch = architecture_mismatch(e, path)
    except WeightsError as err:
        return "unreadable", str(err)
    if mismatch:
        return "wrong architecture", mismatch
    return "present", str(path)


# ---------------------------------------------------------------------------- fetching


def download(url: str, dest: Path, sha256: str | None = None, log=print, label: str = "") -> Path:
    """Stream ``url`` to ``dest`` through a temporary file beside it (fsync, then os.replace);
    a dropped connection or a wrong sha256 raises and leaves nothing behind. ``label``: the file named in errors."""
    label = label or dest.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part-{os.getpid()}")
    digest, size = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(url, timeout=60) as response, tmp.open("wb") as out:
            expected = response.headers.get("Content-Length")
            while chunk := response.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        if expected is not None and size != int(expected):
            raise WeightsError(f"download of {url} for {label} stopped after {size} of {expected} bytes (connection dropped); nothing was kept")
        got = digest.hexdigest()
        if sha256 and got != sha256:
            raise WeightsError(f"{label} from {url}: sha256 {got}, expected {sha256}; nothing was kept")
        os.replace(tmp, dest)
    except WeightsError:
        raise
    except Exception as err:  # noqa: BLE001 -- URLError, IncompleteRead, timeouts: the download failed
        raise WeightsError(f"download of {url} for {label} failed after {size} bytes ({type(err).__name__}: {err}); nothing was kept") from None
    finally:
        tmp.unlink(missing_ok=True)
    log(f"downloaded {url} -> {dest} ({size} bytes, sha256 {digest.hexdigest()})")
    return dest


def _hf_download(source: dict, dest: Path, log=print, label: str = "") -> Path:
    """A Hugging Face hub file through ``huggingface_hub`` into a temporary folder beside ``dest``."""
    label = label or dest.name
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise WeightsError(f"{label} is a Hugging Face hub file: `pip install huggingface_hub`, or download "
                           f"{source['url']} by hand to {dest.parent / label}") from None
    hf = source["hf"]
    tmp_dir = dest.with_name(f".{dest.name}.hf-{os.getpid()}")
    try:
        got = Path(hf_hub_download(hf["repo"], hf["file"], revision=hf.get("revision"), local_dir=tmp_dir))
        sha = source.get("sha256")
        if sha and sha256_file(got) != sha:
            raise WeightsError(f"{label} from {hf['repo']}: sha256 {sha256_file(got)}, expected {sha}; nothing was kept")
        os.replace(got, dest)
    except WeightsError:
        raise
    except Exception as err:  # noqa: BLE001 -- hub or network errors
        raise WeightsError(f"download of {hf['repo']}/{hf['file']} for {label} failed ({type(err).__name__}: {err}); nothing was kept") from None
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    log(f"downloaded {hf['repo']}/{hf['file']} -> {dest}")
    return dest


def _get(source: dict, dest: Path, log=print, label: str = "") -> Path:
    if source.get("hf"):
        return _hf_download(source, dest, log, label)
    return download(source["url"], dest, source.get("sha256"), log, label)


def _convert(e: dict, sources: list[Path], out: Path, trust_pickle: bool) -> None:
    """Run the entry's converter function (not a shell) on the downloaded pickles."""
    from .methods.flowseg.weights import PixNerdWeightsError
    from .methods.gss.dvae import DVAEError

    try:
        if e["converter"] == "convert-dvae":
            from .methods.gss.convert import convert_dvae

            convert_dvae(sources[0], sources[1], out)
        elif e["converter"] == "convert-pixnerd":
            from .methods.flowseg.convert import convert_pixnerd

            convert_pixnerd(sources[0], out, ema=True, trust_pickle=trust_pickle)
        else:
            raise WeightsError(f"weights {e['name']!r}: unknown converter {e['converter']!r}; known: convert-dvae, convert-pixnerd")
    except (DVAEError, PixNerdWeightsError, FileNotFoundError) as err:
        raise WeightsError(f"converting {', '.join(map(str, sources))} for {e['name']!r} failed: {err}; the downloads are "
                           f"kept, rerun `genseg {e['converter']} ...` by hand") from None


def fetch(e: dict, directory: Path | None = None, trust_pickle: bool = False, log=print) -> Path:
    """Download (and convert) entry ``e`` into ``directory`` unless it is already present."""
    directory = directory or weights_dir()
    out = directory / e["file"]
    state, detail = status(e, directory)
    if state == "present":
        log(f"{e['name']}: present ({out})")
        return out
    if not e["sources"]:
        raise WeightsError(f"weights {e['name']!r} have no download source: {e.get('note', '')}".rstrip(": "))
    if not e.get("converter"):
        tmp = directory / f".{e['file']}.fetch-{os.getpid()}"
        try:
            _get(e["sources"][0], tmp, log, label=e["file"])
            mismatch = architecture_mismatch(e, tmp)
            if mismatch:
                raise WeightsError(f"{e['name']}: the download does not fit: {mismatch.replace(str(tmp), e['file'])}; nothing was kept")
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    else:  # complete downloads are kept in sources/ so a failed conversion can be rerun by hand
        folder = directory / "sources"
        try:
            sources = [_get(s, folder / Path(s.get("hf", {}).get("file") or s["url"].rsplit("/", 1)[-1]).name, log)
                       for s in e["sources"]]
        finally:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        _convert(e, sources, out, trust_pickle)
        mismatch = architecture_mismatch(e, out)
        if mismatch:
            out.unlink()
            raise WeightsError(f"{e['name']}: the converted file does not fit: {mismatch}; it was removed (the downloads are kept)")
    log(f"{e['name']}: wrote {out}")
    return out
