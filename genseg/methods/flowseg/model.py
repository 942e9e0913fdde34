"""FlowSeg's velocity network: PixNerd's denoiser (``pixnerd.py``) and how the image enters it.

How FlowSeg feeds the image is not published (pixnerd.md, "What FlowSeg leaves open"); each
reading is a ``condition`` entry, combinable, and measured in ``ablations/flowseg-conditioning.yaml``:

- ``stem``: the image's patches (in [-1, 1]) concatenated to the noisy patches at the token
  stem (``s_embedder`` widened);
- ``encoder``: a timm encoder's feature maps, resized to the patch grid, concatenated and
  projected (1x1 conv) to the hidden size, added to the stem's tokens;
- ``pixels``: per-pixel image features for the neural field (:class:`PixelFeatures`),
  concatenated to each pixel's input of ``x_embedder`` (widened). Our addition: the neural
  field otherwise sees the image only through its patch's token.

Started from a PixNerd release (:meth:`FlowSegNet.load_release`), the widened columns and the
token projection start at zero, so the pretrained model is unchanged at step 0; from scratch
every layer has its usual initialisation.

The fourth reading, x_0 = the image (a flow from the image to its mask), is ``source: image``
in the objective options and combines with any of these.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..base import timm_features
from .pixnerd import PixNerd, PixNerdShape
from .weights import load_pixnerd

CONDITIONS = ("stem", "encoder", "pixels")


class PixelFeatures(nn.Module):
    """Encoder maps -> ``channels`` per-pixel features: each map projected (1x1 conv) and resized
    to the finest map's grid, summed, one depthwise-separable 3x3 conv-BN-ReLU (as DeepLabV3+'s
    decoder). Returned at that grid (PixNerd projects, then resizes to the flow's resolution),
    or at ``size`` when the flow is coarser."""

    def __init__(self, in_channels: list[int], channels: int):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.fuse = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
                                  nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU())

    def forward(self, feats: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        grid = feats[0].shape[-2:] if feats[0].shape[-2] <= size[0] else size
        return self.fuse(project_resize_sum(feats, [lat.weight for lat in self.lateral], [lat.bias for lat in self.lateral], grid))


def resize(x: torch.Tensor, size) -> torch.Tensor:
    """Bilinear resize (align_corners False), skipped when the size already matches. An upsampling
    is two matrix products, R_y x R_x^T (:func:`bilinear_matrix`): the same function as
    ``F.interpolate``, up to ~4x faster on CPU for the small maps it enlarges here."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if x.shape[-2] <= size[0] and x.shape[-1] <= size[1]:
        ry, rx = (bilinear_matrix(n, m, x.device, x.dtype) for n, m in zip(x.shape[-2:], size))
        return torch.matmul(ry, torch.matmul(x, rx.T))
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


_MATRICES: dict = {}


def bilinear_matrix(n_in: int, n_out: int, device, dtype) -> torch.Tensor:
    """(n_out, n_in): ``F.interpolate``'s bilinear weights along one axis (align_corners False):
    output i reads s = (i + 1/2) n_in / n_out - 1/2, clamped at 0, from floor(s) and the next
    index (the last one clamped) with weights 1 - frac(s), frac(s)."""
    key = (n_in, n_out, str(device), dtype)
    if key not in _MATRICES:
        src = ((torch.arange(n_out, dtype=torch.float64) + 0.5) * (n_in / n_out) - 0.5).clamp(min=0)
        i0 = src.floor().long().clamp(max=n_in - 1)
        rows, frac = torch.arange(n_out), (src - i0).clamp(0, 1)
        m = torch.zeros(n_out, n_in, dtype=torch.float64)
        m.index_put_((rows, i0), 1 - frac, accumulate=True)
        m.index_put_((rows, (i0 + 1).clamp(max=n_in - 1)), frac, accumulate=True)
        _MATRICES[key] = m.to(device=device, dtype=dtype)
    return _MATRICES[key]


def project_resize_sum(feats: list[torch.Tensor], weights: list[torch.Tensor], biases: list[torch.Tensor | None],
                       size) -> torch.Tensor:
    """sum_l resize(W_l f_l + b_l, size) for 1x1 convolutions (O, C_l, 1, 1). Bilinear resizing is
    linear and preserves constants, so it commutes with the projection: a map finer than ``size``
    is resized first, a coarser one projected first (each at the fewer pixels), and maps of equal
    size are summed before one resize: the same function, less work."""
    groups: dict[tuple[int, int], torch.Tensor] = {}
    for f, w, b in zip(feats, weights, biases):
        if f.shape[-2] * f.shape[-1] > size[0] * size[1]:
            f = resize(f, size)
        y = F.conv2d(f, w, b)
        key = tuple(f.shape[-2:])
        groups[key] = groups[key] + y if key in groups else y
    return sum(resize(y, size) for y in groups.values())


class FlowSegNet(nn.Module):
    """v_theta(x_t, t | image) on PixNerd: (B, D, H, W) x (B,) x context -> (B, D, H, W)."""

    def __init__(self, channels: int, shape: PixNerdShape, *, condition: tuple[str, ...] = ("encoder", "pixels"),
                 encoder: str = "resnet18", pretrained_file: str = "", output_stride: int = 32, pixel_features: int = 32,
                 task_label: int = 1000, overlap: int = 0):
        super().__init__()
        self.condition = tuple(condition)
        self.patch_size = shape.patch
        self.task_label = task_label
        p = shape.patch
        pixel_extra = pixel_features if "pixels" in condition else 0
        self.denoiser = PixNerd(shape, channels, stem_extra=3 * p * p if "stem" in condition else 0, pixel_extra=pixel_extra,
                                overlap=overlap)
        if "encoder" in condition or "pixels" in condition:
            dilated = {"output_stride": output_stride} if output_stride != 32 else {}
            self.encoder = timm_features(encoder, pretrained_file, **dilated)
            levels = self.encoder.feature_info.channels()
            if "encoder" in condition:
                self.token_proj = nn.Conv2d(sum(levels), shape.hidden, 1)
            if "pixels" in condition:
                self.pixel_features = PixelFeatures(levels, pixel_features)

    def load_release(self, path: str) -> dict[str, list[str]]:
        """A converted PixNerd release into the denoiser (``weights.load_pixnerd``: the widened input
        columns zero-filled); the encoder's token projection zeroed too, so at step 0 the network
        computes the release's function whatever the conditioning. Returns the loader's report."""
        report = load_pixnerd(self.denoiser, path)
        if hasattr(self, "token_proj"):
            nn.init.zeros_(self.token_proj.weight)
            nn.init.zeros_(self.token_proj.bias)
        return report

    def image_context(self, image: torch.Tensor, normalized: torch.Tensor) -> dict[str, torch.Tensor]:
        """Everything that depends on the image only (computed once, reused at every sampling step).
        ``image`` in [0, 1] at the flow's resolution; ``normalized``: the full-resolution image with
        the encoder's mean and std."""
        h, w = image.shape[-2:]
        p = self.patch_size
        context: dict[str, torch.Tensor] = {}
        if "stem" in self.condition:
            context["stem_extra"] = self.denoiser.patchify(image * 2 - 1).flatten(2)
        if hasattr(self, "encoder"):
            feats = self.encoder(normalized)
            if "encoder" in self.condition:  # token_proj over the maps resized and concatenated, computed per map
                weights = self.token_proj.weight.split([f.shape[1] for f in feats], dim=1)
                biases = [self.token_proj.bias] + [None] * (len(feats) - 1)
                context["token_add"] = project_resize_sum(feats, weights, biases, (h // p, w // p)).flatten(2).transpose(1, 2)
            if "pixels" in self.condition:
                context["pixel_extra"] = self.pixel_features(feats, (h, w))
        return context

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, context: dict[str, torch.Tensor], tap_block: int = 0,
                grid_offset: tuple[int, int] | None = None):
        """The denoiser with the segmentation task's label row as its class condition. On a shifted
        grid the encoder tokens are those of the shifted patches (:func:`shift_tokens`)."""
        y = torch.full((x_t.shape[0],), self.task_label, dtype=torch.long, device=x_t.device)
        if grid_offset is not None and "token_add" in context:
            grid = (x_t.shape[-2] // self.patch_size, x_t.shape[-1] // self.patch_size)
            context = {**context, "token_add": shift_tokens(context["token_add"], grid, grid_offset, self.patch_size)}
        return self.denoiser(x_t, t, y, tap_block=tap_block, grid_offset=grid_offset, **context)


def shift_tokens(tokens: torch.Tensor, grid: tuple[int, int], offset: tuple[int, int], patch: int) -> torch.Tensor:
    """(B, h*w, C) tokens of the patch grid from the corner -> (B, (h+1)*(w+1), C) tokens of the grid
    laid from ``offset`` (oy, ox) (PixNerd's ``grid_offset``: one more patch per axis): the area
    average of the piecewise-constant token map over each shifted patch, i.e. the 2x2 neighbours
    weighted (1 - o/P, o/P) per axis, the map replicate-padded by one patch."""
    b, _, c = tokens.shape
    x = F.pad(tokens.transpose(1, 2).reshape(b, c, *grid), (1, 1, 1, 1), mode="replicate")
    (oy, ox) = (o / patch for o in offset)
    x = oy * x[..., :-1, :] + (1 - oy) * x[..., 1:, :]
    x = ox * x[..., :, :-1] + (1 - ox) * x[..., :, 1:]
    return x.flatten(2).transpose(1, 2)
