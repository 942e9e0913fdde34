"""FlowSeg as a :class:`SegmentationMethod`: training loss and sampling-based prediction."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...encodings import ENCODINGS, centroids, nearest_centroid
from ..base import ImageNorm, SegmentationMethod, pad_to_multiple
from .model import PixelFieldNet
from .objective import ObjectiveOptions, reshaped_target, sample_time
from .sampler import SAMPLERS, sample


@dataclass(frozen=True)
class FlowSegOptions(ObjectiveOptions):
    """Objective options (see objective.py) plus encoding, network and sampling defaults."""

    encoding: str = "kronecker"
    encoding_seed: int = 0
    encoder: str = "resnet18"  # a timm model name
    pretrained_file: str = ""
    patch_size: int = 8
    width: int = 128
    depth: int = 2
    heads: int = 4
    hidden: int = 32
    dct_freqs: int = 8
    pixel_features: int = 16
    steps: int = 10
    sampler: str = "euler"
    decode_max_mb: int = 64

    def check(self) -> None:
        super().check()
        if self.encoding not in ENCODINGS:
            raise ValueError(f"model.encoding = {self.encoding!r}; known encodings: {', '.join(ENCODINGS)}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"model.sampler = {self.sampler!r}; known samplers: {', '.join(SAMPLERS)}")
        if self.steps < 1:
            raise ValueError(f"model.steps must be >= 1, got {self.steps}")
        if self.patch_size < 1 or self.width % self.heads:
            raise ValueError("model.patch_size must be >= 1 and model.width divisible by model.heads")


class FlowSeg(SegmentationMethod):
    """Flow matching from x_0 (noise or the image) to the centroid map x_1 of the labels."""

    def __init__(self, options: FlowSegOptions, num_classes: int, ignore_index: int = 255):
        super().__init__()
        self.options = options
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.register_buffer("centroids", centroids(options.encoding, num_classes, options.encoding_seed), persistent=False)
        self.norm = ImageNorm()
        self.net = PixelFieldNet(
            self.centroids.shape[1], encoder=options.encoder, pretrained_file=options.pretrained_file,
            patch_size=options.patch_size, width=options.width, depth=options.depth, heads=options.heads,
            hidden=options.hidden, dct_freqs=options.dct_freqs, pixel_features=options.pixel_features,
        )
        self.size_divisor = max(32, options.patch_size)
        self.last_nfe = 0

    def centroid_map(self, labels: torch.Tensor) -> torch.Tensor:
        """x_1: each pixel's class centroid, (B, D, H, W); ignore pixels at the origin."""
        valid = labels != self.ignore_index
        x1 = self.centroids[labels.clamp(0, self.num_classes - 1)] * valid[..., None]
        return x1.permute(0, 3, 1, 2)

    def source(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x_0: Gaussian noise, or the image in [-1, 1] with channel d taken from RGB channel d mod 3."""
        b, _, h, w = images.shape
        d = self.centroids.shape[1]
        if self.options.source == "noise":
            return torch.randn(b, d, h, w, generator=generator, device=images.device)
        return (images * 2 - 1)[:, torch.arange(d, device=images.device) % 3]

    def velocity(self, x_t: torch.Tensor, t: torch.Tensor, context) -> torch.Tensor:
        out = self.net(x_t, t, context)
        if self.options.prediction == "v":
            return out
        return (out - x_t) / (1 - t).clamp(min=0.05).view(-1, 1, 1, 1)  # x-prediction -> velocity

    def training_loss(self, images, labels):
        opts = self.options
        context = self.net.image_context(self.norm(images))
        x1 = self.centroid_map(labels)
        x0 = self.source(images)
        t = sample_time(images.shape[0], opts, None, images.device)
        tt = t.view(-1, 1, 1, 1)
        x_t = (1 - tt) * x0 + tt * x1
        out = self.net(x_t, t, context)
        if opts.prediction == "v":
            x1_hat = x_t + (1 - tt) * out
        else:
            x1_hat = out
        target_v = reshaped_target(x1 - x0, x1_hat.detach(), self.centroids, labels, t, opts, self.ignore_index)
        err = (out - target_v) if opts.prediction == "v" else (out - (x_t + (1 - tt) * target_v))
        sq = err.pow(2).sum(1)
        mask = (labels != self.ignore_index).float() if opts.ignore_masking else torch.ones_like(sq)
        loss = (sq * mask).sum() / mask.sum().clamp(min=1)
        return loss, {"loss": loss.item()}

    @torch.no_grad()
    def predict(self, images, steps: int | None = None, sampler: str | None = None, seed: int = 0):
        steps = self.options.steps if steps is None else int(steps)
        sampler = sampler or self.options.sampler
        h, w = images.shape[-2:]
        padded = pad_to_multiple(images, self.size_divisor)
        context = self.net.image_context(self.norm(padded))
        generator = torch.Generator(device=images.device).manual_seed(seed)
        x0 = self.source(padded, generator)
        x1, self.last_nfe = sample(sampler, lambda x, t: self.velocity(x, t, context), x0, steps)
        return nearest_centroid(x1[..., :h, :w], self.centroids, self.options.decode_max_mb * 2**20)


def build_flowseg(options: FlowSegOptions, num_classes: int, ignore_index: int) -> FlowSeg:
    return FlowSeg(options, num_classes, ignore_index)
