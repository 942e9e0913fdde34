"""GSS prior (stage 2): image -> logits over the posterior's codebook at the token grid.

timm backbone (``features_only``, its last 4 levels: strides 4-32 of a ResNet, the 4 stages of a
Swin, channels-last outputs transposed) -> MLA fusion: each level 1x1 conv to ``mla_dim``
(BN, ReLU), resized to the token grid, concatenated, 1x1 conv to ``dim`` -> ``depth``
shifted-window transformer blocks (timm's Swin block) -> LayerNorm, 1x1 conv to ``hidden``
(BN, ReLU), Dropout2d 0.1, 1x1 conv to ``num_codes``. The auxiliary K-class pixel head
("unlabeled area auxiliary") reads the fused features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..base import timm_features
from ..baselines import conv_bn_relu
from .layers import SwinStack


class Prior(nn.Module):
    """Token logits (B, num_codes, H/s, W/s) and auxiliary class logits (B, K, H/s, W/s); s = ``token_stride``."""

    def __init__(
        self, num_codes: int, num_classes: int, *, encoder: str = "resnet18", pretrained_file: str = "",
        token_stride: int = 4, mla_dim: int = 64, dim: int = 128, depth: int = 2, heads: int = 4,
        window: int = 7, ffn: int = 256, hidden: int = 256, encoder_args: dict | None = None,
    ):
        super().__init__()
        try:
            self.backbone = timm_features(encoder, pretrained_file, **(encoder_args or {}))
        except TypeError as err:  # a keyword this timm model does not take
            raise ValueError(f"model.encoder {encoder!r} does not take model.img_size / model.encoder_args {encoder_args}: {err}") from None
        channels = self.backbone.feature_info.channels()
        if len(channels) < 4:
            raise ValueError(f"model.encoder {encoder!r} has {len(channels)} feature levels; the prior fuses 4")
        self.first_level = len(channels) - 4
        fmt = getattr(self.backbone, "output_fmt", "NCHW")
        self.channels_last = str(getattr(fmt, "value", fmt)) == "NHWC"  # timm's Swin
        self.token_stride = token_stride
        self.mla = nn.ModuleList(conv_bn_relu(c, mla_dim) for c in channels[self.first_level:])
        self.fuse = nn.Conv2d(4 * mla_dim, dim, 1)
        self.blocks = SwinStack(dim, depth, heads, window, ffn / dim)
        self.norm = nn.LayerNorm(dim)
        self.token_head = nn.Sequential(conv_bn_relu(dim, hidden), nn.Dropout2d(0.1), nn.Conv2d(hidden, num_codes, 1))
        self.aux_head = nn.Conv2d(dim, num_classes, 1)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = images.shape[-2] // self.token_stride, images.shape[-1] // self.token_stride
        features = self.backbone(images)[self.first_level:]
        if self.channels_last:
            features = [f.permute(0, 3, 1, 2) for f in features]
        levels = [F.interpolate(m(f), size=(h, w), mode="bilinear", align_corners=False) for m, f in zip(self.mla, features)]
        fused = self.fuse(torch.cat(levels, 1))
        x = self.blocks(fused)
        x = self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.token_head(x), self.aux_head(fused)
