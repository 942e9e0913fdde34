"""One-time conversion of a PixNerd release checkpoint (PyTorch Lightning ``.ckpt``) to safetensors.

Besides the dVAE converter, the only place genseg opens a pickle. The release stores the
trained weights under ``state_dict["denoiser."...]`` and the EMA copy (what the release samples
with) under ``"ema_denoiser."``; everything else (the REPA projector, optimizer and trainer
state) is dropped and listed. The output holds the denoiser's tensors under the release's names,
with the shape it was built with as metadata; :func:`genseg.methods.flowseg.weights.load_pixnerd`
reads it.
"""

from __future__ import annotations

import dataclasses
import pickle
import re
from collections import Counter
from pathlib import Path

import torch

from ...io import atomic_path, sha256
from .pixnerd import PRESETS, PixNerd, PixNerdShape
from .weights import FORMAT, PixNerdWeightsError


def _load_checkpoint(path: Path, trust_pickle: bool) -> dict:
    """``torch.load`` with ``weights_only=True`` (tensors and plain containers only); a checkpoint
    that needs more is refused unless ``trust_pickle`` (then unpickling may run code in the file)."""
    if not path.is_file():
        raise FileNotFoundError(f"PixNerd checkpoint {path} does not exist (expected a release .ckpt of MCG-NJU/PixNerd)")
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust_pickle, mmap=False)
    except pickle.UnpicklingError as err:
        if trust_pickle:
            raise PixNerdWeightsError(f"could not unpickle {path}: {err}") from None
        found = re.search(r"WeightsUnpickler error:\s*(.+)", str(err))
        reason = found.group(1).strip() if found else str(err).splitlines()[0]
        if not re.search(r"global|allowlisted", reason, re.IGNORECASE):  # not a Python object: a damaged or foreign file
            raise PixNerdWeightsError(f"{path} is not a readable PyTorch checkpoint ({reason}); expected a release .ckpt of MCG-NJU/PixNerd") from None
        raise PixNerdWeightsError(
            f"{path} holds Python objects beyond tensors, which the safe loader refuses ({reason}); if the file is "
            "the official release, rerun with --trust-pickle (unpickling may run code stored in the file)") from None
    except (RuntimeError, EOFError, OSError) as err:
        raise PixNerdWeightsError(f"{path} is not a readable PyTorch checkpoint ({err}); expected a release .ckpt of MCG-NJU/PixNerd") from None


def shape_of(tensors: dict[str, torch.Tensor], path: Path) -> PixNerdShape:
    """The PixNerd shape a denoiser state dict was built with, read from its tensor shapes."""
    try:
        hidden, stem_in = tensors["s_embedder.proj.weight"].shape
        channels = tensors["final_layer.linear.bias"].shape[0]
        width = tensors["x_embedder.embedder.0.weight"].shape[0]
        head_dim = tensors["blocks.0.attn.q_norm.weight"].shape[0]
        transformer = sum(1 for k in tensors if k.endswith(".attn.qkv.weight"))
        field = sum(1 for k in tensors if k.endswith(".param_generator1.0.weight"))
        ratio = tensors[f"blocks.{transformer}.param_generator1.0.weight"].shape[0] // (2 * width * width)
        dct = round((tensors["x_embedder.embedder.0.weight"].shape[1] - channels) ** 0.5)
        return PixNerdShape(hidden=hidden, heads=hidden // head_dim, patch=round((stem_in // channels) ** 0.5),
                            transformer_blocks=transformer, field_blocks=field, field_width=width, field_ratio=ratio,
                            dct_freqs=dct, label_rows=tensors["y_embedder.embedding_table.weight"].shape[0])
    except (KeyError, ValueError, ZeroDivisionError) as err:
        raise PixNerdWeightsError(f"{path}: the denoiser weights lack a PixNerd tensor or have an unexpected shape ({err!r})") from None



def convert_pixnerd(ckpt: str | Path, out: str | Path, *, ema: bool = False, trust_pickle: bool = False) -> dict:
    """Release ``.ckpt`` -> ``out`` (safetensors, written atomically). Returns ``{"out", "network",
    "kept", "dropped"}``: ``dropped`` counts the other entries by their leading name."""
    from safetensors.torch import save_file

    path = Path(ckpt)
    checkpoint = _load_checkpoint(path, trust_pickle)
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise PixNerdWeightsError(f"{path} has no 'state_dict' mapping; expected a PyTorch Lightning checkpoint of MCG-NJU/PixNerd")
    prefix = "ema_denoiser." if ema else "denoiser."
    state = checkpoint["state_dict"]
    tensors = {k[len(prefix):]: v.detach().cpu().contiguous() for k, v in state.items() if k.startswith(prefix) and torch.is_tensor(v)}
    if not tensors:
        raise PixNerdWeightsError(f"{path}: no '{prefix}*' tensors in state_dict (found prefixes: "
                                  f"{sorted({k.split('.')[0] for k in state})}); expected PixNerd's denoiser")
    dropped = Counter(f"state_dict.{k.split('.')[0]}" for k in state if not k.startswith(prefix))
    dropped.update(k for k in checkpoint if k != "state_dict")
    shape = shape_of(tensors, path)
    with torch.device("meta"):
        reference = PixNerd(shape, channels=tensors["final_layer.linear.bias"].shape[0])
    expected = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != found:
        diff = sorted(set(expected.items()) ^ set(found.items()))[:6]
        raise PixNerdWeightsError(f"{path}: the '{prefix}' weights differ from PixNerd built with the shape they imply "
                                  f"({shape}); first differences (key, shape): {diff}")
    network = next((name for name, preset in PRESETS.items() if preset == shape), "custom")
    metadata = {"format": FORMAT, "network": network, "weights": prefix.rstrip("."),
                "source": f"{path.name} sha256:{sha256(path)}",
                **{f"shape.{k}": str(v) for k, v in dataclasses.asdict(shape).items()}}
    with atomic_path(out) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return {"out": str(out), "network": network, "kept": len(tensors), "dropped": dict(sorted(dropped.items()))}
