"""PixNerd's denoiser (MCG-NJU/PixNerd, MIT), rebuilt key for key (``shared/docs/pixnerd.md``).

A pixel-space diffusion transformer: patch tokens of the noisy input pass DiT blocks
(RMSNorm, adaLN on c = SiLU(t_emb + y_emb), per-head q/k RMSNorm, 2-D RoPE, SwiGLU); then
every pixel of a patch goes through a neural field whose weights the patch token generates
(64 -> 128 -> 64, L2-normalised along the input dimension), fed with its noisy values and 8 x 8
DCT features cos(pi x f_x) cos(pi y f_y) / (1 + f_x f_y). The state dict of :class:`PixNerd`
built from ``PRESETS["pixnerd-l16"]`` or ``["pixnerd-xl16"]`` has exactly the release's names and
shapes, so a converted release checkpoint (``genseg convert-pixnerd``) loads strictly.

Two widenings serve FlowSeg's image conditioning: ``stem_extra`` input columns of
``s_embedder`` (image patches concatenated to the noisy patches) and ``pixel_extra`` input
columns of ``x_embedder`` (per-pixel image features); loading a release zero-fills them
(``weights.py``), so the pretrained model computes the same function at step 0. One addition
changes no weights: with ``overlap`` m > 0 each patch's neural field also runs m pixels into its
neighbours (DCT positions extended past [0, 1]) and the overlapping windows are blended by
linear ramps (:func:`blend_weights`), which softens the seams a per-patch field draws on the
patch grid; m = 0 is the release's computation. ``grid_offset`` (oy, ox) lays the patch grid
from (oy, ox) instead of the corner (the input replicate-padded, the output cropped: FlowSeg's
``grid_shift``); ``token_add`` must then be given on that grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn


@dataclass(frozen=True)
class PixNerdShape:
    """H = hidden, G = heads, P = patch; blocks = transformer + neural-field blocks."""

    hidden: int
    heads: int
    patch: int
    transformer_blocks: int
    field_blocks: int
    field_width: int = 64  # h: per-pixel width
    field_ratio: int = 2  # r: the field MLP is h -> h r -> h
    mlp_ratio: float = 4.0  # SwiGLU width int(2 * mlp_ratio * H / 3)
    dct_freqs: int = 8
    label_rows: int = 1001  # 1000 ImageNet classes + the null row


PRESETS = {
    # CPU-sized: trains in a minute or two on the embedded default (our choice, not a release size).
    "pixnerd-cpu": PixNerdShape(hidden=128, heads=4, patch=8, transformer_blocks=2, field_blocks=2, field_width=16),
    # The release's shapes (pixnerd.md: L/16 452.1M parameters, XL/16 700.6M).
    "pixnerd-l16": PixNerdShape(hidden=1024, heads=16, patch=16, transformer_blocks=22, field_blocks=2),
    "pixnerd-xl16": PixNerdShape(hidden=1152, heads=16, patch=16, transformer_blocks=26, field_blocks=4),
}
FIELD_CHUNK_ROWS = 16384  # pixels per chunk of the neural field at CPU inference (PixNerd.field)
NULL_LABEL = 1000  # the release's unconditional row; our segmentation task embedding starts from it


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * weight, computed in float32 (weight only)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * F.rms_norm(x.float(), (x.shape[-1],), eps=self.eps).to(x.dtype)

    def unweighted(self, x: torch.Tensor) -> torch.Tensor:
        """x / sqrt(mean(x^2) + eps) in float32, without the weight: the caller folds ``weight``
        into the linear map that follows (norm(x) W = (x / rms(x)) (diag(weight) W))."""
        x = x.float()
        return x * torch.rsqrt(x.square().mean(-1, keepdim=True) + self.eps)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


def timestep_embedding(t: torch.Tensor, dim: int = 256, max_period: float = 10.0) -> torch.Tensor:
    """PixNerd's time features: raw t in [0, 1] (not x1000), max period 10, cos half then sin half."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def rope_2d(head_dim: int, grid_h: int, grid_w: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin), each (N, head_dim / 2): one angle per interleaved pair; pairs alternate x and y,
    frequencies 1 / 10000^(i / head_dim) for i = 0, 4, 8, ..., positions linspace(0, 16, n)."""
    freqs = 1.0 / 10000 ** (torch.arange(0, head_dim, 4, device=device)[: head_dim // 4].float() / head_dim)
    ys, xs = torch.meshgrid(torch.linspace(0, 16, grid_h, device=device), torch.linspace(0, 16, grid_w, device=device), indexing="ij")
    angles = torch.stack([xs.reshape(-1, 1) * freqs, ys.reshape(-1, 1) * freqs], dim=-1).flatten(1)  # x, y alternating
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Rotate interleaved pairs (x[2i], x[2i+1]) of (B, N, G, head_dim) by the pair's angle, in float32."""
    cos, sin = (r[None, :, None, :] for r in rope)
    pairs = x.float().unflatten(-1, (-1, 2))
    a, b = pairs[..., 0], pairs[..., 1]
    return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2).to(x.dtype)


class Attention(nn.Module):
    """qkv (no bias) -> per-head RMSNorm on q, k -> 2-D RoPE -> SDPA -> proj."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_norm = RMSNorm(dim // heads)
        self.k_norm = RMSNorm(dim // heads)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, rope) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, c // self.heads).unbind(2)  # (B, N, G, Hc)
        q, k = apply_rope(self.q_norm(q), rope), apply_rope(self.k_norm(k), rope)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class SwiGLU(nn.Module):
    """w2(SiLU(w1 x) * w3 x), hidden int(2 * hidden / 3), no biases."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        hidden = int(2 * hidden / 3)
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TransformerBlock(nn.Module):
    """x + gate * attn(modulate(norm1 x)); x + gate * mlp(modulate(norm2 x)); one Linear(H, 6H) on c."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = RMSNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = RMSNorm(dim)
        self.mlp = SwiGLU(dim, int(dim * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.Linear(dim, 6 * dim))

    def forward(self, x: torch.Tensor, c: torch.Tensor, rope) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN_modulation(c).chunk(6, dim=-1)
        x = x + gate1 * self.attn(modulate(self.norm1(x), shift1, scale1), rope)
        return x + gate2 * self.mlp(modulate(self.norm2(x), shift2, scale2))


class FieldBlock(nn.Module):
    """x + fc2(SiLU(fc1(RMSNorm(x)))), fc1 (h, h r) and fc2 (h r, h) generated per patch from its
    token by ``param_generator1`` and L2-normalised along their input dimension."""

    def __init__(self, dim: int, width: int, ratio: int):
        super().__init__()
        self.width, self.ratio = width, ratio
        self.param_generator1 = nn.Sequential(nn.Linear(dim, 2 * width * width * ratio))
        self.norm = RMSNorm(width)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """x (M, P*P, h) pixels of M patches; s (M, H) their tokens."""
        fc1, fc2 = self.param_generator1(s).chunk(2, dim=-1)
        fc1 = _unit_columns(fc1.view(-1, self.width, self.width * self.ratio)) * self.norm.weight[:, None]  # RMSNorm's weight folded in
        fc2 = _unit_columns(fc2.view(-1, self.width * self.ratio, self.width))
        h = torch.bmm(self.norm.unweighted(x).to(x.dtype), fc1)
        h = F.silu(h, inplace=not torch.is_grad_enabled())  # in place at inference: one big buffer less
        return torch.baddbmm(x, h, fc2)


def _unit_columns(w: torch.Tensor) -> torch.Tensor:
    """``F.normalize(w, dim=-2)`` (L2 over the input dimension, norm clamped at 1e-12), written with a
    sum of squares: a vector norm over a non-last dimension is ~20x slower on CPU."""
    return w / w.square().sum(-2, keepdim=True).sqrt().clamp_min(1e-12)


def dct_features(patch: int, freqs: int, window: int = 0) -> torch.Tensor:
    """(K*K, F*F): cos(pi x f_x) cos(pi y f_y) / (1 + f_x f_y), x, y = linspace(0, 1, P) row-major,
    f = linspace(0, F, F), feature index f_x * F + f_y (the release's order). A ``window`` K > P
    centred on the patch extends the positions past [0, 1] at the same spacing."""
    window = window or patch
    pos = (torch.arange(window, dtype=torch.float32) - (window - patch) / 2) / (patch - 1)
    pos_y, pos_x = (p.reshape(-1, 1, 1) for p in torch.meshgrid(pos, pos, indexing="ij"))
    f = torch.linspace(0, freqs, freqs)
    fx, fy = f[None, :, None], f[None, None, :]
    return (torch.cos(math.pi * pos_x * fx) * torch.cos(math.pi * pos_y * fy) / (1 + fx * fy)).reshape(window * window, -1)


def pointwise(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution without bias, (B, C, H, W) x (O, C) -> (B, O, H, W), as one matmul (on CPU
    several times faster than a convolution with few input channels)."""
    return torch.einsum("bchw,oc->bohw", x, weight)


def blend_weights(patch: int, margin: int) -> torch.Tensor:
    """((P + 2m)^2,) weights of a window reaching ``margin`` m pixels past its patch on each side:
    along each axis 1 in the middle, linear ramps over the 2m pixels shared with a neighbour, so
    overlapping windows sum to 1 (m = P / 2: the bilinear tent)."""
    k = torch.arange(patch + 2 * margin, dtype=torch.float32) + 0.5
    w = torch.minimum(k, patch + 2 * margin - k).div(2 * margin).clamp(max=1)
    return (w[:, None] * w[None, :]).reshape(-1)


class Linear(nn.Module):
    """The token stem, ``s_embedder.proj``."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.proj = nn.Linear(cin, cout)

    def forward(self, x):
        return self.proj(x)


class TimeEmbedder(nn.Module):
    def __init__(self, dim: int, features: int = 256):
        super().__init__()
        self.features = features
        self.mlp = nn.Sequential(nn.Linear(features, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_embedding(t, self.features))


class LabelEmbedder(nn.Module):
    def __init__(self, rows: int, dim: int):
        super().__init__()
        self.embedding_table = nn.Embedding(rows, dim)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.embedding_table(y)


class PixelEmbedder(nn.Module):
    """``x_embedder.embedder.0``: Linear(C + F*F (+ extra), h) over [pixel values, DCT, extra]."""

    def __init__(self, cin: int, width: int):
        super().__init__()
        self.embedder = nn.Sequential(nn.Linear(cin, width))

    def forward(self, x):
        return self.embedder(x)


class FinalLayer(nn.Module):
    def __init__(self, width: int, channels: int):
        super().__init__()
        self.norm = RMSNorm(width)
        self.linear = nn.Linear(width, channels)

    def forward(self, x):
        """linear(norm(x)), the norm's weight folded into the linear map (one full-size product less)."""
        return F.linear(self.norm.unweighted(x).to(x.dtype), self.linear.weight * self.norm.weight, self.linear.bias)


class PixNerd(nn.Module):
    """v(x_t, t, y): (B, C, H, W) -> (B, C, H, W); H and W multiples of the patch size."""

    def __init__(self, shape: PixNerdShape, channels: int = 3, stem_extra: int = 0, pixel_extra: int = 0, overlap: int = 0):
        super().__init__()
        if not 0 <= overlap <= shape.patch // 2:
            raise ValueError(f"field overlap must be in 0..{shape.patch // 2} pixels (half the patch), got {overlap}")
        self.shape, self.channels, self.overlap = shape, channels, overlap
        p, dim = shape.patch, shape.hidden
        if dim % shape.heads or (dim // shape.heads) % 4:
            raise ValueError(f"hidden size {dim} must split into {shape.heads} heads of a multiple of 4 (2-D RoPE)")
        self.s_embedder = Linear(channels * p * p + stem_extra, dim)
        self.t_embedder = TimeEmbedder(dim)
        self.y_embedder = LabelEmbedder(shape.label_rows, dim)
        self.blocks = nn.ModuleList(TransformerBlock(dim, shape.heads, shape.mlp_ratio) for _ in range(shape.transformer_blocks))
        self.blocks.extend(FieldBlock(dim, shape.field_width, shape.field_ratio) for _ in range(shape.field_blocks))
        self.grad_checkpointing = False
        self.x_embedder = PixelEmbedder(channels + shape.dct_freqs**2 + pixel_extra, shape.field_width)
        self.final_layer = FinalLayer(shape.field_width, channels)
        self.register_buffer("dct", dct_features(p, shape.dct_freqs, p + 2 * overlap), persistent=False)
        if overlap:
            self.register_buffer("blend", blend_weights(p, overlap), persistent=False)
        self._rope: dict = {}
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The release's init: xavier stem, N(0, 0.02) label table and time MLP, zero final layer.
        (Widened input columns are zero only when a release is loaded into them: see ``weights.py``.)"""
        nn.init.xavier_uniform_(self.s_embedder.proj.weight)
        nn.init.zeros_(self.s_embedder.proj.bias)
        nn.init.normal_(self.y_embedder.embedding_table.weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)

    def rope(self, grid_h: int, grid_w: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        key = (grid_h, grid_w, str(device))
        if key not in self._rope:
            self._rope[key] = rope_2d(self.shape.hidden // self.shape.heads, grid_h, grid_w, device)
        return self._rope[key]

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, L, C, P*P): patches row-major, pixels channel-major (``F.unfold``'s order)."""
        b, c, h, w = x.shape
        p = self.shape.patch
        x = x.view(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(b, (h // p) * (w // p), c, p * p)

    def unpatchify(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """(B, L, P*P, C) -> (B, C, H, W)."""
        b, _, _, c = x.shape
        p = self.shape.patch
        x = x.view(b, h // p, w // p, p, p, c).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(b, c, h, w)

    def field_inputs(self, x: torch.Tensor, pixel_extra: torch.Tensor | None, pads: tuple[int, ...] = ()) -> torch.Tensor:
        """(B*L, K*K, h): ``x_embedder`` of [pixel values, DCT, ``pixel_extra``] for each pixel of each
        patch's window (K = P, or P + 2m with an ``overlap`` of m pixels, zero past the image).
        The linear map is split by input columns (same function, same weights): the pixel part runs
        once per pixel on the maps, the DCT part once per window position."""
        weight, bias = self.x_embedder.embedder[0].weight, self.x_embedder.embedder[0].bias
        c, dct = self.channels, self.shape.dct_freqs**2
        emb = pointwise(x, weight[:, :c])
        if pixel_extra is not None:  # projected first, then resized: the two commute, and h < E channels move
            extra = pointwise(pixel_extra.to(x.dtype), weight[:, c + dct:])
            emb = emb + (extra if extra.shape[-2:] == x.shape[-2:] else
                         F.interpolate(extra, size=x.shape[-2:], mode="bilinear", align_corners=False))
        if pads:
            emb = F.pad(emb, pads, mode="replicate")
        p, m, size = self.shape.patch, self.overlap, self.shape.patch + 2 * self.overlap
        emb = F.pad(emb, (m, m, m, m)) if m else emb
        windows = emb.unfold(2, size, p).unfold(3, size, p)  # (B, h, gh, gw, K, K), a view
        windows = windows.permute(0, 2, 3, 4, 5, 1).reshape(-1, size * size, emb.shape[1])  # one copy
        return windows.add_(F.linear(self.dct.to(x.dtype), weight[:, c:c + dct], bias))

    def field_outputs(self, out: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """(B, L, K*K, C) -> (B, C, H, W); overlapping windows are blended by :func:`blend_weights`."""
        b, _, _, c = out.shape
        p, m = self.shape.patch, self.overlap
        if not m:
            return self.unpatchify(out, h, w)
        weights = self.blend.to(out.dtype)
        cols = (out * weights[:, None]).permute(0, 3, 2, 1).reshape(b, c * weights.numel(), -1)
        fold = dict(output_size=(h, w), kernel_size=p + 2 * m, stride=p, padding=m)
        norm = F.fold(weights[None, :, None].expand(1, -1, cols.shape[-1]), **fold)
        return F.fold(cols, **fold) / norm  # norm < 1 only along the image border (one window per axis there)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """timm's convention: while training, the transformer and field blocks recompute their activations
        in the backward pass (``torch.utils.checkpoint``, non-reentrant) instead of keeping them."""
        self.grad_checkpointing = enable

    def _block(self, block: nn.Module, *args):
        if self.grad_checkpointing and self.training and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(block, *args, use_reentrant=False)
        return block(*args)

    def field(self, px: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """The neural-field blocks and the final layer: (M, K*K, h) pixels x (M, H) tokens -> (M, K*K, C).
        Each patch's field is independent, so at inference on a CPU it runs over ``FIELD_CHUNK_ROWS``
        pixels' worth of patches at a time, whose activations stay in cache (the same function,
        about 2x faster than one pass over every patch); training and accelerators take one pass."""
        rows = px.shape[0] * px.shape[1]
        step = px.shape[0]
        if not torch.is_grad_enabled() and px.device.type == "cpu" and rows > FIELD_CHUNK_ROWS:
            step = max(1, FIELD_CHUNK_ROWS // px.shape[1])
        outs = []
        for i in range(0, px.shape[0], step):
            h, c = px[i:i + step], s[i:i + step]
            for block in self.blocks[self.shape.transformer_blocks:]:
                h = self._block(block, h, c)
            outs.append(self.final_layer(h))
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor, *, stem_extra=None, token_add=None,
                pixel_extra=None, tap_block: int = 0, grid_offset: tuple[int, int] | None = None):
        """``stem_extra`` (B, L, E) widens the stem's input; ``pixel_extra`` (B, E', H', W') each pixel's
        input to the neural field (bilinearly resized to H x W when it is coarser); ``token_add`` (B, L, H) is added to the stem's tokens. With
        ``tap_block`` k > 0, also returns the tokens after transformer block k (REPA's alignment point)."""
        b, _, h, w = x.shape
        p = self.shape.patch
        pads = ()
        if grid_offset is not None:
            if stem_extra is not None:
                raise ValueError("a shifted patch grid takes no stem_extra (the image patches of the unshifted grid)")
            pads = (grid_offset[1], p - grid_offset[1], grid_offset[0], p - grid_offset[0])
        x_in = F.pad(x, pads, mode="replicate") if pads else x
        stem_in = self.patchify(x_in).flatten(2)  # (B, L, C * P*P)
        if stem_extra is not None:
            stem_in = torch.cat([stem_in, stem_extra], dim=-1)
        s = self.s_embedder(stem_in)
        if token_add is not None:
            s = s + token_add
        t_emb = self.t_embedder(t)[:, None]
        c = F.silu(t_emb + self.y_embedder(y)[:, None])
        hp, wp = x_in.shape[-2:]
        rope = self.rope(hp // p, wp // p, x.device)
        tapped = None
        for i in range(self.shape.transformer_blocks):
            s = self._block(self.blocks[i], s, c, rope)
            if i + 1 == tap_block:
                tapped = s
        s = F.silu(t_emb + s)
        px = self.field_inputs(x, pixel_extra, pads)  # (B*L, K*K, h)
        out = self.field_outputs(self.field(px, s.reshape(px.shape[0], -1)).view(b, -1, px.shape[1], self.channels), hp, wp)
        if pads:
            out = out[..., pads[2]:pads[2] + h, pads[0]:pads[0] + w]
        return (out, tapped) if tap_block else out
