"""MaskFormer (Cheng, Schwing and Kirillov, NeurIPS 2021) from ``transformers``, built offline.

Mask classification: N queries each predict a class distribution p_q over K + 1 classes
(the last is "no object") and a binary mask m_q. Training uses the library's own loss:
Hungarian matching of queries to the image's per-class ground-truth masks, then
cross-entropy on classes plus focal (weight 20) and dice (weight 1) on matched masks;
``deep_supervision`` repeats it on every decoder layer. The per-class masks come from the
semantic label map as in the official code: one mask per class present, ignore pixels in
none. Semantic inference (the library's ``post_process_semantic_segmentation``):
scores_k(i) = sum_q p_q(k) sigmoid(m_q(i)), resized bilinearly to the input, argmax over k.

Two departures of ``transformers``' MaskFormer from the official code are undone here: its
N(0, 0.02) init of the transformer decoder and queries (every query predicted the same
class and mask, a constant map; :func:`official_init`), and its deep-supervision inputs
(:meth:`MaskFormer.predictions`). :mod:`.mask2former` reuses this module's pieces.

Weights: random by default; ``pretrained_dir`` names a local ``save_pretrained`` folder
(config.json + model.safetensors) read with ``from_pretrained(dir, local_files_only=True)``;
``backbone_file`` names a local safetensors file of a timm ``swin_*`` classifier (e.g. the
manifest's ImageNet-1k Swin-T) loaded into the Swin backbone only, by the explicit key map
:func:`timm_swin_to_hf` (:func:`load_backbone_file`), the rest random as in the official code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from .base import ImageNorm, SegmentationMethod, pad_to_multiple
from .baselines import pad_labels
from .spec import MethodSpec, softmax_uncertainty

if TYPE_CHECKING:  # transformers is imported when a MaskFormer is built, not with genseg.methods
    from transformers import MaskFormerConfig, MaskFormerForInstanceSegmentation


@dataclass(frozen=True)
class MaskFormerBaseOptions:
    """Options MaskFormer and Mask2Former share: Swin backbone, pixel decoder width, query decoder,
    weights. Defaults are tiny; see PAPER_MODELS."""

    embed_dim: int = 16  # Swin-T: 96
    depths: tuple[int, ...] = (1, 1, 1, 1)  # Swin-T: (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (1, 2, 4, 8)  # Swin-T: (3, 6, 12, 24)
    window_size: int = 4  # Swin-T: 7
    drop_path_rate: float = 0.0  # 0.3 in the paper
    fpn_channels: int = 32  # pixel decoder and mask embedding width: 256
    decoder_dim: int = 32  # 256
    decoder_layers: int = 1  # 6
    decoder_heads: int = 2  # 8
    decoder_ffn: int = 64  # 2048
    num_queries: int = 16  # 100
    no_object_weight: float = 0.1
    pretrained_dir: str = ""
    backbone_file: str = ""  # timm swin_* safetensors, e.g. "{weights}/swin_tiny_patch4_window7_224.ms_in1k.safetensors"

    def check(self) -> None:
        check_swin_and_decoder(self)


@dataclass(frozen=True)
class MaskFormerOptions(MaskFormerBaseOptions):
    """Swin backbone, FPN pixel decoder, DETR transformer decoder."""

    deep_supervision: bool = False  # the paper: true (a loss on every decoder layer)

    def check(self) -> None:
        super().check()
        if min(self.window_size, self.fpn_channels, self.decoder_layers, self.decoder_ffn, self.num_queries) < 1:
            raise ValueError("model.window_size, fpn_channels, decoder_layers, decoder_ffn and num_queries must be >= 1")


def check_swin_and_decoder(options) -> None:
    """Checks shared with Mask2Former: four Swin stages whose widths the heads divide, decoder heads likewise."""
    if options.backbone_file and options.pretrained_dir:
        raise ValueError("model.backbone_file and model.pretrained_dir exclude each other: pretrained_dir holds the whole "
                         f"model, backbone included (got backbone_file={options.backbone_file!r}, pretrained_dir={options.pretrained_dir!r})")
    if len(options.depths) != 4 or len(options.num_heads) != 4:
        raise ValueError(f"model.depths and model.num_heads need 4 values (one per Swin stage), got {options.depths}, {options.num_heads}")
    for stage, heads in enumerate(options.num_heads):
        if (options.embed_dim * 2**stage) % heads:
            raise ValueError(f"model.num_heads[{stage}] = {heads} does not divide the stage width {options.embed_dim * 2**stage}")
    if options.decoder_dim % options.decoder_heads:
        raise ValueError(f"model.decoder_heads = {options.decoder_heads} does not divide model.decoder_dim = {options.decoder_dim}")


def swin_config(options):
    """The Swin backbone's ``transformers`` config from the shared options (four stages out)."""
    from transformers import SwinConfig

    return SwinConfig(
        embed_dim=options.embed_dim,
        depths=list(options.depths),
        num_heads=list(options.num_heads),
        window_size=options.window_size,
        drop_path_rate=options.drop_path_rate,
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )


def maskformer_config(options: MaskFormerOptions, num_classes: int) -> MaskFormerConfig:
    """The ``transformers`` config for ``options`` (no files, no hub)."""
    from transformers import DetrConfig, MaskFormerConfig

    decoder = DetrConfig(
        d_model=options.decoder_dim,
        decoder_layers=options.decoder_layers,
        decoder_attention_heads=options.decoder_heads,
        decoder_ffn_dim=options.decoder_ffn,
        num_queries=options.num_queries,
        use_timm_backbone=False,
    )
    return MaskFormerConfig(
        backbone_config=swin_config(options),
        decoder_config=decoder,
        num_labels=num_classes,
        fpn_feature_size=options.fpn_channels,
        mask_feature_size=options.fpn_channels,
        use_auxiliary_loss=options.deep_supervision,
        no_object_weight=options.no_object_weight,
    )


def load_pretrained_dir(path: str, config, model_class=None, name: str = "MaskFormer"):
    """``model_class.from_pretrained(path, local_files_only=True)`` with the options' config.

    ``model_class`` defaults to MaskFormerForInstanceSegmentation (``name`` goes in messages).
    Only the class predictor may differ in size (another dataset's classes: re-initialised);
    any other missing or mismatched weight is an error naming the folder.
    """
    from transformers.utils import logging

    if model_class is None:
        from transformers import MaskFormerForInstanceSegmentation as model_class
    logging.disable_progress_bar()
    folder = Path(path).expanduser()
    expected = f"a {name} save_pretrained folder (config.json + model.safetensors)"
    if not folder.is_dir():
        raise FileNotFoundError(f"model.pretrained_dir {folder} does not exist; expected {expected}")
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"model.pretrained_dir {folder} has no config.json; expected {expected}")
    try:
        net, info = model_class.from_pretrained(
            str(folder), config=config, local_files_only=True, ignore_mismatched_sizes=True, output_loading_info=True
        )
    except OSError as err:
        raise FileNotFoundError(f"model.pretrained_dir {folder}: {err}; expected {expected}") from None
    mismatched = [entry[0] if isinstance(entry, tuple) else entry for entry in info.get("mismatched_keys", [])]
    per_class = ("class_predictor.", "criterion.empty_weight")  # sized by the number of classes
    bad = sorted(info.get("missing_keys", [])) + [k for k in mismatched if not k.startswith(per_class)]
    if bad:
        raise ValueError(f"model.pretrained_dir {folder} does not fit the model options: {len(bad)} missing or mismatched weights, e.g. {bad[:3]}")
    return net


# ---------------------------------------------------------------------------- timm Swin backbone files

# timm block-relative names -> transformers MaskFormerSwin names (qkv is split separately).
_TIMM_BLOCK = {
    "norm1": "layernorm_before",
    "attn": "attention.self",  # relative_position_bias_table
    "attn.proj": "attention.output.dense",
    "norm2": "layernorm_after",
    "mlp.fc1": "intermediate.dense",
    "mlp.fc2": "output.dense",
}
_TIMM_TOP = {"patch_embed.proj": "model.embeddings.patch_embeddings.projection", "patch_embed.norm": "model.embeddings.norm",
             "norm": "model.layernorm"}
_TIMM_SKIP = ("relative_position_index", "attn_mask")  # buffers, rebuilt from the options
# MaskFormerSwin names -> transformers' generic Swin (Mask2Former's SwinBackbone).
_TO_SWIN = [("attention.self.query.", "attention.q_proj."), ("attention.self.key.", "attention.k_proj."),
            ("attention.self.value.", "attention.v_proj."), ("attention.output.dense.", "attention.o_proj."),
            ("attention.self.relative_position_bias_table", "attention.relative_position_bias.relative_position_bias_table"),
            ("intermediate.dense.", "mlp.fc1."), ("output.dense.", "mlp.fc2.")]


def _timm_swin_key(key: str) -> list[str]:
    """The transformers MaskFormerSwin name(s) of timm key ``key`` (three for a fused qkv; [] if dropped).

    Unknown keys come back unchanged, so a strict load reports them as unexpected.
    """
    if key.startswith("head.") or key.rsplit(".", 1)[-1] in _TIMM_SKIP:
        return []  # the ImageNet classifier; buffers
    module, _, param = key.rpartition(".")
    if module in _TIMM_TOP:
        return [f"{_TIMM_TOP[module]}.{param}"]
    if m := re.fullmatch(r"layers\.(\d+)\.downsample\.(reduction|norm)", module):
        stage = int(m[1])  # timm merges patches at the start of stages 1..3, transformers at the end of 0..2
        return [f"model.encoder.layers.{stage - 1}.downsample.{m[2]}.{param}"] if stage > 0 else [key]
    if m := re.fullmatch(r"layers\.(\d+)\.blocks\.(\d+)\.(.+)", module):
        block = f"model.encoder.layers.{m[1]}.blocks.{m[2]}"
        if m[3] == "attn.qkv":
            return [f"{block}.attention.self.{part}.{param}" for part in ("query", "key", "value")]
        if m[3] in _TIMM_BLOCK and (m[3] != "attn" or param == "relative_position_bias_table"):
            return [f"{block}.{_TIMM_BLOCK[m[3]]}.{param}"]
    return [key]


def timm_swin_to_hf(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A timm ``swin_*`` state dict in transformers' ``MaskFormerSwinBackbone`` names.

    ``patch_embed.proj/norm`` -> ``model.embeddings.patch_embeddings.projection`` / ``model.embeddings.norm``;
    ``layers.i.blocks.j.``: ``norm1/norm2`` -> ``layernorm_before/after``, fused ``attn.qkv`` (rows q, k, v)
    -> ``attention.self.query/key/value``, ``attn.proj`` -> ``attention.output.dense``,
    ``attn.relative_position_bias_table`` -> ``attention.self.relative_position_bias_table``,
    ``mlp.fc1/fc2`` -> ``intermediate.dense`` / ``output.dense``; ``layers.i.downsample`` (timm: start
    of stage i) -> ``model.encoder.layers.{i-1}.downsample`` (transformers: end of stage i-1; same
    2x2 concatenation order); the final ``norm`` -> ``model.layernorm`` (the backbone's feature maps
    do not use it: they go through the per-stage ``hidden_states_norms``, which the ImageNet file
    lacks and which stay at their init, like the official code's new ``norm{i}`` layers).
    Dropped: ``head.*`` (the ImageNet classifier) and the ``relative_position_index`` / ``attn_mask``
    buffers. Unknown keys are kept as they are (a strict load reports them).
    """
    out = {}
    for key, value in state.items():
        names = _timm_swin_key(key)
        parts = value.chunk(3, dim=0) if len(names) == 3 else [value]
        out.update(zip(names, parts))
    return out


def _swin_names(key: str) -> str:
    key = "swin." + key.removeprefix("model.") if key.startswith("model.") else key
    for old, new in _TO_SWIN:
        key = key.replace(old, new)
    return key


def load_backbone_file(backbone: nn.Module, path: str) -> None:
    """Copies the timm ``swin_*`` safetensors file ``path`` (``model.backbone_file``) into ``backbone``, strictly.

    ``backbone`` is a transformers MaskFormerSwinBackbone (MaskFormer) or SwinBackbone
    (Mask2Former). Every parameter but the per-stage ``hidden_states_norms`` (not in an ImageNet
    file) must come from the file with its shape, and every mapped file tensor must have a place:
    else a ValueError naming the option, the file and the first offending key.
    """
    from transformers import SwinBackbone

    file = Path(path).expanduser()
    what = 'a safetensors file of a timm swin_* backbone, e.g. "{weights}/swin_tiny_patch4_window7_224.ms_in1k.safetensors"'
    if not file.is_file():
        raise FileNotFoundError(f"model.backbone_file {file} does not exist; expected {what}")
    if file.suffix != ".safetensors":
        raise ValueError(f"model.backbone_file {file} is not a .safetensors file (pickles are not read); expected {what}")
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(file))
    except (SafetensorError, OSError) as err:
        raise ValueError(f"model.backbone_file {file} could not be read ({err}); expected {what}") from None
    source = {new: old for old in state for new in _timm_swin_key(old)}
    mapped = timm_swin_to_hf(state)
    if isinstance(backbone, SwinBackbone):
        source = {_swin_names(k): v for k, v in source.items()}
        mapped = {_swin_names(k): v for k, v in mapped.items()}
    buffers = {name for name, _ in backbone.named_buffers()}
    target = {k: v for k, v in backbone.state_dict().items() if k not in buffers and not k.startswith("hidden_states_norms.")}
    problems = []
    for key, param in target.items():
        if key not in mapped:
            problems.append(f"{key}: expected shape {tuple(param.shape)}, found none (missing from the file)")
        elif mapped[key].shape != param.shape:
            problems.append(f"{key} (file: {source[key]}): expected shape {tuple(param.shape)}, found {tuple(mapped[key].shape)}")
    problems += [f"{source[k]} (as {k}): expected none (unexpected key), found shape {tuple(v.shape)}" for k, v in mapped.items() if k not in target]
    if problems:
        raise ValueError(f"model.backbone_file {file} does not fit the model's Swin backbone (embed_dim, depths, num_heads, "
                         f"window_size): {len(problems)} missing, unexpected or mismatched keys; first: {problems[0]}")
    with torch.no_grad():
        for key, param in target.items():
            param.copy_(mapped[key])


@torch.no_grad()
def official_init(net: MaskFormerForInstanceSegmentation) -> None:
    """The official MaskFormer's initialisation of the transformer predictor.

    ``transformers`` initialises the DETR decoder's weights and the query embeddings with
    N(0, 0.02). The official code (DETR's ``Transformer._reset_parameters``) uses
    Xavier-uniform for the decoder's matrices, PyTorch's N(0, 1) for ``nn.Embedding``
    queries and ``nn.Linear``'s default for the class head. With the small init every
    query attends almost uniformly and sees the same features, so all queries predict the
    same class and mask, and training does not break the tie (a constant prediction).
    """
    for param in net.model.transformer_module.decoder.parameters():
        if param.dim() > 1:
            nn.init.xavier_uniform_(param)
    nn.init.normal_(net.model.transformer_module.queries_embedder.weight)
    net.class_predictor.reset_parameters()


class MaskFormer(SegmentationMethod):
    """MaskFormer behind the one interface: Hungarian-matched mask loss, semantic inference.

    Subclasses (Mask2Former) override :meth:`build_net` and :meth:`predictions`; targets,
    loss and inference are shared.
    """

    upsample_mask_logits = False  # the library's MaskFormer post-processing resizes the scores

    def __init__(self, options, num_classes: int, ignore_index: int = 255):
        super().__init__()
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.norm = ImageNorm()
        self.size_divisor = 32
        self.net = self.build_net(options, num_classes)

    def build_net(self, options: MaskFormerOptions, num_classes: int) -> MaskFormerForInstanceSegmentation:
        config = maskformer_config(options, num_classes)
        if options.pretrained_dir:
            return load_pretrained_dir(options.pretrained_dir, config)
        from transformers import MaskFormerForInstanceSegmentation

        net = MaskFormerForInstanceSegmentation(config)
        official_init(net)
        if options.backbone_file:
            load_backbone_file(net.model.pixel_level_module.encoder, options.backbone_file)
        return net

    def targets(self, labels: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per image: binary masks (n, H, W) of the n classes present, and those classes (n,)."""
        masks, classes = [], []
        for label in labels:
            present = label.unique()
            present = present[(present != self.ignore_index) & (present < self.num_classes)]
            masks.append((label[None] == present[:, None, None]).float())
            classes.append(present)
        return masks, classes

    def predictions(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[dict[str, torch.Tensor]]]:
        """Class and mask logits of the last decoder layer; with deep supervision also of the others.

        ``transformers`` (5.x) fills the decoder's hidden states only when asked for them, and
        then lists the decoder's input (zeros) and the inner layers' outputs without the
        decoder's final LayerNorm. The official auxiliary predictions are those of
        LayerNorm(output of layer l) for l < L, so the hidden states are set so before the
        library's ``get_logits`` turns them into predictions.
        """
        deep = self.net.config.use_auxiliary_loss
        out = self.net.model(pixel_values=x, output_hidden_states=deep)
        if deep:
            norm = self.net.model.transformer_module.decoder.layernorm
            inner = out.transformer_decoder_hidden_states[1:-1]
            out.transformer_decoder_hidden_states = (*map(norm, inner), out.transformer_decoder_last_hidden_state)
        return self.net.get_logits(out)

    def training_loss(self, images, labels):
        x = pad_to_multiple(self.norm(images), self.size_divisor)
        masks, classes = self.targets(pad_labels(labels, x.shape[-2:], self.ignore_index))
        class_logits, mask_logits, aux = self.predictions(x)
        losses = self.net.get_loss_dict(mask_logits, class_logits, masks, classes, aux)  # weighted, aux included
        loss = self.net.get_loss(losses)
        logs = {"loss": loss.item(), **{k: v.item() for k, v in losses.items() if not k[-1].isdigit()}}  # last layer's parts
        return loss, logs

    def scores(self, images: torch.Tensor) -> torch.Tensor:
        """(B, K, H, W) semantic scores sum_q p_q(k) sigmoid(m_q), at the input resolution.

        With ``upsample_mask_logits`` (Mask2Former) the mask logits are resized to the input
        before the sigmoid, as the official semantic inference does; else the scores are.
        """
        h, w = images.shape[-2:]
        x = pad_to_multiple(self.norm(images), self.size_divisor)
        class_logits, mask_logits, _ = self.predictions(x)
        if self.upsample_mask_logits:
            mask_logits = F.interpolate(mask_logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return semantic_scores(class_logits, mask_logits, x.shape[-2:])[..., :h, :w]

    @torch.no_grad()
    def predict(self, images, **options):
        if options:
            raise ValueError(f"{type(self).__name__}.predict takes no options, got {sorted(options)}")
        return self.scores(images).argmax(1)

    @torch.no_grad()
    def probabilities(self, images):
        """The semantic scores normalised over the classes, s_k / sum_j s_j (they are sums of
        p_q(k) sigmoid(m_q), not a distribution; argmax unchanged)."""
        scores = self.scores(images).float().clamp(min=0)
        return scores / scores.sum(1, keepdim=True).clamp(min=1e-12)


def semantic_scores(class_logits: torch.Tensor, mask_logits: torch.Tensor, size) -> torch.Tensor:
    """The library's semantic post-processing: einsum over queries, then bilinear resize to ``size``."""
    probs = class_logits.softmax(-1)[..., :-1]  # drop "no object"
    scores = torch.einsum("bqk,bqhw->bkhw", probs, mask_logits.sigmoid())
    return F.interpolate(scores, size=tuple(size), mode="bilinear", align_corners=False)


def build_maskformer(options: MaskFormerOptions, num_classes: int, ignore_index: int) -> MaskFormer:
    return MaskFormer(options, num_classes, ignore_index)


MASKFORMER_SPEC = MethodSpec(MaskFormerOptions, build_maskformer, "MaskFormer", uncertainty=softmax_uncertainty)
