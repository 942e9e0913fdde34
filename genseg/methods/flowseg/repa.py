"""REPA (Yu et al., 2025) as PixNerd trains with it: align the tokens after one transformer block,
through an MLP projector, with a frozen encoder's patch features by cosine similarity.

The encoder is any timm model read from a local safetensors file (PixNerd: DINOv2 ViT-B/14,
weight 0.5, block 8); it is frozen and not part of the method's state dict (a run's
``model.safetensors`` never carries it). Its features, from the image resized to the encoder's
input size, are resized to the token grid.
"""

from __future__ import annotations

import math
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open


class RepaTarget:
    """Frozen encoder: (B, 3, H, W) normalised images -> (B, L, C) patch features on a token grid."""

    def __init__(self, name: str, file: str):
        path = Path(file)
        if not path.is_file() or path.suffix != ".safetensors":
            raise FileNotFoundError(f"REPA encoder weights {path}: expected an existing .safetensors file of the timm model {name!r}")
        try:
            with safe_open(str(path), framework="pt") as f:
                stored = set(f.keys())
        except (SafetensorError, OSError) as err:
            raise RuntimeError(f"REPA encoder weights {path} are not a readable safetensors file ({err})") from None
        try:
            self.model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": str(path)}, num_classes=0)
        except RuntimeError as err:
            raise RuntimeError(f"REPA encoder weights {path} do not fit the timm model {name!r}: {err}") from None
        # timm loads non-strictly once the classifier is dropped (num_classes=0): a tensor the file
        # lacks would silently keep its random init, so every one must be in the file.
        missing = sorted(set(self.model.state_dict()) - stored)
        if missing:
            raise RuntimeError(f"REPA encoder weights {path} do not fit the timm model {name!r}: the file lacks "
                               f"{len(missing)} of its tensors ({', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''})")
        self.model.eval().requires_grad_(False)
        self.input_size = tuple(self.model.pretrained_cfg["input_size"][-2:])
        self.prefix_tokens = getattr(self.model, "num_prefix_tokens", 0)
        self.dim = self.model.num_features

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        self.model.to(images.device)
        feats = self.model.forward_features(F.interpolate(images, size=self.input_size, mode="bilinear", align_corners=False))
        if feats.ndim == 3:  # ViT tokens: drop class/register tokens, back to a square grid
            tokens = feats[:, self.prefix_tokens:]
            side = math.isqrt(tokens.shape[1])
            feats = tokens.transpose(1, 2).reshape(tokens.shape[0], -1, side, side)
        feats = F.interpolate(feats.float(), size=grid, mode="bilinear", align_corners=False)
        return feats.flatten(2).transpose(1, 2)


def repa_loss(projected: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - cos(projected, target), averaged over tokens and images."""
    return 1 - F.cosine_similarity(projected, target, dim=-1).mean()
