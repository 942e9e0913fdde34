"""Layers shared by the GSS prior and the FT-W inverse."""

from __future__ import annotations

import torch
from timm.models.swin_transformer import SwinTransformerBlock
from torch import nn


class SwinStack(nn.Module):
    """``depth`` Swin blocks (timm's) on a (B, C, H, W) map, every second one shifted by window // 2.

    Windows are padded and the shift mask is built from the input, so any H, W works.
    """

    def __init__(self, dim: int, depth: int, heads: int, window: int, mlp_ratio: float):
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(
                dim, (window, window), heads, window_size=window, shift_size=window // 2 if i % 2 else 0,
                mlp_ratio=mlp_ratio, dynamic_mask=True, always_partition=True,
            )
            for i in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        for block in self.blocks:
            x = block(x)
        return x.permute(0, 3, 1, 2)
