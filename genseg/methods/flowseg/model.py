"""FlowSeg's velocity network: a pixel neural field decoder after PixNerd (MCG-NJU/PixNerd).

- The clean image goes through a timm backbone (``features_only``); its feature maps are
  resized to the patch grid, fused by a 1x1 conv and added to the patch tokens (how FlowSeg
  feeds the image is not published; this is our choice, as ``flow-on-cpu.md`` found that the
  image must reach the network clean).
- Patch tokens of the noisy map x_t pass DiT blocks with adaLN-Zero modulation by the time
  embedding (Peebles & Xie, 2023).
- Per patch, a linear layer emits the weights of a small MLP (PixNerd's neural field):
  every pixel's input is [x_t, DCT position features cos(pi x f_x) cos(pi y f_y) / (1 + f_x f_y)]
  (plus, optionally, ``pixel_features`` channels of a full-resolution conv on the image: our
  addition for sharp boundaries), projected, RMS-normalised, then fc1 -> SiLU -> fc2 with
  L2-normalised per-patch weights and a residual, and a final linear to the velocity.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..base import timm_features


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of t in [0, 1] (scaled by 1000 as in DiT)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


def sincos_2d(grid_h: int, grid_w: int, dim: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embedding, (grid_h * grid_w, dim)."""
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float32) / quarter)
    ys, xs = torch.meshgrid(torch.arange(grid_h, dtype=torch.float32), torch.arange(grid_w, dtype=torch.float32), indexing="ij")
    out = [f(c.reshape(-1)[:, None] * omega[None]) for c in (ys, xs) for f in (torch.sin, torch.cos)]
    emb = torch.cat(out, dim=1)
    return F.pad(emb, (0, dim - emb.shape[1]))


def dct_features(patch_size: int, freqs: int) -> torch.Tensor:
    """(P*P, freqs^2) DCT basis cos(pi x f_x) cos(pi y f_y) / (1 + f_x f_y) at pixel centres."""
    pos = (torch.arange(patch_size, dtype=torch.float32) + 0.5) / patch_size
    f = torch.arange(freqs, dtype=torch.float32)
    basis = torch.cos(math.pi * pos[:, None] * f[None])  # (P, F)
    feats = basis[:, None, :, None] * basis[None, :, None, :]  # (Py, Px, Fy, Fx)
    feats = feats / (1 + f[:, None] * f[None, :])
    return feats.reshape(patch_size * patch_size, freqs * freqs)


class DiTBlock(nn.Module):
    """Pre-norm transformer block; adaLN-Zero: shift, scale, gate from the condition."""

    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))
        nn.init.zeros_(self.ada[1].weight)
        nn.init.zeros_(self.ada[1].bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(cond)[:, None].chunk(6, dim=-1)
        h = self.norm1(x) * (1 + scale1) + shift1
        b, n, c = h.shape
        q, k, v = self.qkv(h).view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        h = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, c)
        x = x + gate1 * self.proj(h)
        h = self.norm2(x) * (1 + scale2) + shift2
        return x + gate2 * self.mlp(h)


class NeuralFieldHead(nn.Module):
    """Per-patch MLPs whose weights come from the patch token (PixNerd's neural field)."""

    def __init__(self, width: int, in_channels: int, out_channels: int, patch_size: int, dct_freqs: int, hidden: int):
        super().__init__()
        self.patch_size = patch_size
        self.hidden = hidden
        self.register_buffer("dct", dct_features(patch_size, dct_freqs), persistent=False)
        self.embed = nn.Linear(in_channels + dct_freqs * dct_freqs, hidden)
        self.norm = nn.RMSNorm(hidden)
        self.weights = nn.Linear(width, 2 * hidden * hidden)
        self.out = nn.Linear(hidden, out_channels)

    def forward(self, tokens: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
        """tokens (B, N, width); pixels (B, N, P*P, C) -> (B, N, P*P, out)."""
        b, n, pp, _ = pixels.shape
        dct = self.dct.expand(b, n, pp, -1)
        h = self.embed(torch.cat([pixels, dct], dim=-1))
        w1, w2 = self.weights(tokens).view(b, n, 2, self.hidden, self.hidden).unbind(2)
        w1, w2 = F.normalize(w1, dim=-2), F.normalize(w2, dim=-2)  # L2-normalised columns
        h = h + torch.einsum("bnph,bnhk->bnpk", F.silu(torch.einsum("bnph,bnhk->bnpk", self.norm(h), w1)), w2)
        return self.out(h)


class PixelFieldNet(nn.Module):
    """v_theta(x_t, t | image): (B, D, H, W) x (B,) x (B, 3, H, W) -> (B, D, H, W)."""

    def __init__(
        self,
        channels: int,
        *,
        encoder: str = "resnet18",
        pretrained_file: str = "",
        patch_size: int = 8,
        width: int = 128,
        depth: int = 2,
        heads: int = 4,
        hidden: int = 32,
        dct_freqs: int = 8,
        pixel_features: int = 16,
    ):
        super().__init__()
        self.patch_size = patch_size
        self.channels = channels
        self.backbone = timm_features(encoder, pretrained_file)
        self.fuse = nn.Conv2d(sum(self.backbone.feature_info.channels()), width, 1)
        self.patch_embed = nn.Linear(channels * patch_size * patch_size, width)
        self.time_embed = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.blocks = nn.ModuleList(DiTBlock(width, heads) for _ in range(depth))
        self.pixel_conv = (
            nn.Sequential(nn.Conv2d(3, pixel_features, 3, padding=1), nn.GELU(), nn.Conv2d(pixel_features, pixel_features, 3, padding=1))
            if pixel_features
            else None
        )
        self.head = NeuralFieldHead(width, channels + pixel_features, channels, patch_size, dct_freqs, hidden)

    def image_context(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Everything that depends on the image only: computed once, reused at every step."""
        h, w = image.shape[-2:]
        grid = (h // self.patch_size, w // self.patch_size)
        feats = [F.interpolate(f, size=grid, mode="bilinear", align_corners=False) for f in self.backbone(image)]
        context = {"tokens": self.fuse(torch.cat(feats, dim=1)).flatten(2).transpose(1, 2)}
        if self.pixel_conv is not None:
            context["pixels"] = self._patchify(self.pixel_conv(image))
        return context

    def _patchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, N, P*P, C)."""
        b, c, h, w = x.shape
        p = self.patch_size
        x = x.view(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(b, (h // p) * (w // p), p * p, c)

    def _unpatchify(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, _, _, c = x.shape
        p = self.patch_size
        x = x.view(b, h // p, w // p, p, p, c).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(b, c, h, w)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, context: dict[str, torch.Tensor]) -> torch.Tensor:
        b, _, h, w = x_t.shape
        pixels = self._patchify(x_t)
        tokens = self.patch_embed(pixels.flatten(2)) + context["tokens"]
        tokens = tokens + sincos_2d(h // self.patch_size, w // self.patch_size, tokens.shape[-1]).to(tokens)
        cond = self.time_embed(timestep_embedding(t, tokens.shape[-1]))
        for block in self.blocks:
            tokens = block(tokens, cond)
        if "pixels" in context:
            pixels = torch.cat([pixels, context["pixels"]], dim=-1)
        return self._unpatchify(self.head(tokens, pixels), h, w)
