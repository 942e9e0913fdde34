"""A VQ-VAE small enough to train on CPU, on maskiges: GSS's posterior (stage 1), frozen after.

Encoder: log2(downsample) stride-2 convolutions, two residual blocks at the token grid, 1x1
to the code dimension (the work stays at low resolution: maskiges are piecewise constant). Quantiser: nearest codebook vector (van den Oord et al. 2017, Eq. 1-3),
straight-through gradients, codebook learned by exponential moving averages (Razavi et al.
2019, App. A.1) with dead codes restarted from the batch. Decoder: the mirror, ending in a
sigmoid. Inputs and outputs live in DALL-E's mapped range (``0.8 x + 0.1``), so the small
VQ-VAE and the DALL-E dVAE share one code path. Protocol (as ``DalleDVAE``): ``num_codes``,
``downsample``, ``encode(maskige) -> tokens``, ``decode(tokens) -> maskige``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .maskige import from_vq_range, to_vq_range


class ResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(), nn.Conv2d(channels, channels, 1)
        )

    def forward(self, x):
        return x + self.body(x)


class EMAQuantizer(nn.Module):
    """z -> nearest of ``num_codes`` vectors; EMA codebook (decay), commitment loss beta ||z - sg(e)||^2."""

    def __init__(self, num_codes: int, dim: int, decay: float = 0.99, eps: float = 1e-5):
        super().__init__()
        self.num_codes, self.decay, self.eps = num_codes, decay, eps
        embed = torch.randn(num_codes, dim) * 0.1
        self.register_buffer("codebook", embed)
        self.register_buffer("cluster_size", torch.ones(num_codes))
        self.register_buffer("embed_sum", embed.clone())

    def indices(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D, h, w) -> (B, h, w) code indices."""
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        dist = (self.codebook * self.codebook).sum(1) - 2 * flat @ self.codebook.T
        return dist.argmin(1).view(z.shape[0], *z.shape[2:])

    def lookup(self, idx: torch.Tensor) -> torch.Tensor:
        return self.codebook[idx].permute(0, 3, 1, 2)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(quantised z with straight-through gradient, indices, commitment loss)."""
        idx = self.indices(z)
        q = self.lookup(idx)
        if self.training:
            self._ema_update(z.detach(), idx)
        commit = F.mse_loss(z, q.detach())
        return z + (q - z).detach(), idx, commit

    @torch.no_grad()
    def _ema_update(self, z: torch.Tensor, idx: torch.Tensor) -> None:
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        onehot = F.one_hot(idx.reshape(-1), self.num_codes).type_as(flat)
        self.cluster_size.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(onehot.T @ flat, alpha=1 - self.decay)
        n = self.cluster_size.sum()
        size = (self.cluster_size + self.eps) / (n + self.num_codes * self.eps) * n
        self.codebook.copy_(self.embed_sum / size[:, None])
        dead = self.cluster_size < 1e-2  # restart unused codes at random encoder outputs
        if dead.any():
            pick = torch.randint(0, flat.shape[0], (int(dead.sum()),), device=flat.device)
            self.codebook[dead] = flat[pick]
            self.embed_sum[dead] = flat[pick]
            self.cluster_size[dead] = 1.0


class VQVAE(nn.Module):
    """Maskige autoencoder with a discrete bottleneck of ``num_codes`` codes at 1/``downsample``."""

    def __init__(self, num_codes: int = 512, downsample: int = 4, width: int = 64, code_dim: int = 32):
        super().__init__()
        if downsample < 2 or downsample & (downsample - 1):
            raise ValueError(f"downsample must be a power of two >= 2, got {downsample}")
        self.num_codes, self.downsample = num_codes, downsample
        stages = int(math.log2(downsample))
        enc: list[nn.Module] = [nn.Conv2d(3, width, 4, stride=2, padding=1)]
        for _ in range(stages - 1):
            enc += [nn.ReLU(), nn.Conv2d(width, width, 4, stride=2, padding=1)]
        enc += [ResBlock(width), ResBlock(width), nn.ReLU(), nn.Conv2d(width, code_dim, 1)]
        dec: list[nn.Module] = [nn.Conv2d(code_dim, width, 3, padding=1), ResBlock(width), ResBlock(width)]
        for _ in range(stages - 1):
            dec += [nn.ReLU(), nn.ConvTranspose2d(width, width, 4, stride=2, padding=1)]
        dec += [nn.ReLU(), nn.ConvTranspose2d(width, 3, 4, stride=2, padding=1)]
        self.encoder, self.decoder = nn.Sequential(*enc), nn.Sequential(*dec)
        self.quantizer = EMAQuantizer(num_codes, code_dim)

    def forward(self, maskige: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction in the mapped range, code indices, commitment loss)."""
        q, idx, commit = self.quantizer(self.encoder(to_vq_range(maskige)))
        return torch.sigmoid(self.decoder(q)), idx, commit

    @torch.no_grad()
    def encode(self, maskige: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, H/ds, W/ds) int64 tokens."""
        return self.quantizer.indices(self.encoder(to_vq_range(maskige)))

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, h, w) tokens -> (B, 3, h*ds, w*ds) maskige in [0, 1]."""
        return from_vq_range(torch.sigmoid(self.decoder(self.quantizer.lookup(tokens))))
