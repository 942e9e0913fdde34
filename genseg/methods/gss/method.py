"""GSS behind the one interface, in three methods that share one maskige codec.

- ``vqvae``: posterior learning (stage 1) on maskiges of the training labels. Each image
  is drawn with the FF palette in a random class order, or (``random_colour_prob``) in
  random colours, so the posterior learns colour images in general, not one palette.
  Evaluation is the FF reconstruction upper bound.
- ``maskige``: the reconstruction upper bound of one maskige variant (GSS Tables 1, 2):
  labels -> maskige -> frozen posterior encode/decode -> inverse -> classes. FF and FF-R
  have nothing to train (``optim.iterations: 0``); FT / FT-W train the inverse and TF the
  palette on reconstructions, the posterior frozen.
- ``gss``: the prior (stage 2) predicts the posterior's tokens from the image;
  ``stage: inverse`` then trains the FT / FT-W inverse on the prior's decoded maskiges with
  the prior (from ``init_file``) frozen.

``vqvae`` and ``maskige`` are oracle evaluations: their ``predict`` reads the labels
(``uses_labels``). The frozen posterior is never saved with a run; it is read from
``posterior_file`` (a ``vqvae`` run's ``model.safetensors`` or a ``genseg convert-dvae`` file).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ...engine.checkpoint import load_weights
from ..base import ImageNorm, SegmentationMethod, pad_to_multiple
from ..spec import MethodSpec
from .inverse import INVERSES, LearnedPalette, build_inverse, colour_logits
from .maskige import PALETTES, from_vq_range, palette, to_maskige, to_vq_range
from .prior import Prior
from .vqvae import VQVAE

POSTERIORS = ("vqvae", "dalle")
FROZEN_PREFIX = "codec.posterior."


@dataclass(frozen=True)
class PosteriorOptions:
    """The small VQ-VAE's shape (or ``posterior: dalle``) and the maskige palette."""

    codes: int = 512
    downsample: int = 4
    vq_width: int = 64
    code_dim: int = 32
    palette: str = "ff"
    palette_seed: int = 0
    maskige_scale: int = 1  # labels resized to scale x the input before encoding; official: 2
    maskige_resize: str = "nearest"  # or "onehot-bilinear": one-hot, bilinear, argmax (the official code)

    def check(self) -> None:
        if self.palette not in PALETTES:
            raise ValueError(f"model.palette = {self.palette!r}; known palettes: {', '.join(PALETTES)}")
        if self.downsample < 2 or self.downsample & (self.downsample - 1):
            raise ValueError(f"model.downsample must be a power of two >= 2, got {self.downsample}")
        if self.maskige_scale not in (1, 2):
            raise ValueError(f"model.maskige_scale must be 1 or 2, got {self.maskige_scale}")
        if self.maskige_resize not in ("nearest", "onehot-bilinear"):
            raise ValueError(f"model.maskige_resize must be 'nearest' or 'onehot-bilinear', got {self.maskige_resize!r}")


@dataclass(frozen=True)
class VQVAEOptions(PosteriorOptions):
    commitment: float = 0.25
    random_colour_prob: float = 0.5
    recon_loss: str = "l1"  # or "mse"; L1 keeps boundaries sharper (measured: 0.79 vs 0.70 mIoU bound)

    def check(self) -> None:
        super().check()
        if self.recon_loss not in ("l1", "mse"):
            raise ValueError(f"model.recon_loss must be 'l1' or 'mse', got {self.recon_loss!r}")


@dataclass(frozen=True)
class MaskigeOptions(PosteriorOptions):
    posterior: str = "vqvae"
    posterior_file: str = ""
    inverse: str = "ff"
    inverse_width: int = 64  # FT: hidden channels; FT-W: block dim (official 128)
    tau: float = 0.01  # temperature of the colour-distance logits (FF, TF)

    def check(self) -> None:
        super().check()
        if self.posterior not in POSTERIORS:
            raise ValueError(f"model.posterior = {self.posterior!r}; known posteriors: {', '.join(POSTERIORS)}")
        if not self.posterior_file:
            raise ValueError("model.posterior_file is required: a `vqvae` run's model.safetensors or a `genseg convert-dvae` file")
        if self.inverse not in INVERSES:
            raise ValueError(f"model.inverse = {self.inverse!r}; known inverses: {', '.join(INVERSES)}")
        if self.inverse == "tf" and self.posterior != "vqvae":
            raise ValueError("model.inverse = 'tf' needs gradients through the posterior: use posterior: vqvae")


@dataclass(frozen=True)
class GSSOptions(MaskigeOptions):
    encoder: str = "resnet18"
    pretrained_file: str = ""
    mla_dim: int = 64  # official 384
    dim: int = 64  # official 512
    depth: int = 2  # official 2 (Swin-L) or 6
    heads: int = 2  # official 16
    window: int = 8  # official 7; 8 tiles a 16 x 16 token grid without padding
    ffn: int = 128  # official 1024
    hidden: int = 128  # official 2048
    img_size: int = 0  # > 0: a timm Swin encoder's img_size (the crop; other sizes still run)
    encoder_args: dict = field(default_factory=dict)  # extra timm keywords (e.g. a tiny Swin's widths)
    token_weight: float = 0.8
    aux_weight: float = 0.2  # 0 turns the unlabeled-area auxiliary head off
    stage: str = "prior"  # prior | inverse
    init_file: str = ""  # stage inverse: the prior run's model.safetensors

    def check(self) -> None:
        super().check()
        if self.stage not in ("prior", "inverse"):
            raise ValueError(f"model.stage = {self.stage!r}; expected 'prior' or 'inverse'")
        if self.stage == "inverse" and (self.inverse not in ("ft", "ft-w") or not self.init_file):
            raise ValueError("model.stage = 'inverse' trains an FT or FT-W inverse on a trained prior: set model.inverse and model.init_file")
        if self.stage == "prior" and self.inverse in ("ft", "ft-w", "tf"):
            raise ValueError(f"model.inverse = {self.inverse!r} is trained after the prior: use stage: inverse (FT, FT-W) or a maskige run (TF)")
        if self.dim % self.heads:
            raise ValueError(f"model.heads = {self.heads} does not divide model.dim = {self.dim}")


def build_posterior(options: MaskigeOptions) -> nn.Module:
    """The frozen posterior from ``posterior_file``; errors name the file."""
    path = Path(options.posterior_file).expanduser()
    if options.posterior == "dalle":
        from .dvae import load_dvae

        posterior = load_dvae(path)
    else:
        posterior = VQVAE(options.codes, options.downsample, options.vq_width, options.code_dim)
        if not path.is_file():
            raise FileNotFoundError(f"model.posterior_file {path} does not exist; expected a `vqvae` run's model.safetensors")
        try:
            load_weights(path, posterior, prefix="posterior.")
        except RuntimeError as err:
            raise ValueError(f"model.posterior_file {path} does not fit model.codes/downsample/vq_width/code_dim: {err}") from None
    posterior.requires_grad_(False)
    return posterior.eval()


def resize_labels(labels: torch.Tensor, scale: int, mode: str = "nearest", num_classes: int = 0, ignore_index: int = 255) -> torch.Tensor:
    """Labels at ``scale`` x their size: nearest, or ``onehot-bilinear`` (one-hot over the classes
    and ignore, bilinear, argmax; image by image to bound memory), as the official code."""
    if scale == 1:
        return labels
    if mode == "nearest":
        return F.interpolate(labels[:, None].float(), scale_factor=scale, mode="nearest")[:, 0].long()
    out = []
    for lab in labels:
        index = torch.where(lab == ignore_index, num_classes, lab.clamp(0, num_classes - 1))
        onehot = F.one_hot(index, num_classes + 1).permute(2, 0, 1)[None].float()
        up = F.interpolate(onehot, scale_factor=scale, mode="bilinear", align_corners=False).argmax(1)[0]
        out.append(torch.where(up == num_classes, ignore_index, up))
    return torch.stack(out)


def maskige_labels(options, labels: torch.Tensor, num_classes: int, ignore_index: int) -> torch.Tensor:
    """Labels at the maskige's resolution (``maskige_scale``, ``maskige_resize``)."""
    return resize_labels(labels, options.maskige_scale, options.maskige_resize, num_classes, ignore_index)


class MaskigeCodec(nn.Module):
    """Labels <-> maskige <-> tokens, and the inverse X^-1 to class logits."""

    def __init__(self, options: MaskigeOptions, num_classes: int, ignore_index: int):
        super().__init__()
        self.options, self.ignore_index = options, ignore_index
        self.register_buffer("colours", palette(options.palette, num_classes, options.palette_seed), persistent=False)
        self.posterior = build_posterior(options)
        self.inverse_net = build_inverse(options.inverse, num_classes, options.inverse_width)
        self.learned_palette = LearnedPalette(self.colours) if options.inverse == "tf" else None

    def train(self, mode: bool = True):
        super().train(mode)
        self.posterior.eval()  # frozen, whatever the mode of the method
        return self

    def beta(self) -> torch.Tensor:
        return self.learned_palette() if self.learned_palette is not None else self.colours

    def tokens(self, labels: torch.Tensor) -> torch.Tensor:
        """Ground-truth tokens: labels (at maskige scale) -> maskige -> posterior encoder."""
        k = self.colours.shape[0]
        return self.posterior.encode(to_maskige(maskige_labels(self.options, labels, k, self.ignore_index), self.beta().detach(), self.ignore_index))

    def logits(self, maskige: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """X^-1 at the label resolution ``size``: (B, 3, h, w) maskige -> (B, K, *size) logits."""
        if maskige.shape[-2:] != size:
            maskige = F.interpolate(maskige, size=size, mode="bilinear", align_corners=False, antialias=True)
        if self.inverse_net is not None:
            return self.inverse_net(maskige)
        return colour_logits(maskige, self.beta(), self.options.tau)

    def reconstruct(self, labels: torch.Tensor) -> torch.Tensor:
        """The reconstruction upper bound's class logits: labels -> tokens -> decoder -> X^-1."""
        with torch.no_grad():
            maskige = self.posterior.decode(self.tokens(labels))
        return self.logits(maskige, labels.shape[-2:])

    def reconstruct_differentiable(self, labels: torch.Tensor) -> torch.Tensor:
        """TF: the learned palette's maskige through the posterior with straight-through codes."""
        maskige = self.learned_palette.draw(maskige_labels(self.options, labels, self.colours.shape[0], self.ignore_index), self.ignore_index)
        recon, _, _ = self.posterior(maskige)
        return self.logits(from_vq_range(recon), labels.shape[-2:])


class FrozenPosteriorMixin:
    """Runs save everything but the frozen posterior, which comes from ``posterior_file``."""

    def state_dict(self, *args, **kwargs):
        state = super().state_dict(*args, **kwargs)
        return type(state)((k, v) for k, v in state.items() if not k.startswith(FROZEN_PREFIX))

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        state = dict(state_dict)
        for key, value in super().state_dict().items():
            if key.startswith(FROZEN_PREFIX):
                state.setdefault(key, value)
        return super().load_state_dict(state, strict=strict, assign=assign)


class VQVAEMethod(SegmentationMethod):
    """Posterior learning: reconstruct maskiges in the mapped range (L1 or MSE) + 0.25 commitment."""

    uses_labels = True

    def __init__(self, options: VQVAEOptions, num_classes: int, ignore_index: int = 255):
        super().__init__()
        self.options, self.num_classes, self.ignore_index = options, num_classes, ignore_index
        self.posterior = VQVAE(options.codes, options.downsample, options.vq_width, options.code_dim)
        self.register_buffer("colours", palette(options.palette, num_classes, options.palette_seed), persistent=False)

    def training_maskige(self, labels: torch.Tensor) -> torch.Tensor:
        """Per image: the palette in a random class order, or random colours."""
        b, k = labels.shape[0], self.num_classes
        order = torch.argsort(torch.rand(b, k, device=labels.device), 1)
        colours = self.colours[order]
        random = torch.rand(b, 1, 1, device=labels.device) < self.options.random_colour_prob
        colours = torch.where(random, torch.rand_like(colours), colours)
        return torch.stack([to_maskige(lab[None], col, self.ignore_index)[0] for lab, col in zip(labels, colours)])

    def training_loss(self, images, labels):
        maskige = self.training_maskige(maskige_labels(self.options, labels, self.colours.shape[0], self.ignore_index))
        recon, idx, commit = self.posterior(maskige)
        target = to_vq_range(maskige)
        rec = F.l1_loss(recon, target) if self.options.recon_loss == "l1" else F.mse_loss(recon, target)
        loss = rec + self.options.commitment * commit
        return loss, {"loss": loss.item(), "recon": rec.item(), "codes_used": float(idx.unique().numel())}

    @torch.no_grad()
    def predict(self, images, labels=None):
        """The FF reconstruction upper bound (nearest palette colour)."""
        maskige = to_maskige(maskige_labels(self.options, labels, self.colours.shape[0], self.ignore_index), self.colours, self.ignore_index)
        recon = self.posterior.decode(self.posterior.encode(maskige))
        if recon.shape[-2:] != labels.shape[-2:]:
            recon = F.interpolate(recon, size=labels.shape[-2:], mode="bilinear", align_corners=False, antialias=True)
        return colour_logits(recon, self.colours).argmax(1)


class MaskigeMethod(FrozenPosteriorMixin, SegmentationMethod):
    """Reconstruction upper bound of one maskige variant; trains FT / FT-W / TF on reconstructions."""

    uses_labels = True

    def __init__(self, options: MaskigeOptions, num_classes: int, ignore_index: int = 255):
        super().__init__()
        self.options, self.num_classes, self.ignore_index = options, num_classes, ignore_index
        self.codec = MaskigeCodec(options, num_classes, ignore_index)

    def training_loss(self, images, labels):
        if self.options.inverse == "tf":
            logits = self.codec.reconstruct_differentiable(labels)
        elif self.codec.inverse_net is not None:
            logits = self.codec.reconstruct(labels)
        else:
            raise ValueError(f"model.inverse = {self.options.inverse!r} has nothing to train; set optim.iterations: 0")
        loss = F.cross_entropy(logits, labels, ignore_index=self.ignore_index)
        return loss, {"loss": loss.item()}

    @torch.no_grad()
    def predict(self, images, labels=None):
        return self.codec.reconstruct(labels).argmax(1)


class GSS(FrozenPosteriorMixin, SegmentationMethod):
    """Prior over posterior tokens: 0.8 CE(tokens) + 0.2 CE(auxiliary pixel classes)."""

    def __init__(self, options: GSSOptions, num_classes: int, ignore_index: int = 255):
        super().__init__()
        self.options, self.num_classes, self.ignore_index = options, num_classes, ignore_index
        self.codec = MaskigeCodec(options, num_classes, ignore_index)
        self.token_stride = self.codec.posterior.downsample // options.maskige_scale
        self.norm = ImageNorm()
        self.prior = Prior(
            self.codec.posterior.num_codes, num_classes, encoder=options.encoder, pretrained_file=options.pretrained_file,
            token_stride=self.token_stride, mla_dim=options.mla_dim, dim=options.dim, depth=options.depth,
            heads=options.heads, window=options.window, ffn=options.ffn, hidden=options.hidden,
            encoder_args={**options.encoder_args, **({"img_size": options.img_size, "dynamic_img_size": True} if options.img_size else {})},
        )
        self.size_divisor = max(32, self.token_stride)
        if options.stage == "inverse":
            try:
                load_weights(Path(options.init_file).expanduser(), self.prior, prefix="prior.")
            except (FileNotFoundError, RuntimeError) as err:
                raise ValueError(f"model.init_file: {err} (expected a `gss` prior run's model.safetensors)") from None
            self.prior.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.options.stage == "inverse":
            self.prior.eval()
        return self

    def prior_logits(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Token and auxiliary logits on the token grid covering the (unpadded) image."""
        h, w = images.shape[-2:]
        tokens, aux = self.prior(self.norm(pad_to_multiple(images, self.size_divisor)))
        th, tw = -(-h // self.token_stride), -(-w // self.token_stride)
        return tokens[..., :th, :tw], aux[..., :th, :tw]

    def token_targets(self, labels: torch.Tensor, aux: torch.Tensor) -> torch.Tensor:
        """Encode the labels, ignore pixels filled by the auxiliary argmax; a token is ignored
        only when every pixel under it is ignore (the official rule)."""
        valid = labels != self.ignore_index
        if self.options.aux_weight > 0:
            fill = F.interpolate(aux.detach(), size=labels.shape[-2:], mode="bilinear", align_corners=False).argmax(1)
            labels = torch.where(valid, labels, fill)
        targets = self.codec.tokens(labels)
        s = self.token_stride
        any_valid = F.max_pool2d(pad_to_multiple(valid[:, None].float(), s), s)[:, 0] > 0
        return torch.where(any_valid[..., : targets.shape[-2], : targets.shape[-1]], targets, self.ignore_index)

    def training_loss(self, images, labels):
        if self.options.stage == "inverse":
            with torch.no_grad():
                maskige = self.decode(images)
            logits = self.codec.logits(maskige, labels.shape[-2:])
            loss = F.cross_entropy(logits, labels, ignore_index=self.ignore_index)
            return loss, {"loss": loss.item()}
        token_logits, aux = self.prior_logits(images)
        targets = self.token_targets(labels, aux)
        token_loss = F.cross_entropy(token_logits, targets, ignore_index=self.ignore_index)
        loss = self.options.token_weight * token_loss
        logs = {"token_loss": token_loss.item()}
        if self.options.aux_weight > 0:
            aux_up = F.interpolate(aux, size=labels.shape[-2:], mode="bilinear", align_corners=False)
            aux_loss = F.cross_entropy(aux_up, labels, ignore_index=self.ignore_index)
            loss = loss + self.options.aux_weight * aux_loss
            logs["aux_loss"] = aux_loss.item()
        logs["loss"] = loss.item()
        return loss, logs

    def decode(self, images: torch.Tensor, temperature: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """Image -> tokens -> posterior decoder -> maskige (at maskige scale). Tokens: the argmax of
        the prior (``temperature`` 0), else drawn per position from softmax(logits / temperature)."""
        token_logits, _ = self.prior_logits(images)
        if not temperature:
            return self.codec.posterior.decode(token_logits.argmax(1))
        b, n, th, tw = token_logits.shape
        probs = (token_logits.float() / temperature).softmax(1).permute(0, 2, 3, 1).reshape(-1, n)
        tokens = torch.multinomial(probs, 1, generator=generator).view(b, th, tw)
        return self.codec.posterior.decode(tokens)

    def check_predict_options(self, options: dict) -> None:
        """Also: ``temperature`` a number >= 0, ``seed`` an integer."""
        from ...config import ConfigError

        super().check_predict_options(options)
        temperature, seed = options.get("temperature", 0.0), options.get("seed", 0)
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or temperature < 0:
            raise ConfigError(f"eval.predict.temperature must be a number >= 0 (0: argmax tokens), got {temperature!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"eval.predict.seed must be an integer, got {seed!r}")

    @torch.no_grad()
    def predict(self, images, temperature: float = 0.0, seed: int = 0):
        """Class ids; ``temperature`` > 0 samples the tokens (seeded by ``seed``) instead of their argmax."""
        h, w = images.shape[-2:]
        generator = torch.Generator(device=images.device).manual_seed(seed) if temperature else None
        maskige = self.decode(images, float(temperature), generator)
        s = self.options.maskige_scale
        maskige = maskige[..., : h * s, : w * s]
        return self.codec.logits(maskige, (h, w)).argmax(1)


def build_vqvae(options: VQVAEOptions, num_classes: int, ignore_index: int) -> VQVAEMethod:
    return VQVAEMethod(options, num_classes, ignore_index)


def build_maskige(options: MaskigeOptions, num_classes: int, ignore_index: int) -> MaskigeMethod:
    return MaskigeMethod(options, num_classes, ignore_index)


def build_gss(options: GSSOptions, num_classes: int, ignore_index: int) -> GSS:
    return GSS(options, num_classes, ignore_index)


def gss_name(options: dict) -> str:
    """GSS by its inverse, as the paper: GSS-FF (the prior's own), GSS-FT, GSS-FT-W."""
    inverse = options.get("inverse", "ff") if options.get("stage") == "inverse" else "ff"
    return f"GSS-{inverse.upper()}"


def gss_stage(options: dict) -> str:
    """The prior trains with ``train``; ``stage: inverse`` (FT, FT-W on the frozen prior) with ``inverse_stage``."""
    return "inverse_stage" if options.get("stage") == "inverse" else "train"


def maskige_stage(options: dict) -> str:
    """A learned inverse on the frozen posterior (not the fixed FF one) trains with ``inverse_stage``."""
    return "inverse_stage" if options.get("inverse", "ff") != "ff" else "train"


def vqvae_stage(options: dict) -> str:
    """GSS stage 1, the posterior, trains with ``posterior_learning``."""
    return "posterior_learning"


# Stage 1 (the posterior) and the maskige reconstruction are upper bounds: they read the labels.
VQVAE_SPEC = MethodSpec(VQVAEOptions, build_vqvae, "VQ-VAE", stage=vqvae_stage, oracle=True)
MASKIGE_SPEC = MethodSpec(MaskigeOptions, build_maskige, "Maskige", stage=maskige_stage, oracle=True,
                     tables=("gss_reconstruction",))
def gss_uncertainty(options: dict) -> str:
    """Tokens drawn from the prior's categorical (temperature 1), one label map per seed."""
    return "samples"


# The prior samples its tokens for the uncertainty step (``genseg uncertainty``).
GSS_SPEC = MethodSpec(GSSOptions, build_gss, gss_name, stage=gss_stage, tables=("gss_prior",), uncertainty=gss_uncertainty,
                      sample_options={"temperature": 1.0})
