"""Mask2Former (Cheng et al., CVPR 2022) from ``transformers``, built offline.

Mask classification like MaskFormer (:mod:`.maskformer`: per-class target masks, library
Hungarian-matching loss, semantic inference sum_q p_q(k) sigmoid(m_q)), with the paper's
changes: a multi-scale deformable-attention pixel decoder, a transformer decoder whose
cross-attention is masked to each query's current mask (round-robin over the 1/32, 1/16
and 1/8 features), a prediction from the query features before the first layer and after
every layer, all supervised (deep supervision), and mask losses on ``train_num_points``
sampled points (uncertainty-based importance sampling) instead of every pixel. Loss
weights as the paper: classes 2, mask BCE 5, dice 5, "no object" 0.1.

``transformers``' Mask2Former initialisation follows the official code (Xavier decoder,
N(0, 1) query embeddings), so no re-initialisation is needed, unlike MaskFormer.

Weights: random by default; ``pretrained_dir`` names a local ``save_pretrained`` folder
(config.json + model.safetensors) read with ``from_pretrained(dir, local_files_only=True)``;
``backbone_file`` a timm ``swin_*`` safetensors file for the Swin backbone only
(:func:`.maskformer.load_backbone_file`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from .maskformer import (
    MaskFormer,
    MaskFormerBaseOptions,
    load_backbone_file,
    load_pretrained_dir,
    swin_config,
)
from .spec import MethodSpec, softmax_uncertainty

if TYPE_CHECKING:  # transformers is imported when a Mask2Former is built, not with genseg.methods
    from transformers import Mask2FormerConfig, Mask2FormerForUniversalSegmentation


@dataclass(frozen=True)
class Mask2FormerOptions(MaskFormerBaseOptions):
    """Swin backbone, MSDeformAttn pixel decoder, masked-attention decoder (shared options: the base)."""

    decoder_layers: int = 3  # transformers counts the query-feature prediction: 10 = 9 layers + 1
    encoder_layers: int = 1  # deformable-attention layers of the pixel decoder: 6
    encoder_ffn: int = 64  # 1024
    train_num_points: int = 1024  # 12544 (112 x 112) in the paper

    def check(self) -> None:
        super().check()
        if self.fpn_channels % 32 or self.fpn_channels < 32:
            raise ValueError(f"model.fpn_channels must be a multiple of 32 (the pixel decoder's GroupNorm(32)), got {self.fpn_channels}")
        if self.decoder_layers < 2:
            raise ValueError(f"model.decoder_layers counts the query-feature prediction too: it must be >= 2, got {self.decoder_layers}")
        if min(self.window_size, self.encoder_layers, self.encoder_ffn, self.decoder_ffn, self.num_queries, self.train_num_points) < 1:
            raise ValueError("model.window_size, encoder_layers, encoder_ffn, decoder_ffn, num_queries and train_num_points must be >= 1")


def mask2former_config(options: Mask2FormerOptions, num_classes: int) -> Mask2FormerConfig:
    """The ``transformers`` config for ``options`` (no files, no hub)."""
    from transformers import Mask2FormerConfig

    return Mask2FormerConfig(
        backbone_config=swin_config(options),
        num_labels=num_classes,
        feature_size=options.fpn_channels,
        mask_feature_size=options.fpn_channels,
        encoder_layers=options.encoder_layers,
        encoder_feedforward_dim=options.encoder_ffn,
        hidden_dim=options.decoder_dim,
        decoder_layers=options.decoder_layers,
        num_attention_heads=options.decoder_heads,
        dim_feedforward=options.decoder_ffn,
        num_queries=options.num_queries,
        train_num_points=options.train_num_points,
        no_object_weight=options.no_object_weight,
        use_auxiliary_loss=True,
    )


class Mask2Former(MaskFormer):
    """Mask2Former behind the one interface; targets, loss and inference are MaskFormer's."""

    upsample_mask_logits = True  # official semantic inference: mask logits resized to the image first

    def build_net(self, options: Mask2FormerOptions, num_classes: int) -> Mask2FormerForUniversalSegmentation:
        from transformers import Mask2FormerForUniversalSegmentation

        config = mask2former_config(options, num_classes)
        if options.pretrained_dir:
            return load_pretrained_dir(options.pretrained_dir, config, Mask2FormerForUniversalSegmentation, "Mask2Former")
        net = Mask2FormerForUniversalSegmentation(config)
        if options.backbone_file:
            load_backbone_file(net.model.pixel_level_module.encoder, options.backbone_file)
        return net

    def predictions(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[dict[str, torch.Tensor]]]:
        """Class and mask logits after the last layer, and the earlier ones' (auxiliary), as the library's forward."""
        out = self.net.model(pixel_values=x, output_hidden_states=True)  # the per-layer states come with hidden states
        classes = [self.net.class_predictor(h.transpose(0, 1)) for h in out.transformer_decoder_intermediate_states]
        masks = out.masks_queries_logits
        return classes[-1], masks[-1], self.net.get_auxiliary_logits(classes, masks)


def build_mask2former(options: Mask2FormerOptions, num_classes: int, ignore_index: int) -> Mask2Former:
    return Mask2Former(options, num_classes, ignore_index)


MASK2FORMER_SPEC = MethodSpec(Mask2FormerOptions, build_mask2former, "Mask2Former", uncertainty=softmax_uncertainty)
