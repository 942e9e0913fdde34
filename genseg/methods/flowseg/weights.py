"""Reading PixNerd's converted weights (``genseg convert-pixnerd``) into a :class:`PixNerd`.

The file is safetensors with the release's state-dict names and a ``format`` tag. Loading is
strict, with two adaptations FlowSeg needs, each reported:

- *widened*: a model with image conditioning has more input columns in ``s_embedder.proj``
  (``stem``) or ``x_embedder.embedder.0`` (``pixels``); the release's columns are copied into
  the leading ones, the new columns stay zero (the pretrained function is unchanged at step 0);
- *reinitialised*: a centroid space of another dimension than PixNerd's 3 RGB channels (bits,
  one-hot) gives the stem, the per-pixel embedder and the final layer other shapes; exactly
  the tensors whose shapes differ keep their fresh initialisation.

Any other difference (another preset, a truncated file, a file of another kind) stops with a
message that names the file and what was expected.
"""

from __future__ import annotations

from pathlib import Path

import torch

FORMAT = "genseg-pixnerd"
EXPECTED = "safetensors weights of PixNerd's denoiser written by `genseg convert-pixnerd CKPT OUT.safetensors`"
# Tensors whose input width depends on the centroid dimension (and on the conditioning).
INPUT_LAYERS = ("s_embedder.proj.weight", "x_embedder.embedder.0.weight")
OUTPUT_LAYERS = ("final_layer.linear.weight", "final_layer.linear.bias")


class PixNerdWeightsError(ValueError):
    """A PixNerd weights file is missing, of another kind, or of another shape; the message names it."""


def read_pixnerd_file(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a converted PixNerd file, refusing anything else by name."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise PixNerdWeightsError(f"PixNerd weights file {path} does not exist (expected {EXPECTED})")
    with path.open("rb") as handle:
        head = handle.read(9)
    # safetensors: u64 little-endian header length, then the JSON header; that length may well
    # start with byte 0x80 (or "PK"), so sniff for a pickle only where the file is not safetensors.
    safetensors_like = len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") <= path.stat().st_size - 8
    if not safetensors_like and (head[:4] == b"PK\x03\x04" or head[:1] == b"\x80"):
        raise PixNerdWeightsError(f"{path} is a PyTorch pickle (a .ckpt / .pt), not safetensors; genseg reads pickles only in the "
                                  f"explicit converter: `genseg convert-pixnerd {path} OUT.safetensors`, then name OUT.safetensors")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise PixNerdWeightsError(f"{path} is not a readable safetensors file ({err}); expected {EXPECTED}") from None
    if metadata.get("format") != FORMAT:
        kind = f"a file tagged {metadata['format']!r}" if "format" in metadata else "a safetensors file without genseg's format tag"
        raise PixNerdWeightsError(f"{path} is {kind}, not PixNerd weights; expected {EXPECTED}")
    return tensors, metadata


def load_pixnerd(denoiser: torch.nn.Module, path: str | Path) -> dict[str, list[str]]:
    """Copy a converted release into ``denoiser`` in place; returns the ``widened`` and
    ``reinitialised`` tensor names (everything else is loaded as stored)."""
    tensors, metadata = read_pixnerd_file(path)
    own = denoiser.state_dict()
    missing, unexpected = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
    size = metadata.get("network", "?")
    if missing or unexpected:
        raise PixNerdWeightsError(
            f"{path} ({size}) does not fit the model's PixNerd: missing {missing[:4]}{' ...' if len(missing) > 4 else ''}, "
            f"unexpected {unexpected[:4]}{' ...' if len(unexpected) > 4 else ''} (block counts differ: pick the matching model.network)")
    stored_channels = tensors["final_layer.linear.bias"].shape[0]
    other_space = stored_channels != denoiser.channels
    report: dict[str, list[str]] = {"widened": [], "reinitialised": []}
    state = {}
    for key, value in own.items():
        stored = tensors[key]
        if stored.shape == value.shape:
            state[key] = stored
        elif other_space and key in INPUT_LAYERS + OUTPUT_LAYERS:
            state[key] = value  # the fresh init: the centroid space has another dimension
            report["reinitialised"].append(key)
        elif key in INPUT_LAYERS and stored.ndim == 2 and stored.shape[0] == value.shape[0] and stored.shape[1] < value.shape[1]:
            widened = torch.zeros_like(value)
            widened[:, : stored.shape[1]] = stored
            state[key] = widened
            report["widened"].append(key)
        else:
            raise PixNerdWeightsError(
                f"{path} ({size}): {key} has shape {tuple(stored.shape)}, the model expects {tuple(value.shape)} "
                f"(model.network and the shape keys must match the converted release)")
    denoiser.load_state_dict(state, strict=True)
    return report
