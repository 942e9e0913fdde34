"""OCRNet (Yuan, Chen and Wang, "Object-Contextual Representations for Semantic Segmentation", ECCV 2020).

On HRNetV2 features x (timm HRNet, all four branches upsampled to stride 4 and
concatenated), with K the number of classes:

- soft object regions M_1..M_K: an auxiliary head's class logits, normalised by a spatial
  softmax into m~_ki (trained with cross-entropy, weight 0.4 in the paper);
- object region representations, Eq. (1): f_k = sum_i m~_ki x_i;
- pixel-region relation, Eq. (2): w_ik = exp(kappa(x_i, f_k)) / sum_j exp(kappa(x_i, f_j)),
  kappa(x, f) = phi(x)^T psi(f) (scaled by 1/sqrt(key channels), as in the official code);
- object contextual representation, Eq. (3): y_i = rho(sum_k w_ik delta(f_k));
- augmented representation, Eq. (4): z_i = g([x_i, y_i]), classified by a 1x1 conv.

phi, psi are two (1x1 conv, BN, ReLU) layers; delta, rho and g one each. Sizes follow the
official HRNet-OCR / mmsegmentation configs: x is a 3x3 conv of the backbone features to 512
channels, keys 256, the auxiliary head a 1x1 conv as wide as the backbone (720 for W48).
"""

from __future__ import annotations

from dataclasses import dataclass

import timm
import torch
import torch.nn.functional as F
from torch import nn

from .base import PixelClassifier, pad_to_multiple
from .baselines import (
    HEAD_PREFIXES,
    STATE_DICT_FORMAT,
    conv_bn_relu,
    load_checked,
    load_weights_file,
    main_aux_loss,
    pad_labels,
    read_state_dict,
)
from .spec import MethodSpec, softmax_uncertainty


class HRNetV2(nn.Module):
    """timm HRNet's four branches (strides 4..32), upsampled to stride 4 and concatenated."""

    def __init__(self, name: str = "hrnet_w18_small"):
        super().__init__()
        self.body = timm.create_model(name, pretrained=False, features_only=True, feature_location="", out_indices=(1, 2, 3, 4))
        self.out_channels = sum(self.body.feature_info.channels())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.body(x)
        size = feats[0].shape[-2:]
        up = [F.interpolate(f, size=size, mode="bilinear", align_corners=False) for f in feats[1:]]
        return torch.cat([feats[0], *up], dim=1)


class SpatialGather(nn.Module):
    """Eq. (1): f_k = sum_i m~_ki x_i, m~_k the spatial softmax of region logit map k."""

    def forward(self, x: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        m = regions.flatten(2).softmax(dim=-1)  # (B, K, N)
        return torch.einsum("bkn,bcn->bck", m, x.flatten(2)).unsqueeze(-1)  # (B, C, K, 1)


class ObjectContext(nn.Module):
    """Eqs. (2)-(4): relation w_ik, contextual y_i = rho(sum_k w_ik delta(f_k)), z_i = g([x_i, y_i])."""

    def __init__(self, channels: int, key_channels: int, dropout: float = 0.05):
        super().__init__()
        self.key_channels = key_channels
        self.phi = nn.Sequential(conv_bn_relu(channels, key_channels), conv_bn_relu(key_channels, key_channels))
        self.psi = nn.Sequential(conv_bn_relu(channels, key_channels), conv_bn_relu(key_channels, key_channels))
        self.delta = conv_bn_relu(channels, key_channels)
        self.rho = conv_bn_relu(key_channels, channels)
        self.g = nn.Sequential(conv_bn_relu(2 * channels, channels), nn.Dropout2d(dropout))

    def forward(self, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        query = self.phi(x).flatten(2).transpose(1, 2)  # (B, N, D)
        key = self.psi(f).flatten(2)  # (B, D, K)
        value = self.delta(f).flatten(2).transpose(1, 2)  # (B, K, D)
        relation = torch.softmax(query @ key * self.key_channels**-0.5, dim=-1)  # w_ik, (B, N, K)
        y = self.rho((relation @ value).transpose(1, 2).reshape(b, self.key_channels, h, w))
        return self.g(torch.cat([x, y], dim=1))


class OCRNet(nn.Module):
    """HRNetV2 backbone + OCR head; ``forward_with_aux`` gives (main, soft-region) logits at stride 4."""

    def __init__(self, num_classes: int, backbone: str = "hrnet_w18_small", ocr_channels: int = 64,
                 key_channels: int = 32, aux_channels: int = 0, dropout: float = 0.05):
        super().__init__()
        self.backbone = HRNetV2(backbone)
        width = self.backbone.out_channels
        self.aux_head = nn.Sequential(conv_bn_relu(width, aux_channels or width), nn.Conv2d(aux_channels or width, num_classes, 1))
        self.pixel = conv_bn_relu(width, ocr_channels, 3)
        self.gather = SpatialGather()
        self.context = ObjectContext(ocr_channels, key_channels, dropout)
        self.cls = nn.Conv2d(ocr_channels, num_classes, 1)

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.backbone(x)
        regions = self.aux_head(feats)
        pixels = self.pixel(feats)
        z = self.context(pixels, self.gather(pixels, regions))
        return self.cls(z), regions

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Main logits at the input resolution."""
        return F.interpolate(self.forward_with_aux(x)[0], size=x.shape[-2:], mode="bilinear", align_corners=False)


@dataclass(frozen=True)
class OCRNetOptions:
    """OCRNet options; defaults are tiny (HRNet-W18-small, OCR 64 / keys 32), see PAPER_MODELS."""

    backbone: str = "hrnet_w18_small"  # a timm HRNet
    pretrained_file: str = ""  # timm HRNet ImageNet weights (classification keys are dropped)
    weights_file: str = ""
    ocr_channels: int = 64  # 512 in the paper
    key_channels: int = 32  # 256 in the paper
    aux_channels: int = 0  # 0: as wide as the concatenated backbone features (720 for W48)
    aux_weight: float = 0.4
    dropout: float = 0.05

    def check(self) -> None:
        if not self.backbone.startswith("hrnet"):
            raise ValueError(f"model.backbone must be a timm HRNet ('hrnet_w18_small' .. 'hrnet_w64'), got {self.backbone!r}")
        if min(self.ocr_channels, self.key_channels) < 1 or self.aux_channels < 0:
            raise ValueError("model.ocr_channels and model.key_channels must be >= 1, model.aux_channels >= 0")
        if self.aux_weight < 0:
            raise ValueError(f"model.aux_weight must be >= 0, got {self.aux_weight}")


class OCRNetClassifier(PixelClassifier):
    """OCRNet as a method: loss = CE(z) + aux_weight * CE(soft object regions)."""

    def __init__(self, net: OCRNet, num_classes: int, ignore_index: int = 255, aux_weight: float = 0.4):
        super().__init__(net, num_classes, ignore_index, size_divisor=32)
        self.aux_weight = aux_weight

    def training_loss(self, images, labels):
        x = pad_to_multiple(self.norm(images), self.size_divisor)
        main, regions = self.net.forward_with_aux(x)
        return main_aux_loss(main, regions, pad_labels(labels, x.shape[-2:], self.ignore_index), self.aux_weight, self.ignore_index)


def build_ocrnet(options: OCRNetOptions, num_classes: int, ignore_index: int) -> OCRNetClassifier:
    net = OCRNet(num_classes, options.backbone, options.ocr_channels, options.key_channels, options.aux_channels, options.dropout)
    if options.pretrained_file:
        what = f"timm {options.backbone!r} weights ({STATE_DICT_FORMAT})"
        state = read_state_dict(options.pretrained_file, "pretrained_file", what)
        load_checked(net.backbone.body, state, options.pretrained_file, "pretrained_file", what, HEAD_PREFIXES)
    model = OCRNetClassifier(net, num_classes, ignore_index, options.aux_weight)
    if options.weights_file:
        load_weights_file(model, options.weights_file)
    return model


OCRNET_SPEC = MethodSpec(OCRNetOptions, build_ocrnet, "OCRNet", uncertainty=softmax_uncertainty)
