"""Discriminative baselines: DeepLabV3+, SegFormer and UPerNet from segmentation_models_pytorch.

MaskFormer (:mod:`.maskformer`), Mask2Former (:mod:`.mask2former`) and OCRNet (:mod:`.ocrnet`)
live beside this module; all six are tiny at their default options and paper-size with the
option sets in :data:`PAPER_MODELS`.

Weights come from local files only, never a hub:

- ``pretrained_file``: the encoder's ImageNet weights. ``tu-`` (timm) encoders load it through
  timm's ``pretrained_cfg_overlay=dict(file=...)``; smp's own encoders (``resnet101``,
  ``mit_b2``, ...) load it as a state dict after the build.
- ``weights_file``: the whole model, as a state dict -- the ``model.safetensors`` a run
  writes (keys ``net.*``) or a bare smp model's state dict (no ``net.`` prefix).

Files are ``.safetensors`` (preferred) or torch pickles read with ``weights_only=True``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from .base import PixelClassifier, check_timm_fits, pad_to_multiple
from .spec import MethodSpec, softmax_uncertainty

STATE_DICT_FORMAT = ".safetensors (preferred) or a torch .pth/.pt/.bin state dict"
# Keys of classification heads that an ImageNet checkpoint may carry and an encoder lacks.
HEAD_PREFIXES = ("fc.", "head.", "classifier.", "incre_modules.", "downsamp_modules.", "final_layer.")


# ---------------------------------------------------------------------------- local weight files


def existing_file(path: str, key: str, what: str) -> Path:
    """``path`` as a Path; FileNotFoundError naming ``model.<key>``, the path and ``what`` if absent."""
    out = Path(path).expanduser()
    if not out.is_file():
        raise FileNotFoundError(f"model.{key} {out} does not exist; expected {what}")
    return out


def read_state_dict(path: str, key: str, what: str) -> dict[str, torch.Tensor]:
    """Tensors of a local state-dict file (safetensors or torch); errors name the path and format.

    A torch checkpoint that wraps its tensors in ``state_dict`` or ``model`` is unwrapped.
    """
    file = existing_file(path, key, what)
    try:
        if file.suffix == ".safetensors":
            state = load_file(str(file), device="cpu")
        else:
            state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 -- whatever the parser raises, the file is not a state dict
        raise ValueError(f"model.{key} {file} could not be read ({type(err).__name__}: {err}); expected {what}") from None
    if isinstance(state, dict) and len(state) == 1 and next(iter(state)) in ("state_dict", "model"):
        state = next(iter(state.values()))
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"model.{key} {file} holds no mapping of names to tensors; expected {what}")
    return state


def load_checked(module: nn.Module, state: dict[str, torch.Tensor], path: str, key: str, what: str,
                 ignore_unexpected: tuple[str, ...] = ()) -> None:
    """Load ``state`` into ``module``; every module key must be there with its shape.

    Unexpected keys starting with ``ignore_unexpected`` (a classifier's head) are dropped.
    """
    state = {k: v for k, v in state.items() if not k.startswith(ignore_unexpected)}
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    reshaped = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or reshaped:
        raise ValueError(
            f"model.{key} {path} does not fit {what}: {len(missing)} missing keys {missing[:3]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:3]}, {len(reshaped)} of another shape {reshaped[:3]}"
        )
    nn.Module.load_state_dict(module, state, strict=True)  # nn.Module's: smp encoders override it


def load_weights_file(model: nn.Module, path: str, key: str = "weights_file") -> None:
    """Whole-model weights: a method state dict (``net.*``, as runs save it) or the bare ``net``'s."""
    what = f"a whole-model state dict for {type(model.net).__name__} ({STATE_DICT_FORMAT})"
    state = read_state_dict(path, key, what)
    if any(k.startswith("net.") for k in state):
        load_checked(model, state, path, key, what)
    else:
        load_checked(model.net, state, path, key, what)


# ---------------------------------------------------------------------------- smp models


def encoder_kwargs(options) -> dict:
    """Arguments for an smp model's encoder: timm's local-file overlay for ``tu-`` encoders.

    smp's own encoders are built without weights; :func:`load_encoder_file` fills them.
    """
    if not options.pretrained_file:
        return {"encoder_weights": None}
    timm_encoder = options.encoder.startswith("tu-")
    kind = "a timm checkpoint" if timm_encoder else "a state dict"
    path = existing_file(options.pretrained_file, "pretrained_file", f"{kind} ({STATE_DICT_FORMAT}) for encoder {options.encoder!r}")
    if not timm_encoder:
        return {"encoder_weights": None}
    if path.suffix == ".safetensors":  # a wrong file fails here, naming it, not deep inside timm
        read_state_dict(str(path), "pretrained_file", f"a timm checkpoint ({STATE_DICT_FORMAT}) for encoder {options.encoder!r}")
        check_timm_fits(path, options.encoder[3:], "model.pretrained_file")  # timm would half-load another model's file
    return {"encoder_weights": True, "pretrained_cfg_overlay": {"file": str(path)}}


def load_encoder_file(net: nn.Module, options) -> None:
    """ImageNet weights for smp's own encoders (``resnet101``, ``mit_b2``) from ``pretrained_file``."""
    if not options.pretrained_file or options.encoder.startswith("tu-"):
        return
    what = f"a state dict for smp encoder {options.encoder!r} ({STATE_DICT_FORMAT})"
    state = read_state_dict(options.pretrained_file, "pretrained_file", what)
    load_checked(net.encoder, state, options.pretrained_file, "pretrained_file", what, HEAD_PREFIXES)


def conv_bn_relu(cin: int, cout: int, kernel_size: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel_size, padding=kernel_size // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class FCNHead(nn.Sequential):
    """Auxiliary head (mmsegmentation's FCNHead, one conv): conv-BN-ReLU, dropout 0.1, 1x1 to classes."""

    def __init__(self, in_channels: int, channels: int, num_classes: int, kernel_size: int = 3):
        super().__init__(conv_bn_relu(in_channels, channels, kernel_size), nn.Dropout2d(0.1), nn.Conv2d(channels, num_classes, 1))


def pad_labels(labels: torch.Tensor, size: tuple[int, int], ignore_index: int) -> torch.Tensor:
    """Labels padded (bottom, right) to ``size`` with ``ignore_index``, like the padded images."""
    out = labels.new_full(labels.shape[:-2] + tuple(size), ignore_index)
    out[..., : labels.shape[-2], : labels.shape[-1]] = labels
    return out


def main_aux_loss(main: torch.Tensor, aux: torch.Tensor, labels: torch.Tensor, aux_weight: float,
                  ignore_index: int) -> tuple[torch.Tensor, dict[str, float]]:
    """L = CE(main) + aux_weight * CE(aux); both logits are resized (bilinear) to the labels' size."""

    def at_labels(logits: torch.Tensor) -> torch.Tensor:
        if logits.shape[-2:] == labels.shape[-2:]:
            return logits
        return F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)

    loss_main = F.cross_entropy(at_labels(main), labels, ignore_index=ignore_index)
    loss_aux = F.cross_entropy(at_labels(aux), labels, ignore_index=ignore_index)
    loss = loss_main + aux_weight * loss_aux
    return loss, {"loss": loss.item(), "loss_main": loss_main.item(), "loss_aux": loss_aux.item()}


class SmpClassifier(PixelClassifier):
    """An smp model as a :class:`PixelClassifier`, with an optional auxiliary head.

    With ``aux_weight > 0`` an :class:`FCNHead` on the encoder's stride-16 features
    (``net.aux_head``, mmsegmentation's ``auxiliary_head``, in_index 2) adds
    ``aux_weight * CE`` to the training loss; prediction uses the main head only.
    """

    def __init__(self, net: nn.Module, num_classes: int, ignore_index: int = 255, aux_weight: float = 0.0,
                 aux_channels: int = 256, size_divisor: int = 32):
        super().__init__(net, num_classes, ignore_index, size_divisor)
        self.aux_weight = aux_weight
        if aux_weight > 0:
            net.aux_head = FCNHead(net.encoder.out_channels[-2], aux_channels, num_classes)

    def training_loss(self, images, labels):
        if not self.aux_weight:
            return super().training_loss(images, labels)
        x = pad_to_multiple(self.norm(images), self.size_divisor)
        features = self.net.encoder(x)
        main = self.net.segmentation_head(self.net.decoder(features))
        aux = self.net.aux_head(features[-2])
        padded = pad_labels(labels, x.shape[-2:], self.ignore_index)
        return main_aux_loss(main, aux, padded, self.aux_weight, self.ignore_index)


def _check_aux(aux_weight: float, aux_channels: int) -> None:
    if aux_weight < 0:
        raise ValueError(f"model.aux_weight must be >= 0, got {aux_weight}")
    if aux_weight > 0 and aux_channels < 1:
        raise ValueError(f"model.aux_channels must be >= 1 with an auxiliary head, got {aux_channels}")


def _finish(net: nn.Module, options, num_classes: int, ignore_index: int, aux_weight: float = 0.0,
            aux_channels: int = 256) -> SmpClassifier:
    load_encoder_file(net, options)
    model = SmpClassifier(net, num_classes, ignore_index, aux_weight, aux_channels)
    if options.weights_file:
        load_weights_file(model, options.weights_file)
    return model


@dataclass(frozen=True)
class SmpOptions:
    """DeepLabV3+ options. Defaults: smp's head (the default workflow's run); see PAPER_MODELS."""

    encoder: str = "tu-resnet18"
    pretrained_file: str = ""
    weights_file: str = ""
    encoder_depth: int = 5
    output_stride: int = 16
    decoder_channels: int = 256
    aspp_project_kernel: int = 1  # 1: smp's 1x1 ASPP projection; 3: mmseg's 3x3 bottleneck
    aux_weight: float = 0.0
    aux_channels: int = 256

    def check(self) -> None:
        if self.output_stride not in (8, 16):
            raise ValueError(f"model.output_stride must be 8 or 16, got {self.output_stride}")
        if self.aspp_project_kernel not in (1, 3):
            raise ValueError(f"model.aspp_project_kernel must be 1 (smp) or 3 (mmsegmentation), got {self.aspp_project_kernel}")
        _check_aux(self.aux_weight, self.aux_channels)


DeepLabV3PlusOptions = SmpOptions


def build_deeplabv3plus(options: SmpOptions, num_classes: int, ignore_index: int) -> SmpClassifier:
    """DeepLabV3+ (Chen et al., ECCV 2018): atrous encoder, ASPP (rates 12/24/36 at stride 8), a light decoder.

    ``aspp_project_kernel=3`` turns smp's 1x1 projection of the concatenated ASPP branches
    into mmsegmentation's 3x3 ``bottleneck`` conv (DepthwiseSeparableASPPHead), the bulk of
    the published 62.7M parameters of DeepLabV3+ R101.
    """
    net = smp.DeepLabV3Plus(
        encoder_name=options.encoder,
        encoder_depth=options.encoder_depth,
        encoder_output_stride=options.output_stride,
        decoder_channels=options.decoder_channels,
        classes=num_classes,
        **encoder_kwargs(options),
    )
    if options.aspp_project_kernel == 3:
        project = net.decoder.aspp[0].project
        project[0] = nn.Conv2d(project[0].in_channels, project[0].out_channels, 3, padding=1, bias=False)
    return _finish(net, options, num_classes, ignore_index, options.aux_weight, options.aux_channels)


@dataclass(frozen=True)
class SegformerOptions:
    """SegFormer options: smp's MiT encoders are ``mit_b0`` .. ``mit_b5`` (smp's own, not timm)."""

    encoder: str = "mit_b0"
    pretrained_file: str = ""
    weights_file: str = ""
    decoder_channels: int = 256  # the all-MLP decoder width: 256 for B0/B1, 768 for B2..B5

    def check(self) -> None:
        if self.decoder_channels < 1:
            raise ValueError(f"model.decoder_channels must be >= 1, got {self.decoder_channels}")


def build_segformer(options: SegformerOptions, num_classes: int, ignore_index: int) -> SmpClassifier:
    """SegFormer (Xie et al., NeurIPS 2021): hierarchical MiT encoder, all-MLP decoder at stride 4."""
    net = smp.Segformer(
        encoder_name=options.encoder,
        decoder_segmentation_channels=options.decoder_channels,
        classes=num_classes,
        **encoder_kwargs(options),
    )
    return _finish(net, options, num_classes, ignore_index)


@dataclass(frozen=True)
class UPerNetOptions:
    """UPerNet options: a timm ConvNeXt (``tu-convnext_*``) or Swin (``tu-swin_*``) encoder."""

    encoder: str = "tu-convnext_atto"
    pretrained_file: str = ""
    weights_file: str = ""
    decoder_channels: int = 64  # mmseg's UPerHead ``channels``: 512 in the papers
    aux_weight: float = 0.4
    aux_channels: int = 64  # mmseg's auxiliary FCNHead: 256

    def check(self) -> None:
        if self.decoder_channels < 1:
            raise ValueError(f"model.decoder_channels must be >= 1, got {self.decoder_channels}")
        _check_aux(self.aux_weight, self.aux_channels)


def build_upernet(options: UPerNetOptions, num_classes: int, ignore_index: int) -> SmpClassifier:
    """UPerNet (Xiao et al., ECCV 2018): PPM on the last stage + FPN, fused at stride 4.

    Swin encoders get ``dynamic_img_size=True`` so timm pads any input to whole windows.
    """
    extra = {"dynamic_img_size": True} if options.encoder.startswith("tu-swin") else {}
    net = smp.UPerNet(
        encoder_name=options.encoder,
        decoder_channels=options.decoder_channels,
        classes=num_classes,
        **encoder_kwargs(options),
        **extra,
    )
    return _finish(net, options, num_classes, ignore_index, options.aux_weight, options.aux_channels)


# ---------------------------------------------------------------------------- paper sizes

# The baselines at the size the papers report, as ``model:`` sections (``method`` + options).
# `genseg models` builds these; workflow/config/paper-*.yaml copy them verbatim (a test checks).
PAPER_MODELS: dict[str, dict] = {
    # mmseg deeplabv3plus_r101-d8: ResNet-101 V1c (deep stem: timm's "c") at output stride 8, head
    # width 512, 3x3 ASPP bottleneck, FCN auxiliary head (256 wide, weight 0.4) on stage 3.
    "deeplabv3plus-r101": {
        "method": "deeplabv3plus", "encoder": "tu-resnet101c", "output_stride": 8, "decoder_channels": 512,
        "aspp_project_kernel": 3, "aux_weight": 0.4, "aux_channels": 256,
    },
    "deeplabv3plus-r50": {
        "method": "deeplabv3plus", "encoder": "tu-resnet50c", "output_stride": 8, "decoder_channels": 512,
        "aspp_project_kernel": 3, "aux_weight": 0.4, "aux_channels": 256,
    },
    # SegFormer-B2: MiT-B2, all-MLP decoder 768 wide.
    "segformer-b2": {"method": "segformer", "encoder": "mit_b2", "decoder_channels": 768},
    # MaskFormer Swin-T (ADE20K): Swin-T backbone, 256-wide FPN pixel decoder, 6-layer DETR
    # decoder, 100 queries, deep supervision.
    "maskformer-swin-t": {
        "method": "maskformer", "embed_dim": 96, "depths": [2, 2, 6, 2], "num_heads": [3, 6, 12, 24],
        "window_size": 7, "drop_path_rate": 0.3, "fpn_channels": 256, "decoder_dim": 256, "decoder_layers": 6,
        "decoder_heads": 8, "decoder_ffn": 2048, "num_queries": 100, "deep_supervision": True,
    },
    # Mask2Former Swin-T (ADE20K semantic): Swin-T backbone, 6-layer MSDeformAttn pixel decoder 256 wide,
    # 9 masked-attention layers (transformers counts 10 with the query-feature prediction), 100 queries,
    # mask losses on 112 x 112 = 12544 sampled points.
    "mask2former-swin-t": {
        "method": "mask2former", "embed_dim": 96, "depths": [2, 2, 6, 2], "num_heads": [3, 6, 12, 24],
        "window_size": 7, "drop_path_rate": 0.3, "fpn_channels": 256, "encoder_layers": 6, "encoder_ffn": 1024,
        "decoder_dim": 256, "decoder_layers": 10, "decoder_heads": 8, "decoder_ffn": 2048, "num_queries": 100,
        "train_num_points": 12544,
    },
    # OCRNet HRNetV2-W48: OCR 512 wide, keys 256, 1x1 auxiliary head 720 wide (the backbone's).
    "ocrnet-hrnet-w48": {"method": "ocrnet", "backbone": "hrnet_w48", "ocr_channels": 512, "key_channels": 256},
    # UPerNet ConvNeXt-T (ConvNeXt paper): UPerHead 512 wide, FCN auxiliary head 256 wide.
    "upernet-convnext-t": {
        "method": "upernet", "encoder": "tu-convnext_tiny", "decoder_channels": 512, "aux_weight": 0.4, "aux_channels": 256,
    },
}

# Published parameter counts (millions, 150 ADE20K classes) and where they come from.
PUBLISHED_PARAMS_M: dict[str, tuple[float, str]] = {
    "deeplabv3plus-r101": (62.7, "SegFormer paper, Table 2 (mmseg, with auxiliary head)"),
    "segformer-b2": (27.5, "SegFormer paper, Table 2"),
    "maskformer-swin-t": (42.0, "MaskFormer paper, Table 1"),
    "mask2former-swin-t": (47.0, "Mask2Former paper, ADE20K semantic results (Swin-T)"),
    "ocrnet-hrnet-w48": (70.3, "HRNet-Semantic-Segmentation (HRNetV2-W48 + OCR)"),
    "upernet-convnext-t": (60.0, "ConvNeXt paper, Table 3"),
}


DEEPLABV3PLUS_SPEC = MethodSpec(SmpOptions, build_deeplabv3plus, "DeepLabV3+", uncertainty=softmax_uncertainty)
SEGFORMER_SPEC = MethodSpec(SegformerOptions, build_segformer, "SegFormer", uncertainty=softmax_uncertainty)
UPERNET_SPEC = MethodSpec(UPerNetOptions, build_upernet, "UPerNet", uncertainty=softmax_uncertainty)
