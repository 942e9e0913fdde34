"""OpenAI's DALL-E dVAE (Ramesh et al. 2021; package ``dall-e`` 0.1) as plain modules: GSS's posterior.

``DalleEncoder`` / ``DalleDecoder`` rebuild ``dall_e.encoder.Encoder`` / ``dall_e.decoder.Decoder``
layer for layer, so their state dicts equal those of the official ``encoder.pkl`` /
``decoder.pkl`` key for key and shape for shape. The official weights reach genseg only as the
safetensors file written once by ``genseg convert-dvae`` (:mod:`.convert`); :func:`load_dvae`
reads it. As the official ``Conv2d`` (float16 on CUDA), encode and decode run in float16 on an
accelerator (autocast on the weights' device) and in float32 on the CPU; outputs are float32.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .maskige import from_vq_range, to_vq_range

FORMAT = "genseg-dalle-dvae"
EXPECTED = "a safetensors file written by `genseg convert-dvae`"
ENCODER_ARGS = ("n_hid", "n_blk_per_group", "input_channels", "vocab_size")
DECODER_ARGS = ("n_init", "n_hid", "n_blk_per_group", "output_channels", "vocab_size")
GROUP_COUNT = 4


class DVAEError(ValueError):
    """A dVAE file that cannot be read or does not match the architecture."""


class Conv2d(nn.Module):
    """``dall_e.utils.Conv2d``: weight ``w`` (out, in, kw, kw) ~ N(0, 1 / (in kw^2)), bias ``b`` = 0, 'same' padding."""

    def __init__(self, n_in: int, n_out: int, kw: int):
        super().__init__()
        self.kw = kw
        self.w = nn.Parameter(torch.empty(n_out, n_in, kw, kw).normal_(std=(n_in * kw**2) ** -0.5))
        self.b = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.w, self.b, padding=(self.kw - 1) // 2)


class Block(nn.Module):
    """``EncoderBlock`` (kernels 3, 3, 3, 1) / ``DecoderBlock`` (1, 3, 3, 3): id_path(x) + res_path(x) / n_layers^2."""

    def __init__(self, n_in: int, n_out: int, n_layers: int, kernels: tuple[int, int, int, int]):
        super().__init__()
        n_hid = n_out // 4
        self.post_gain = 1 / n_layers**2
        self.id_path = Conv2d(n_in, n_out, 1) if n_in != n_out else nn.Identity()
        widths = (n_in, n_hid, n_hid, n_hid, n_out)
        layers = []
        for i, kw in enumerate(kernels):
            layers += [(f"relu_{i + 1}", nn.ReLU()), (f"conv_{i + 1}", Conv2d(widths[i], widths[i + 1], kw))]
        self.res_path = nn.Sequential(OrderedDict(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.id_path(x) + self.post_gain * self.res_path(x)


def _group(widths: list[tuple[int, int]], n_layers: int, kernels, last: tuple[str, nn.Module] | None) -> nn.Sequential:
    blocks = [(f"block_{i + 1}", Block(n_in, n_out, n_layers, kernels)) for i, (n_in, n_out) in enumerate(widths)]
    return nn.Sequential(OrderedDict(blocks + ([last] if last else [])))


def _widths(n_in: int, n_out: int, n_blk: int) -> list[tuple[int, int]]:
    return [(n_in if i == 0 else n_out, n_out) for i in range(n_blk)]


class DalleEncoder(nn.Module):
    """``dall_e.encoder.Encoder``: (B, C, H, W) in the mapped range -> code logits (B, vocab_size, H/8, W/8)."""

    def __init__(self, n_hid: int = 256, n_blk_per_group: int = 2, input_channels: int = 3, vocab_size: int = 8192):
        super().__init__()
        self.n_hid, self.n_blk_per_group = n_hid, n_blk_per_group
        self.input_channels, self.vocab_size = input_channels, vocab_size
        n_layers, k = GROUP_COUNT * n_blk_per_group, (3, 3, 3, 1)
        w = [n_hid * m for m in (1, 1, 2, 4, 8)]
        pool = ("pool", nn.MaxPool2d(kernel_size=2))
        self.blocks = nn.Sequential(OrderedDict([
            ("input", Conv2d(input_channels, n_hid, 7)),
            *[(f"group_{g}", _group(_widths(w[g - 1], w[g], n_blk_per_group), n_layers, k, pool if g < 4 else None))
              for g in range(1, 5)],
            ("output", nn.Sequential(OrderedDict([("relu", nn.ReLU()), ("conv", Conv2d(8 * n_hid, vocab_size, 1))]))),
        ]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class DalleDecoder(nn.Module):
    """``dall_e.decoder.Decoder``: one-hot codes (B, vocab_size, h, w) -> (B, 2 C, 8h, 8w); sigmoid of the first C is the image."""

    def __init__(self, n_init: int = 128, n_hid: int = 256, n_blk_per_group: int = 2, output_channels: int = 3,
                 vocab_size: int = 8192):
        super().__init__()
        self.n_init, self.n_hid, self.n_blk_per_group = n_init, n_hid, n_blk_per_group
        self.output_channels, self.vocab_size = output_channels, vocab_size
        n_layers, k = GROUP_COUNT * n_blk_per_group, (1, 3, 3, 3)
        w = [n_init] + [n_hid * m for m in (8, 4, 2, 1)]
        up = ("upsample", nn.Upsample(scale_factor=2, mode="nearest"))
        self.blocks = nn.Sequential(OrderedDict([
            ("input", Conv2d(vocab_size, n_init, 1)),
            *[(f"group_{g}", _group(_widths(w[g - 1], w[g], n_blk_per_group), n_layers, k, up if g < 4 else None))
              for g in range(1, 5)],
            ("output", nn.Sequential(OrderedDict([("relu", nn.ReLU()), ("conv", Conv2d(n_hid, 2 * output_channels, 1))]))),
        ]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class DalleDVAE(nn.Module):
    """The dVAE behind genseg's posterior protocol: ``num_codes``, ``downsample``, ``encode``, ``decode``."""

    downsample = 8

    def __init__(self, encoder: DalleEncoder | None = None, decoder: DalleDecoder | None = None):
        super().__init__()
        self.encoder = encoder if encoder is not None else DalleEncoder()
        self.decoder = decoder if decoder is not None else DalleDecoder()
        if self.encoder.vocab_size != self.decoder.vocab_size:
            raise ValueError(f"encoder has {self.encoder.vocab_size} codes, decoder {self.decoder.vocab_size}")
        self.num_codes: int = self.encoder.vocab_size

    def config(self) -> dict[str, int]:
        """Hyper-parameters as ``encoder.<name>`` / ``decoder.<name>``, as stored in the file's metadata."""
        return {**{f"encoder.{k}": getattr(self.encoder, k) for k in ENCODER_ARGS},
                **{f"decoder.{k}": getattr(self.decoder, k) for k in DECODER_ARGS}}

    @classmethod
    def from_config(cls, config: dict[str, int]) -> DalleDVAE:
        return cls(DalleEncoder(**{k: int(config[f"encoder.{k}"]) for k in ENCODER_ARGS}),
                   DalleDecoder(**{k: int(config[f"decoder.{k}"]) for k in DECODER_ARGS}))

    @torch.no_grad()
    def encode(self, maskige: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, H/8, W/8) int64 tokens: argmax of the encoder's logits."""
        h, w = maskige.shape[-2:]
        if h % self.downsample or w % self.downsample:
            raise ValueError(f"maskige size {h}x{w} is not a multiple of {self.downsample}")
        with half_on_accelerator(next(self.encoder.parameters()).device):
            return self.encoder(to_vq_range(maskige)).argmax(1)

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, h, w) tokens -> (B, 3, 8h, 8w) maskige in [0, 1]: one-hot -> decoder -> sigmoid -> unmap."""
        weight = self.decoder.blocks.input.w
        onehot = F.one_hot(tokens, self.num_codes).permute(0, 3, 1, 2).to(weight)
        with half_on_accelerator(weight.device):
            out = self.decoder(onehot)[:, : self.decoder.output_channels]
        return from_vq_range(torch.sigmoid(out.float()))


def half_on_accelerator(device: torch.device) -> torch.autocast:
    """float16 autocast on an accelerator, off (float32) on the CPU."""
    return torch.autocast(device_type=device.type, dtype=torch.float16, enabled=device.type != "cpu")


def load_dvae(path: str | Path) -> DalleDVAE:
    """A frozen ``DalleDVAE`` (eval mode, CPU) from ``path``, written by ``genseg convert-dvae``; keys checked strictly."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dVAE weights {path} do not exist (expected {EXPECTED})")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            names = f.keys()
            tensors = {key: f.get_tensor(key) for key in names}
    except Exception as err:  # safetensors raises its own error type for a malformed header
        raise DVAEError(f"{path} is not a readable safetensors file ({err}); expected {EXPECTED}") from err
    if metadata.get("format") != FORMAT:
        raise DVAEError(f"{path} has no '{FORMAT}' format tag in its metadata; expected {EXPECTED}")
    try:
        with torch.device("meta"):
            model = DalleDVAE.from_config(metadata)
    except (KeyError, ValueError) as err:
        raise DVAEError(f"{path}: bad or missing hyper-parameter in metadata ({err}); expected {EXPECTED}") from err
    try:
        model.load_state_dict(tensors, strict=True, assign=True)
    except RuntimeError as err:
        raise DVAEError(f"{path} does not match the dVAE architecture in its metadata; expected {EXPECTED}.\n{err}") from err
    return model.requires_grad_(False).eval()
