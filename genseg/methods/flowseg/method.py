"""FlowSeg as a :class:`SegmentationMethod`: training loss and sampling-based prediction."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...encodings import ENCODINGS, centroids, nearest_centroid
from ..base import ImageNorm, SegmentationMethod, pad_to_multiple
from ..spec import MethodSpec
from .model import CONDITIONS, FlowSegNet
from .objective import ObjectiveOptions, reshaped_target, sample_time
from .pixnerd import PRESETS, PixNerdShape
from .repa import RepaTarget, repa_loss
from .sampler import SAMPLERS, sample


@dataclass(frozen=True)
class FlowSegOptions(ObjectiveOptions):
    """Objective options (see objective.py) plus encoding, network, conditioning, REPA and sampling.

    ``network`` names a PixNerd preset (``pixnerd-cpu``, ``pixnerd-l16``, ``pixnerd-xl16``); a
    non-zero shape key overrides the preset's value. ``pixnerd_file``: a converted release
    (``genseg convert-pixnerd``) to start from. REPA (``repa_weight`` > 0): the tokens after
    transformer block ``repa_block`` are aligned, through an MLP projector, with the patch
    features of a frozen timm encoder ``repa_encoder`` read from the local ``repa_file``.
    ``temperature`` T: sampling from noise starts at x_0 = T eps, eps ~ N(0, I) (1: the flow's own
    source; 0: its mean, the origin, a deterministic prediction); training is unchanged."""

    encoding: str = "kronecker"
    encoding_seed: int = 0
    network: str = "pixnerd-cpu"
    patch_size: int = 0
    hidden_size: int = 0
    num_heads: int = 0
    transformer_blocks: int = 0
    field_blocks: int = 0
    field_width: int = 0
    pixnerd_file: str = ""
    task_label: int = 1000  # the label-table row used as the segmentation task embedding (1000: the null row)
    condition: tuple[str, ...] = ("encoder", "pixels")
    encoder: str = "resnet18"  # a timm model name ("encoder" / "pixels" conditioning)
    output_stride: int = 32  # the encoder's (16: dilated last stage, as DeepLabV3+'s)
    pretrained_file: str = ""
    pixel_features: int = 32
    field_overlap: int = 0  # the neural field also runs this many pixels into each neighbour, blended (our addition: softer seams)
    grid_shift: bool = False  # the patch grid moves by half a patch on every other step and training batch (our addition)
    flow_stride: int = 1  # the flow runs at 1/stride of the image resolution, upsampled (bilinear) to it
    repa_weight: float = 0.0
    repa_block: int = 8
    repa_encoder: str = ""
    repa_file: str = ""
    steps: int = 10
    sampler: str = "euler"
    temperature: float = 1.0
    decode_max_mb: int = 64

    def shape(self) -> PixNerdShape:
        """The preset with the non-zero overrides applied."""
        overrides = {"patch": self.patch_size, "hidden": self.hidden_size, "heads": self.num_heads,
                     "transformer_blocks": self.transformer_blocks, "field_blocks": self.field_blocks,
                     "field_width": self.field_width}
        return dataclasses.replace(PRESETS[self.network], **{k: v for k, v in overrides.items() if v})

    def check(self) -> None:
        super().check()
        if self.encoding not in ENCODINGS:
            raise ValueError(f"model.encoding = {self.encoding!r}; known encodings: {', '.join(ENCODINGS)}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"model.sampler = {self.sampler!r}; known samplers: {', '.join(SAMPLERS)}")
        if self.steps < 1:
            raise ValueError(f"model.steps must be >= 1, got {self.steps}")
        if self.temperature < 0:
            raise ValueError(f"model.temperature must be >= 0 (x_0 = temperature * noise), got {self.temperature}")
        if self.output_stride not in (8, 16, 32):
            raise ValueError(f"model.output_stride must be 8, 16 or 32, got {self.output_stride}")
        if self.flow_stride < 1:
            raise ValueError(f"model.flow_stride must be >= 1, got {self.flow_stride}")
        if self.network not in PRESETS:
            raise ValueError(f"model.network = {self.network!r}; known PixNerd presets: {', '.join(PRESETS)}")
        unknown = [c for c in self.condition if c not in CONDITIONS]
        if unknown or len(set(self.condition)) != len(self.condition):
            raise ValueError(f"model.condition = {list(self.condition)!r}; each of {', '.join(CONDITIONS)} at most once")
        if self.grid_shift and "stem" in self.condition:
            raise ValueError("model.grid_shift does not combine with model.condition 'stem' (image patches of the unshifted grid)")
        shape = self.shape()
        if not 0 <= self.field_overlap <= shape.patch // 2:
            raise ValueError(f"model.field_overlap must be in 0..{shape.patch // 2} (half the patch), got {self.field_overlap}")
        if min(shape.patch, shape.hidden, shape.heads, shape.field_width) < 1 or shape.hidden % shape.heads or (shape.hidden // shape.heads) % 4:
            raise ValueError(f"model.hidden_size {shape.hidden} must split into model.num_heads {shape.heads} heads "
                             "whose width is a multiple of 4 (2-D RoPE)")
        if not 0 <= self.task_label < shape.label_rows:
            raise ValueError(f"model.task_label must be in 0..{shape.label_rows - 1}, got {self.task_label}")
        if self.repa_weight < 0:
            raise ValueError(f"model.repa_weight must be >= 0, got {self.repa_weight}")
        if self.repa_weight > 0:
            if not self.repa_encoder or not self.repa_file:
                raise ValueError("model.repa_weight > 0 needs model.repa_encoder (a timm name) and model.repa_file (its local weights)")
            if not 1 <= self.repa_block <= shape.transformer_blocks:
                raise ValueError(f"model.repa_block must be in 1..{shape.transformer_blocks} (transformer blocks), got {self.repa_block}")


class FlowSeg(SegmentationMethod):
    """Flow matching from x_0 (noise or the image) to the centroid map x_1 of the labels."""

    def __init__(self, options: FlowSegOptions, num_classes: int, ignore_index: int = 255):
        super().__init__()
        self.options = options
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.register_buffer("centroids", centroids(options.encoding, num_classes, options.encoding_seed), persistent=False)
        self.norm = ImageNorm()
        shape = options.shape()
        self.net = FlowSegNet(
            self.centroids.shape[1], shape, condition=options.condition, encoder=options.encoder,
            pretrained_file=options.pretrained_file, output_stride=options.output_stride,
            pixel_features=options.pixel_features, task_label=options.task_label,
            overlap=options.field_overlap,
        )
        self.init_report: dict[str, list[str]] = {}
        if options.pixnerd_file:
            self.init_report = self.net.load_release(options.pixnerd_file)
            print(f"loaded {options.pixnerd_file}: " + "; ".join(f"{k}: {', '.join(v) or '-'}" for k, v in self.init_report.items()),
                  file=sys.stderr)
        self.repa = RepaTarget(options.repa_encoder, options.repa_file) if options.repa_weight > 0 else None
        if self.repa is not None:
            h = shape.hidden
            self.repa_projector = nn.Sequential(nn.Linear(h, h), nn.SiLU(), nn.Linear(h, h), nn.SiLU(), nn.Linear(h, self.repa.dim))
        self.stride = options.flow_stride
        self.patch_size = shape.patch * self.stride  # the patch grid on the image (see metrics.GridArtifacts)
        self.size_divisor = max(32, self.patch_size)
        self.last_nfe = 0

    def centroid_map(self, labels: torch.Tensor) -> torch.Tensor:
        """x_1: each pixel's class centroid, (B, D, H, W); ignore pixels at the origin."""
        valid = labels != self.ignore_index
        x1 = self.centroids[labels.clamp(0, self.num_classes - 1)] * valid[..., None]
        return x1.permute(0, 3, 1, 2)

    def source(self, images: torch.Tensor, generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
        """x_0 at the flow resolution: Gaussian noise times ``temperature`` (0: zeros), or the image
        in [-1, 1] with channel d taken from RGB channel d mod 3."""
        images = self.to_flow(images)
        b, _, h, w = images.shape
        d = self.centroids.shape[1]
        if self.options.source == "noise":
            if not temperature:
                return images.new_zeros(b, d, h, w)
            return torch.randn(b, d, h, w, generator=generator, device=images.device) * temperature
        return (images * 2 - 1)[:, torch.arange(d, device=images.device) % 3]

    def to_flow(self, x: torch.Tensor) -> torch.Tensor:
        """Image-resolution maps -> the flow's resolution (area average over stride x stride)."""
        return F.avg_pool2d(x, self.stride) if self.stride > 1 else x

    def to_image(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Flow-resolution maps -> the image's (bilinear)."""
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False) if x.shape[-2:] != size else x

    def context(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.net.image_context(self.to_flow(images), self.norm(images))

    def grid_offset(self, shifted: bool) -> tuple[int, int] | None:
        """The patch grid's offset: half a patch down and right when ``shifted`` (``grid_shift``)."""
        half = self.net.patch_size // 2
        return (half, half) if shifted else None

    def velocity(self, x_t: torch.Tensor, t: torch.Tensor, context, shifted: bool = False) -> torch.Tensor:
        out = self.net(x_t, t, context, grid_offset=self.grid_offset(shifted))
        if self.options.prediction == "v":
            return out
        return (out - x_t) / (1 - t).clamp(min=0.05).view(-1, 1, 1, 1)  # x-prediction -> velocity

    def training_loss(self, images, labels):
        """Flow at the flow resolution, loss at the image's: x_t, x_0 and the network's output are
        upsampled (bilinear) and compared with the full-resolution targets (objective.py)."""
        opts = self.options
        size = images.shape[-2:]
        context = self.context(images)
        x1 = self.centroid_map(labels)
        x0 = self.source(images)
        t = sample_time(images.shape[0], opts, None, images.device)
        tt = t.view(-1, 1, 1, 1)
        x_t = (1 - tt) * x0 + tt * self.to_flow(x1)
        tap = opts.repa_block if self.repa is not None else 0
        shifted = opts.grid_shift and bool(torch.randint(2, (), device=images.device))
        result = self.net(x_t, t, context, tap_block=tap, grid_offset=self.grid_offset(shifted))
        out, tapped = result if tap else (result, None)
        out, x_t, x0 = self.to_image(out, size), self.to_image(x_t, size), self.to_image(x0, size)
        x1_hat = x_t + (1 - tt) * out if opts.prediction == "v" else out
        target_v = reshaped_target(x1 - x0, x1_hat.detach(), self.centroids, labels, t, opts, self.ignore_index)
        err = (out - target_v) if opts.prediction == "v" else (out - (x_t + (1 - tt) * target_v))
        sq = err.pow(2).sum(1)
        mask = (labels != self.ignore_index).float() if opts.ignore_masking else torch.ones_like(sq)
        loss = (sq * mask).sum() / mask.sum().clamp(min=1)
        logs = {"flow_loss": loss.item()}
        if tapped is not None:
            grid = (size[0] // self.patch_size, size[1] // self.patch_size)
            align = repa_loss(self.repa_projector(tapped), self.repa(self.norm(images), grid))
            loss = loss + opts.repa_weight * align
            logs["repa_loss"] = align.item()
        logs["loss"] = loss.item()
        return loss, logs

    @torch.no_grad()
    def check_predict_options(self, options: dict) -> None:
        """Also: ``steps`` an integer >= 1, ``sampler`` one of :data:`SAMPLERS`, ``seed`` an integer,
        ``temperature`` a number >= 0."""
        from ...config import ConfigError

        super().check_predict_options(options)
        steps, sampler, seed = options.get("steps", 1), options.get("sampler", SAMPLERS[0]), options.get("seed", 0)
        temperature = options.get("temperature", 1.0)
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or temperature < 0:
            raise ConfigError(f"eval.predict.temperature must be a number >= 0 (x_0 = temperature * noise), got {temperature!r}")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ConfigError(f"eval.predict.steps must be an integer >= 1 (Euler/Heun steps), got {steps!r}")
        if sampler not in SAMPLERS:
            raise ConfigError(f"eval.predict.sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"eval.predict.seed must be an integer, got {seed!r}")

    def predict(self, images, steps: int | None = None, sampler: str | None = None, seed: int = 0,
                temperature: float | None = None):
        """Class ids: ``steps`` of ``sampler`` from x_0 (``source``; from noise, ``temperature``
        times a draw seeded by ``seed``), decoded by the nearest centroid. None: the model's options."""
        steps = self.options.steps if steps is None else int(steps)
        sampler = sampler or self.options.sampler
        temperature = self.options.temperature if temperature is None else float(temperature)
        h, w = images.shape[-2:]
        padded = pad_to_multiple(images, self.size_divisor)
        context = self.context(padded)
        generator = torch.Generator(device=images.device).manual_seed(seed)
        x0 = self.source(padded, generator, temperature)
        calls = iter(range(1 << 30))  # with grid_shift, every other network evaluation runs on the shifted grid
        x1, self.last_nfe = sample(sampler, lambda x, t: self.velocity(x, t, context, self.options.grid_shift and next(calls) % 2 == 1),
                                   x0, steps)
        x1 = self.to_image(x1, padded.shape[-2:])
        return nearest_centroid(x1[..., :h, :w], self.centroids, self.options.decode_max_mb * 2**20)


def build_flowseg(options: FlowSegOptions, num_classes: int, ignore_index: int) -> FlowSeg:
    return FlowSeg(options, num_classes, ignore_index)


def flowseg_objective(options: dict) -> str:
    """``reshaped`` (the reshaped objective: ``reshape`` with weight ``lam`` > 0) or ``vanilla``."""
    return "reshaped" if options.get("reshape") and options.get("lam", 0) > 0 else "vanilla"


def flowseg_uncertainty(options: dict) -> str:
    """From noise, each seed draws another x_0 (at temperature 1, :data:`FLOWSEG_SPEC`'s
    ``sample_options``, whatever the prediction's temperature) and so another label map:
    ``samples``; from the image (``source: image``) the flow is deterministic: none."""
    return "samples" if options.get("source", "noise") == "noise" else ""


# Sampling steps are swept at evaluation (evaluate.sweeps); its runs feed FlowSeg's own tables.
# The uncertainty step draws x_0 from the flow's own source (temperature 1).
FLOWSEG_SPEC = MethodSpec(FlowSegOptions, build_flowseg, "FlowSeg", sweeps={"steps": (1, 2, 5, 10, 20)},
                     tables=("flowseg_steps", "flowseg_convergence"), objective=flowseg_objective,
                     uncertainty=flowseg_uncertainty, sample_options={"temperature": 1.0})
