"""PixNerd, FlowSeg's velocity network: the release's state-dict layout, the numerics of its
pieces, the Lightning ``.ckpt`` -> safetensors converter, loading into FlowSeg (the "widened" and
"reinitialised" report), bad weight files, and REPA.

Facts come from ``shared/docs/pixnerd.md`` (the MCG-NJU/PixNerd release). The release sizes
are built on the ``meta`` device only; everything that runs uses ``pixnerd-cpu`` or smaller.
The stand-in checkpoints are laid out like the release's: ``state_dict`` with ``denoiser.*``,
``ema_denoiser.*`` and the REPA projector, plus trainer entries.
"""

import json
import math
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import timm
import torch
import torch.nn.functional as F
from conftest import fixed_batch_steps
from safetensors.torch import load_file, save, save_file

from genseg.cli import main
from genseg.config import ConfigError, ModelConfig, RunConfig
from genseg.methods import build_method
from genseg.methods.flowseg.convert import convert_pixnerd, shape_of
from genseg.methods.flowseg.pixnerd import (
    NULL_LABEL,
    PRESETS,
    Attention,
    FieldBlock,
    FinalLayer,
    PixNerd,
    PixNerdShape,
    RMSNorm,
    TransformerBlock,
    apply_rope,
    dct_features,
    rope_2d,
    timestep_embedding,
)
from genseg.methods.flowseg.weights import FORMAT, PixNerdWeightsError, load_pixnerd, read_pixnerd_file
from genseg.methods.gss.dvae import FORMAT as DVAE_FORMAT

CPU = PRESETS["pixnerd-cpu"]
PIXEL_FEATURES = 8  # FlowSeg's per-pixel image features in these tests (the default condition has "pixels")

# --- 1. the release's layout ----------------------------------------------------------------

# shared/docs/pixnerd.md, "State-dict names and shapes (L/16)", from the MCG-NJU/PixNerd release.
L16_TABLE = {
    "s_embedder.proj.weight": (1024, 768), "s_embedder.proj.bias": (1024,),
    "t_embedder.mlp.0.weight": (1024, 256), "t_embedder.mlp.0.bias": (1024,),
    "t_embedder.mlp.2.weight": (1024, 1024), "t_embedder.mlp.2.bias": (1024,),
    "y_embedder.embedding_table.weight": (1001, 1024),
    "blocks.{0..21}.norm1.weight": (1024,), "blocks.{0..21}.norm2.weight": (1024,),
    "blocks.{0..21}.attn.qkv.weight": (3072, 1024),
    "blocks.{0..21}.attn.q_norm.weight": (64,), "blocks.{0..21}.attn.k_norm.weight": (64,),
    "blocks.{0..21}.attn.proj.weight": (1024, 1024), "blocks.{0..21}.attn.proj.bias": (1024,),
    "blocks.{0..21}.mlp.w1.weight": (2730, 1024), "blocks.{0..21}.mlp.w3.weight": (2730, 1024),
    "blocks.{0..21}.mlp.w2.weight": (1024, 2730),
    "blocks.{0..21}.adaLN_modulation.0.weight": (6144, 1024), "blocks.{0..21}.adaLN_modulation.0.bias": (6144,),
    "blocks.{22,23}.param_generator1.0.weight": (16384, 1024), "blocks.{22,23}.param_generator1.0.bias": (16384,),
    "blocks.{22,23}.norm.weight": (64,),
    "x_embedder.embedder.0.weight": (64, 67), "x_embedder.embedder.0.bias": (64,),
    "final_layer.norm.weight": (64,),
    "final_layer.linear.weight": (3, 64), "final_layer.linear.bias": (3,),
}
BLOCK_RANGES = {"{0..21}": range(0, 22), "{22,23}": (22, 23)}


def expand_table(table: dict[str, tuple]) -> dict[str, tuple]:
    """The table's block patterns expanded over their indices."""
    out = {}
    for pattern, shape in table.items():
        ranges = [r for r in BLOCK_RANGES if r in pattern]
        indices = BLOCK_RANGES[ranges[0]] if ranges else [None]
        for i in indices:
            out[pattern.replace(ranges[0], str(i)) if ranges else pattern] = shape
    return out


def meta_pixnerd(name: str) -> PixNerd:
    with torch.device("meta"):
        return PixNerd(PRESETS[name])


def block_indices(state: dict, suffix: str) -> set[int]:
    return {int(k.split(".")[1]) for k in state if k.startswith("blocks.") and k.endswith(suffix)}


def test_l16_state_dict_is_the_release_table():
    state = meta_pixnerd("pixnerd-l16").state_dict()
    expected = expand_table(L16_TABLE)
    assert {k: tuple(v.shape) for k, v in state.items()} == expected
    assert len(state) == len(expected) == 282
    assert round(sum(v.numel() for v in state.values()) / 1e6, 1) == 452.1
    assert shape_of(state, Path("l16")) == PRESETS["pixnerd-l16"]  # the converter recognises it


def test_xl16_sizes():
    model = meta_pixnerd("pixnerd-xl16")
    state = model.state_dict()
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == 700.6
    assert block_indices(state, ".attn.qkv.weight") == set(range(26))
    assert block_indices(state, ".param_generator1.0.weight") == set(range(26, 30))
    assert state["blocks.0.attn.qkv.weight"].shape == (3 * 1152, 1152)
    assert shape_of(state, Path("xl16")) == PRESETS["pixnerd-xl16"]


# --- 2. numerics of the pieces, against small reimplementations of pixnerd.md's words -------


def ref_time_features(t: list[float], dim: int = 256, max_period: float = 10.0) -> torch.Tensor:
    """Raw t (not x1000), frequencies max_period^(-i / half), cos half then sin half."""
    half = dim // 2
    freqs = [max_period ** (-i / half) for i in range(half)]
    return torch.tensor([[math.cos(v * f) for f in freqs] + [math.sin(v * f) for f in freqs] for v in t])


def ref_dct(patch: int, n: int) -> torch.Tensor:
    """(P*P pixels row-major, n*n features at index f_x * n + f_y)."""
    pos, freqs = torch.linspace(0, 1, patch).tolist(), torch.linspace(0, n, n).tolist()
    out = torch.zeros(patch * patch, n * n)
    for row, y in enumerate(pos):
        for col, x in enumerate(pos):
            for i, fx in enumerate(freqs):
                for j, fy in enumerate(freqs):
                    out[row * patch + col, i * n + j] = math.cos(math.pi * x * fx) * math.cos(math.pi * y * fy) / (1 + fx * fy)
    return out


def ref_rope_angles(head_dim: int, xs: list[float], ys: list[float]) -> torch.Tensor:
    """(N, head_dim / 2): pair 2k turns by x * f_k, pair 2k + 1 by y * f_k, f_k = 1 / 10000^(4k / head_dim)."""
    freqs = [1 / 10000 ** (i / head_dim) for i in range(0, head_dim, 4)]
    return torch.tensor([[v * f for f in freqs for v in (x, y)] for x, y in zip(xs, ys)], dtype=torch.float64)


def grid_positions(h: int, w: int) -> tuple[list[float], list[float]]:
    """x and y of a row-major h x w token grid, each linspace(0, 16, n)."""
    lx, ly = torch.linspace(0, 16, w).tolist(), torch.linspace(0, 16, h).tolist()
    return [lx[c] for r in range(h) for c in range(w)], [ly[r] for r in range(h) for c in range(w)]


def as_rope(angles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return angles.cos().float(), angles.sin().float()


def randomise(module: torch.nn.Module, seed: int, std: float = 0.1) -> torch.nn.Module:
    """Every parameter non-zero (the zero-initialised final layer too), so that mix-ups show."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std + (1.0 if "norm" in name else 0.0))  # norm weights near 1
    return module


def test_time_embedding_is_raw_t_max_period_10_cos_then_sin():
    t = [0.0, 0.25, 0.999, 1.0]
    assert torch.allclose(timestep_embedding(torch.tensor(t)), ref_time_features(t), atol=1e-6)
    net = PixNerd(CPU)
    assert torch.allclose(net.t_embedder(torch.tensor(t)), net.t_embedder.mlp(ref_time_features(t)), atol=1e-6)


@pytest.mark.parametrize("patch", [4, CPU.patch, 16])
def test_dct_features(patch):
    assert torch.allclose(dct_features(patch, 8), ref_dct(patch, 8), atol=1e-6)


def test_model_dct_buffer_is_the_patch_basis_and_not_saved():
    net = PixNerd(CPU)
    assert torch.allclose(net.dct, ref_dct(CPU.patch, CPU.dct_freqs), atol=1e-6)
    assert "dct" not in net.state_dict()


def test_rmsnorm_is_weighted_and_computed_in_float32():
    norm = RMSNorm(16)
    with torch.no_grad():
        norm.weight.copy_(torch.linspace(0.5, 2, 16))
    x = torch.randn(3, 16) * 300  # x^2 overflows float16
    ref = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)
    assert torch.allclose(norm(x), norm.weight * ref, atol=1e-5)
    half = norm(x.half())
    assert torch.isfinite(half).all()
    assert torch.allclose(half.float(), norm.weight * ref.half().float(), atol=1e-2)


def test_fresh_pixnerd_outputs_exactly_zero():
    torch.manual_seed(0)
    net = PixNerd(CPU)
    assert not net.final_layer.linear.weight.any() and not net.final_layer.linear.bias.any()
    out = net(torch.randn(2, 3, 16, 24), torch.rand(2), torch.tensor([3, NULL_LABEL]))
    assert out.shape == (2, 3, 16, 24) and torch.equal(out, torch.zeros_like(out))


def scaled_generator_output(block: FieldBlock, rows: list[int], factor: float) -> FieldBlock:
    """``block`` with the given outputs of ``param_generator1`` multiplied by ``factor``."""
    with torch.no_grad():
        block.param_generator1[0].weight[rows] *= factor
        block.param_generator1[0].bias[rows] *= factor
    return block


def test_field_weights_are_l2_normalised_along_the_input_dimension():
    width, ratio, dim = 8, 2, 16
    block = randomise(FieldBlock(dim, width, ratio), seed=0)
    x, s = torch.randn(5, 4, width), torch.randn(5, dim)
    out = block(x, s)
    everything = list(range(2 * width * width * ratio))
    assert torch.allclose(scaled_generator_output(block, everything, 3.7)(x, s), out, atol=1e-5)
    # fc1 is (h, h r) = (input, output): one output unit's input weights are normalised together ...
    column = [i * width * ratio + 5 for i in range(width)]
    assert torch.allclose(scaled_generator_output(block, column, 4.0)(x, s), out, atol=1e-5)
    # ... but one input's weights across output units are not.
    row = [2 * width * ratio + j for j in range(width * ratio)]
    assert not torch.allclose(scaled_generator_output(block, row, 4.0)(x, s), out, atol=1e-3)


def test_field_and_final_layer_equal_the_release_formulas():
    """The folded RMSNorm weight (norm(x) W = (x / rms(x)) diag(w) W) computes the release's
    x + fc2(SiLU(fc1(RMSNorm(x)))) and linear(RMSNorm(x)), with norm weights far from 1."""
    width, ratio, dim = 8, 2, 16
    block = randomise(FieldBlock(dim, width, ratio), seed=1, std=0.5)
    x, s = torch.randn(5, 4, width), torch.randn(5, dim)
    fc1, fc2 = block.param_generator1(s).chunk(2, dim=-1)
    fc1 = F.normalize(fc1.view(-1, width, width * ratio), dim=-2)
    fc2 = F.normalize(fc2.view(-1, width * ratio, width), dim=-2)
    assert torch.allclose(block(x, s), x + F.silu(block.norm(x) @ fc1) @ fc2, atol=1e-5)
    final = randomise(FinalLayer(width, 3), seed=2, std=0.5)
    assert torch.allclose(final(x), final.linear(final.norm(x)), atol=1e-6)


@pytest.mark.parametrize("overlap", [0, 1, 4])
def test_field_inputs_are_the_windows_of_the_embedded_maps(overlap):
    """Each patch's window of the per-pixel embedding (zero past the image), read with F.unfold
    independently, plus the DCT part of x_embedder."""
    net = randomise(PixNerd(PixNerdShape(hidden=32, heads=2, patch=8, transformer_blocks=1, field_blocks=1, field_width=8),
                            channels=3, pixel_extra=5, overlap=overlap), seed=3)
    x, extra = torch.randn(2, 3, 16, 24), torch.randn(2, 5, 8, 12)
    weight, bias = net.x_embedder.embedder[0].weight, net.x_embedder.embedder[0].bias
    dct = net.dct @ weight[:, 3:3 + 64].T + bias
    emb = F.conv2d(x, weight[:, :3, None, None]) + F.interpolate(F.conv2d(extra, weight[:, 67:, None, None]), size=(16, 24),
                                                                 mode="bilinear", align_corners=False)
    k = 8 + 2 * overlap
    windows = F.unfold(emb, kernel_size=k, stride=8, padding=overlap).view(2, 8, k * k, 6).permute(0, 3, 2, 1)
    assert torch.allclose(net.field_inputs(x, extra), (windows + dct).flatten(0, 1), atol=1e-5)


@pytest.mark.parametrize("overlap", [0, 4])
def test_field_in_chunks_is_the_field_in_one_pass(monkeypatch, overlap):
    """At CPU inference the neural field runs over chunks of patches (cache-sized): the same
    output as one pass over every patch, which training (gradients on) still takes."""
    import genseg.methods.flowseg.pixnerd as pixnerd
    net = randomise(PixNerd(PixNerdShape(hidden=32, heads=2, patch=8, transformer_blocks=1, field_blocks=2, field_width=8),
                            channels=3, overlap=overlap), seed=4, std=0.3).eval()
    x, t, y = torch.randn(3, 3, 24, 16), torch.rand(3), torch.zeros(3, dtype=torch.long)
    with torch.no_grad():
        whole = net(x, t, y)
        calls = []
        monkeypatch.setattr(pixnerd, "FIELD_CHUNK_ROWS", 5 * (8 + 2 * overlap) ** 2)  # 5 patches of the 18 per chunk
        net.final_layer.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
        chunked = net(x, t, y)
    assert len(calls) == 4 and torch.allclose(chunked, whole, atol=1e-6)
    calls.clear()
    net(x, t, y)
    assert len(calls) == 1  # gradients on: one pass


def test_rope_angles_follow_the_release():
    head_dim, h, w = 16, 3, 5
    cos, sin = rope_2d(head_dim, h, w)
    angles = ref_rope_angles(head_dim, *grid_positions(h, w))
    assert torch.allclose(cos, angles.cos().float(), atol=1e-5) and torch.allclose(sin, angles.sin().float(), atol=1e-5)


def test_rope_is_a_rotation_of_interleaved_pairs():
    head_dim, h, w = 16, 3, 4
    q = torch.randn(2, h * w, 2, head_dim, generator=torch.Generator().manual_seed(0))
    rope = rope_2d(head_dim, h, w)
    rotated = apply_rope(q, rope)
    assert torch.allclose(rotated.norm(dim=-1), q.norm(dim=-1), atol=1e-5)
    angles = ref_rope_angles(head_dim, *grid_positions(h, w))
    as_complex = torch.view_as_complex(q.double().unflatten(-1, (-1, 2)).contiguous())
    expected = torch.view_as_real(as_complex * torch.polar(torch.ones_like(angles), angles)[None, :, None]).flatten(-2)
    assert torch.allclose(rotated.double(), expected, atol=1e-5)


def test_rope_logits_depend_only_on_the_offset():
    head_dim, h, w = 16, 4, 4
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, h * w, 1, head_dim, generator=g), torch.randn(1, h * w, 1, head_dim, generator=g)

    def logits(rope):
        return (apply_rope(q, rope)[0, :, 0] @ apply_rope(k, rope)[0, :, 0].T).double()

    xs, ys = grid_positions(h, w)
    base = logits(as_rope(ref_rope_angles(head_dim, xs, ys)))
    assert torch.allclose(logits(rope_2d(head_dim, h, w)), base, atol=1e-4)
    shifted = logits(as_rope(ref_rope_angles(head_dim, [x + 3.5 for x in xs], [y - 2.25 for y in ys])))
    assert torch.allclose(shifted, base, atol=1e-4)
    # with the same q and k at every token, tokens at the same offset give the same logit
    q_all, k_all = q[:, :1].expand_as(q), k[:, :1].expand_as(k)
    rope = rope_2d(head_dim, h, w)
    grid = apply_rope(q_all, rope)[0, :, 0] @ apply_rope(k_all, rope)[0, :, 0].T
    at = lambda r, c: r * w + c  # noqa: E731
    assert torch.allclose(grid[at(0, 0), at(1, 2)], grid[at(2, 1), at(3, 3)], atol=1e-4)
    assert not torch.allclose(grid[at(0, 0), at(0, 1)], grid[at(0, 0), at(0, 2)], atol=1e-3)


def test_attention_and_transformer_block_follow_the_release():
    dim, heads, n = 32, 2, 6
    torch.manual_seed(0)
    block = randomise(TransformerBlock(dim, heads, 4.0), seed=1)
    x, c = torch.randn(2, n, dim), torch.randn(2, 1, dim)
    rope = rope_2d(dim // heads, 2, 3)
    attn: Attention = block.attn
    # attention: qkv -> per-head RMSNorm on q, k -> RoPE -> softmax(q k^T / sqrt(d)) v -> proj
    q, k, v = attn.qkv(x).view(2, n, 3, heads, dim // heads).unbind(2)
    q, k = apply_rope(attn.q_norm(q), rope), apply_rope(attn.k_norm(k), rope)
    weights = torch.softmax(torch.einsum("bigd,bjgd->bgij", q, k) / math.sqrt(dim // heads), dim=-1)
    ref_attn = attn.proj(torch.einsum("bgij,bjgd->bigd", weights, v).reshape(2, n, dim))
    assert torch.allclose(attn(x, rope), ref_attn, atol=1e-5)
    # block: chunks shift, scale, gate (attention) then shift, scale, gate (MLP); x * (1 + scale) + shift
    sh1, sc1, g1, sh2, sc2, g2 = block.adaLN_modulation(c).chunk(6, dim=-1)
    h = x + g1 * attn(block.norm1(x) * (1 + sc1) + sh1, rope)
    mlp_in = block.norm2(h) * (1 + sc2) + sh2
    ref = h + g2 * block.mlp.w2(F.silu(block.mlp.w1(mlp_in)) * block.mlp.w3(mlp_in))
    assert torch.allclose(block(x, c, rope), ref, atol=1e-5)
    assert block.mlp.w1.out_features == int(2 * 4 * dim / 3)


# --- 3. the converter ------------------------------------------------------------------------


class TrainerHyperParameters:
    """A Python object in a checkpoint, as Lightning stores hyper-parameters: the safe loader refuses it."""

    def __init__(self, lr: float):
        self.lr = lr


def random_pixnerd(seed: int, shape=CPU) -> PixNerd:
    torch.manual_seed(seed)
    return randomise(PixNerd(shape), seed, std=0.05)


def write_release(path: Path, trained: dict, ema: dict, **extra) -> Path:
    """A checkpoint laid out like the release's Lightning .ckpt."""
    state = {f"denoiser.{k}": v for k, v in trained.items()}
    state.update({f"ema_denoiser.{k}": v for k, v in ema.items()})
    state["repa_projector.0.weight"] = torch.randn(8, CPU.hidden)
    ckpt = {"state_dict": state, "epoch": 3, "global_step": 1200,
            "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-4}]}], **extra}
    torch.save(ckpt, path)
    return path


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """A pixnerd-cpu stand-in release (.ckpt), its trained / EMA state dicts, and its conversion."""
    root = tmp_path_factory.mktemp("pixnerd")
    trained, ema = random_pixnerd(0).state_dict(), random_pixnerd(1).state_dict()
    ckpt = write_release(root / "pixnerd-cpu.ckpt", trained, ema)
    converted = root / "pixnerd-cpu.safetensors"
    convert_pixnerd(ckpt, converted)
    return SimpleNamespace(root=root, ckpt=ckpt, trained=trained, ema=ema, converted=converted)


def assert_same_tensors(got: dict, expected: dict, skip=()) -> None:
    keys = [k for k in expected if k not in skip]
    assert [k for k in keys if not torch.equal(got[k], expected[k])] == []


@pytest.mark.parametrize("ema", [False, True])
def test_convert_keeps_one_denoiser_that_loads_strictly(release, tmp_path, ema):
    out = tmp_path / "out.safetensors"
    result = convert_pixnerd(release.ckpt, out, ema=ema)
    source, other = (release.ema, release.trained) if ema else (release.trained, release.ema)
    dropped_copy = "state_dict.denoiser" if ema else "state_dict.ema_denoiser"
    assert result == {"out": str(out), "network": "pixnerd-cpu", "kept": len(source),
                      "dropped": {dropped_copy: len(other), "epoch": 1, "global_step": 1,
                                  "optimizer_states": 1, "state_dict.repa_projector": 1}}
    _, metadata = read_pixnerd_file(out)
    assert metadata["format"] == FORMAT and metadata["network"] == "pixnerd-cpu"
    assert metadata["weights"] == ("ema_denoiser" if ema else "denoiser")
    net = PixNerd(CPU)
    loaded = net.load_state_dict(load_file(out), strict=True)
    assert not loaded.missing_keys and not loaded.unexpected_keys
    assert_same_tensors(net.state_dict(), source)
    assert not torch.equal(net.state_dict()["blocks.0.attn.qkv.weight"], other["blocks.0.attn.qkv.weight"])


def test_cli_convert_prints_json(release, tmp_path, capsys):
    out = tmp_path / "cli" / "ema.safetensors"
    assert main(["convert-pixnerd", str(release.ckpt), str(out), "--ema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["out"] == str(out) and printed["network"] == "pixnerd-cpu" and printed["kept"] == len(release.ema)
    assert_same_tensors(load_file(out), release.ema)


def test_python_objects_need_trust_pickle(release, tmp_path, capsys):
    ckpt = write_release(tmp_path / "objects.ckpt", release.trained, release.ema, hyper_parameters=TrainerHyperParameters(1e-4))
    out = tmp_path / "out.safetensors"
    with pytest.raises(PixNerdWeightsError, match=r"objects\.ckpt.*--trust-pickle"):
        convert_pixnerd(ckpt, out)
    assert main(["convert-pixnerd", str(ckpt), str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("genseg convert-pixnerd: error: ") and "--trust-pickle" in err
    assert not out.exists()

    assert main(["convert-pixnerd", str(ckpt), str(out), "--trust-pickle"]) == 0
    assert json.loads(capsys.readouterr().out)["dropped"]["hyper_parameters"] == 1
    assert_same_tensors(load_file(out), release.trained)


# --- 4. loading into FlowSeg -----------------------------------------------------------------


def flowseg(classes: int = 5, **options):
    torch.manual_seed(0)
    return build_method(ModelConfig("flowseg", {"pixel_features": PIXEL_FEATURES, **options}), classes)


@pytest.mark.parametrize("condition, widened", [
    (None, ["x_embedder.embedder.0.weight"]),  # the default: ("encoder", "pixels")
    (["stem"], ["s_embedder.proj.weight"]),
    (["stem", "pixels"], ["s_embedder.proj.weight", "x_embedder.embedder.0.weight"]),
    (["encoder"], []),
])
def test_kronecker_loads_with_widened_inputs(release, condition, widened):
    model = flowseg(pixnerd_file=str(release.converted), **({"condition": condition} if condition else {}))
    assert model.init_report == {"widened": widened, "reinitialised": []}
    own, stored = model.net.denoiser.state_dict(), load_file(release.converted)
    assert_same_tensors(own, stored, skip=widened)
    for key in widened:
        columns = stored[key].shape[1]
        assert own[key].shape[0] == stored[key].shape[0] and own[key].shape[1] > columns
        assert torch.equal(own[key][:, :columns], stored[key]) and not own[key][:, columns:].any()


@pytest.mark.parametrize("encoding, classes", [("bits", 12), ("onehot", 5)])
def test_other_centroid_spaces_reinitialise_the_io_layers(release, encoding, classes):
    model = flowseg(classes, encoding=encoding, pixnerd_file=str(release.converted))
    reinitialised = ["s_embedder.proj.weight", "x_embedder.embedder.0.weight", "final_layer.linear.weight", "final_layer.linear.bias"]
    assert model.init_report == {"widened": [], "reinitialised": reinitialised}
    own = model.net.denoiser.state_dict()
    assert_same_tensors(own, load_file(release.converted), skip=reinitialised)
    fresh = flowseg(classes, encoding=encoding).net.denoiser.state_dict()  # same seed, nothing loaded
    assert_same_tensors(own, fresh, skip=[k for k in own if k not in reinitialised])
    assert own["final_layer.linear.bias"].shape == (model.centroids.shape[1],)


@pytest.mark.parametrize("condition", [["stem"], ["stem", "pixels"], ["pixels"], ["encoder"], ["stem", "encoder", "pixels"]])
def test_widening_preserves_the_pretrained_function(release, condition):
    model = flowseg(pixnerd_file=str(release.converted), condition=condition)
    plain = PixNerd(CPU)
    assert load_pixnerd(plain, release.converted) == {"widened": [], "reinitialised": []}
    g = torch.Generator().manual_seed(0)
    images, x = torch.rand(2, 3, 32, 32, generator=g), torch.randn(2, 3, 32, 32, generator=g)
    t, y = torch.tensor([0.3, 0.8]), torch.full((2,), NULL_LABEL)
    with torch.no_grad():
        context = model.context(images)
        assert context.keys() == {{"stem": "stem_extra", "pixels": "pixel_extra", "encoder": "token_add"}[c] for c in condition}
        expected = plain(x, t, y)
        assert expected.abs().max() > 1e-2  # the stand-in's final layer is not zero
        assert torch.allclose(model.net.denoiser(x, t, y, **context), expected, atol=1e-5)
        assert torch.allclose(model.net(x, t, context), expected, atol=1e-5)


# --- 5. bad PixNerd files ----------------------------------------------------------------------


def expect_weights_error(path: Path, pattern: str, **options) -> None:
    """Building FlowSeg with ``pixnerd_file=path`` stops with a message naming the file, then ``pattern``."""
    with pytest.raises(PixNerdWeightsError, match=re.escape(str(path)) + pattern):
        flowseg(pixnerd_file=str(path), **options)


def test_missing_and_foreign_files_are_named(release, tmp_path):
    expect_weights_error(tmp_path / "missing.safetensors", r" does not exist .*genseg convert-pixnerd")
    dvae = tmp_path / "dvae.safetensors"
    save_file({"encoder.blocks.input.w": torch.zeros(2, 3, 7, 7)}, str(dvae), metadata={"format": DVAE_FORMAT})
    expect_weights_error(dvae, r" is a file tagged 'genseg-dalle-dvae', not PixNerd weights; expected .*genseg convert-pixnerd")
    untagged = tmp_path / "untagged.safetensors"
    save_file(load_file(release.converted), str(untagged))
    expect_weights_error(untagged, r" is a safetensors file without genseg's format tag, not PixNerd weights")
    expect_weights_error(release.ckpt, r" is a PyTorch pickle .*genseg convert-pixnerd")


def test_truncated_and_garbage_files_are_named(release, tmp_path):
    blob = release.converted.read_bytes()
    for name, content in [("truncated", blob[: len(blob) // 2]), ("header-only", blob[:40]), ("garbage", b"not a tensor file " * 8), ("empty", b"")]:
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(content)
        expect_weights_error(path, r" is not a readable safetensors file .*expected safetensors weights of PixNerd")


def test_any_header_length_reads_as_safetensors(release, tmp_path):
    """safetensors starts with the header's length (u64, little-endian): a length of 128 mod 256
    starts the file with byte 0x80 like a pickle, and must still read."""
    tensors, metadata = read_pixnerd_file(release.converted)
    blob = next(b for pad in range(0, 512, 8) if (b := save(tensors, metadata={**metadata, "pad": "x" * pad}))[0] == 0x80)
    path = tmp_path / "header-0x80.safetensors"
    path.write_bytes(blob)
    read, _ = read_pixnerd_file(path)
    assert_same_tensors(read, tensors)


@pytest.mark.parametrize("options, pattern", [
    ({"hidden_size": 256}, r" \(pixnerd-cpu\): s_embedder\.proj\.weight has shape \(128, 192\), the model expects \(256, 192\)"),
    ({"transformer_blocks": 3}, r" \(pixnerd-cpu\) does not fit the model's PixNerd: missing .*unexpected .*block counts differ"),
    ({"field_blocks": 1}, r" \(pixnerd-cpu\) does not fit the model's PixNerd: missing \[\], unexpected \['blocks\.3\."),
])
def test_wrong_shapes_are_named(release, options, pattern):
    expect_weights_error(release.converted, pattern, **options)


def test_converter_refuses_what_is_not_a_release(release, tmp_path, capsys):
    cases = [
        ("no-state-dict", {"model": release.trained}, None, r"has no 'state_dict' mapping; expected a PyTorch Lightning checkpoint"),
        ("other-prefix", {"state_dict": {f"model.{k}": v for k, v in release.trained.items()}}, None,
         r"no 'denoiser\.\*' tensors in state_dict \(found prefixes: \['model'\]\)"),
        ("no-ema", {"state_dict": {f"denoiser.{k}": v for k, v in release.trained.items()}}, "--ema",
         r"no 'ema_denoiser\.\*' tensors in state_dict \(found prefixes: \['denoiser'\]\)"),
        ("lacks-a-tensor", {"state_dict": {f"denoiser.{k}": v for k, v in release.trained.items() if k != "blocks.1.mlp.w2.weight"}}, None,
         r"differ from PixNerd built with the shape they imply.*blocks\.1\.mlp\.w2\.weight"),
    ]
    for name, checkpoint, flag, pattern in cases:
        ckpt, out = tmp_path / f"{name}.ckpt", tmp_path / f"{name}.safetensors"
        torch.save(checkpoint, ckpt)
        with pytest.raises(PixNerdWeightsError, match=re.escape(str(ckpt)) + ".*" + pattern):
            convert_pixnerd(ckpt, out, ema=flag == "--ema")
        assert main(["convert-pixnerd", str(ckpt), str(out), *([flag] if flag else [])]) == 2
        err = capsys.readouterr().err
        assert err.startswith("genseg convert-pixnerd: error: ") and str(ckpt) in err
        assert not out.exists()

    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(PixNerdWeightsError, match=re.escape(str(garbage)) + r" is not a readable PyTorch checkpoint"):
        convert_pixnerd(garbage, tmp_path / "out.safetensors")
    missing = tmp_path / "missing.ckpt"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing)) + r" does not exist"):
        convert_pixnerd(missing, tmp_path / "out.safetensors")
    assert main(["convert-pixnerd", str(missing), str(tmp_path / "out.safetensors")]) == 2
    assert "missing.ckpt does not exist" in capsys.readouterr().err


# --- 6. REPA -------------------------------------------------------------------------------------

TINY_NET = {"hidden_size": 32, "num_heads": 2, "transformer_blocks": 2, "field_width": 8}


@pytest.fixture(scope="module")
def repa_files(tmp_path_factory):
    """Randomly initialised small timm encoders (a ViT with a class token, a CNN) as .safetensors."""
    root = tmp_path_factory.mktemp("repa")
    files = {}
    for name in ("test_vit", "test_resnet"):
        torch.manual_seed(0)
        files[name] = root / f"{name}.safetensors"
        save_file(timm.create_model(name, num_classes=0).state_dict(), str(files[name]))
    return files


def repa_flowseg(name: str, path: Path, **options):
    return flowseg(repa_weight=0.5, repa_block=1, repa_encoder=name, repa_file=str(path), **TINY_NET, **options)


@pytest.mark.parametrize("name", ["test_vit", "test_resnet"])
def test_repa_trains_the_projector_not_the_encoder(repa_files, name):
    model = repa_flowseg(name, repa_files[name]).train()
    encoder = model.repa.model
    assert_same_tensors(encoder.state_dict(), load_file(repa_files[name]))  # read from the file
    assert not encoder.training and not any(p.requires_grad for p in encoder.parameters())
    state = model.state_dict()
    assert any(k.startswith("repa_projector.") for k in state)
    assert not any(k.startswith("repa.") for k in state)
    assert not {id(p) for p in encoder.parameters()} & {id(p) for p in model.parameters()}
    encoder_before = {k: v.clone() for k, v in encoder.state_dict().items()}
    projector_before = {k: v.clone() for k, v in model.repa_projector.state_dict().items()}

    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 3, 32, 32, generator=g), torch.randint(0, 5, (2, 32, 32), generator=g)
    logs = fixed_batch_steps(model, x, y, 6, 3e-3)
    assert {"loss", "flow_loss", "repa_loss"} <= logs[0].keys()
    assert logs[0]["loss"] == pytest.approx(logs[0]["flow_loss"] + 0.5 * logs[0]["repa_loss"], rel=1e-5)
    assert all(math.isfinite(log["loss"]) for log in logs)
    assert logs[-1]["loss"] < logs[0]["loss"] and logs[-1]["repa_loss"] < logs[0]["repa_loss"]
    assert_same_tensors(encoder.state_dict(), encoder_before)
    after = model.repa_projector.state_dict()
    assert all(not torch.equal(after[k], projector_before[k]) for k in after)


@pytest.mark.parametrize("options, pattern", [
    ({"repa_weight": 0.5}, r"model\.repa_encoder.*model\.repa_file"),
    ({"repa_weight": 0.5, "repa_encoder": "test_vit"}, r"model\.repa_encoder.*model\.repa_file"),
    ({"repa_weight": 0.5, "repa_encoder": "test_vit", "repa_file": "x.safetensors", "repa_block": 3}, r"model\.repa_block must be in 1\.\.2"),
    ({"repa_weight": 0.5, "repa_encoder": "test_vit", "repa_file": "x.safetensors", "repa_block": 0}, r"model\.repa_block must be in 1\.\.2"),
    ({"repa_weight": -1.0}, r"model\.repa_weight must be >= 0"),
])
def test_repa_config_errors_are_named(options, pattern):
    with pytest.raises(ConfigError, match=pattern):
        RunConfig.from_dict({"model": {"method": "flowseg", **options}})


def test_repa_file_errors_are_named(repa_files, tmp_path):
    missing = tmp_path / "missing.safetensors"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        repa_flowseg("test_vit", missing)
    junk = tmp_path / "junk.safetensors"
    save_file({"foo": torch.zeros(3)}, str(junk))
    for name, path in [("test_vit", junk), ("test_vit", repa_files["test_resnet"]), ("test_resnet", junk)]:
        with pytest.raises(RuntimeError, match=re.escape(str(path)) + f" do not fit the timm model '{name}'"):
            repa_flowseg(name, path)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a tensor file " * 8)
    with pytest.raises(RuntimeError, match=re.escape(str(garbage)) + " are not a readable safetensors file"):
        repa_flowseg("test_vit", garbage)
