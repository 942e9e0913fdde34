"""One-time conversion of OpenAI's pickled DALL-E dVAE (``encoder.pkl``, ``decoder.pkl``) to safetensors.

This is the only place in genseg that opens a pickle. The output holds ``encoder.*`` and
``decoder.*`` tensors (the official state-dict keys) with the hyper-parameters as metadata;
:func:`genseg.methods.gss.dvae.load_dvae` reads it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ...io import atomic_path, sha256
from .dvae import DECODER_ARGS, ENCODER_ARGS, FORMAT, GROUP_COUNT, DalleDVAE, DVAEError

OFFICIAL = {"encoder": ("dall_e.encoder", "Encoder"), "decoder": ("dall_e.decoder", "Decoder")}


def _unpickle(path: Path, part: str) -> nn.Module:
    """``torch.load(weights_only=False)`` of an official whole-module pickle, checked to be ``dall_e``'s class."""
    if not path.is_file():
        raise FileNotFoundError(f"dVAE {part} pickle {path} does not exist (expected OpenAI's {part}.pkl)")
    try:
        module = torch.load(path, weights_only=False, map_location="cpu")
    except ModuleNotFoundError as err:
        raise DVAEError(
            f"unpickling {path} needs the module {err.name!r}, which is missing: the official pickles reference "
            "the `dall_e` package; `pip install dall-e` (or genseg[dalle]) for the conversion"
        ) from err
    except Exception as err:  # anything the unpickler raises: not the file we expect
        raise DVAEError(f"could not unpickle {path} ({type(err).__name__}: {err}); expected OpenAI's {part}.pkl") from err
    cls = type(module)
    if (cls.__module__, cls.__name__) != OFFICIAL[part]:
        raise DVAEError(f"{path} holds a {cls.__module__}.{cls.__name__}, expected {'.'.join(OFFICIAL[part])}")
    return module


def _hyper_parameters(module: nn.Module, names: tuple[str, ...], path: Path) -> dict[str, int]:
    try:
        values = {name: getattr(module, name) for name in ("group_count", *names)}
    except AttributeError as err:
        raise DVAEError(f"{path}: the pickled module lacks a hyper-parameter ({err})") from err
    if values.pop("group_count") != GROUP_COUNT:
        raise DVAEError(f"{path}: group_count {module.group_count} != {GROUP_COUNT}, the only one the official code builds")
    return {name: int(value) for name, value in values.items()}



def convert_dvae(encoder_pkl: str | Path, decoder_pkl: str | Path, out: str | Path) -> Path:
    """Official ``encoder.pkl`` + ``decoder.pkl`` -> one safetensors file at ``out`` (written atomically).

    WARNING: unpickling runs arbitrary code stored in the file. Convert only the official files
    from OpenAI (https://cdn.openai.com/dall-e/encoder.pkl, .../decoder.pkl), once; genseg itself
    only ever reads the safetensors output. Needs the optional ``dall_e`` package
    (``pip install dall-e``), whose classes the pickles reference.
    """
    from safetensors.torch import save_file

    paths = {"encoder": Path(encoder_pkl), "decoder": Path(decoder_pkl)}
    config, tensors = {}, {}
    for part, names in (("encoder", ENCODER_ARGS), ("decoder", DECODER_ARGS)):
        module = _unpickle(paths[part], part)
        config.update({f"{part}.{k}": v for k, v in _hyper_parameters(module, names, paths[part]).items()})
        tensors.update({f"{part}.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()})
    with torch.device("meta"):
        try:
            reference = DalleDVAE.from_config(config)
        except ValueError as err:
            raise DVAEError(f"{paths['encoder']} and {paths['decoder']} do not fit together: {err}") from err
    expected = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != found:
        diff = sorted(set(expected.items()) ^ set(found.items()))[:6]
        raise DVAEError(f"{paths['encoder']} / {paths['decoder']}: state dicts differ from the dVAE architecture "
                        f"built from their hyper-parameters; first differences (key, shape): {diff}")
    metadata = {"format": FORMAT, **{k: str(v) for k, v in config.items()},
                **{f"source.{part}": f"{p.name} sha256:{sha256(p)}" for part, p in paths.items()}}
    with atomic_path(out) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return Path(out)
