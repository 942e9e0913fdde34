"""MaskFormer / Mask2Former ``model.backbone_file``: a timm swin_* safetensors file in the transformers Swin backbone.

A tiny timm Swin (16 wide, two blocks per stage so shifted windows are exercised, window 4)
is saved with safetensors; the model built with matching options loads it through
:func:`timm_swin_to_hf`. Checked: every backbone weight equals its timm tensor (q/k/v rows of
the fused qkv, downsampling moved to the previous stage), the backbone's four feature maps
equal timm's stage outputs, wrong widths and missing files fail naming the option.

The functional check runs at 256 x 256 (stage sizes 64, 32, 16, 8; window 4): every stage is
a multiple of the window and larger than it. timm fixes a stage's window to its size and drops
the shift when the stage is no larger than the window (from ``img_size``); transformers'
MaskFormerSwin keeps the window and shift at every size (as mmseg's Swin), so at such sizes the
two differ by design, not by the weights. (Checked by hand at Swin-T size: stage outputs agree
within 4e-6 at 448 px; at 224 px only the last stage differs, timm's 7 x 7 stage being unshifted.)
"""

import pytest
import timm
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from genseg.config import ModelConfig
from genseg.methods import build_method
from genseg.methods.maskformer import timm_swin_to_hf

TINY = {"embed_dim": 16, "depths": [2, 2, 2, 2], "num_heads": [1, 2, 4, 8], "window_size": 4}
SIZE = 256


def timm_swin(embed_dim=16, seed=0):
    torch.manual_seed(seed)
    net = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, embed_dim=embed_dim, depths=TINY["depths"],
                            num_heads=TINY["num_heads"], window_size=TINY["window_size"], img_size=SIZE)
    with torch.no_grad():  # non-trivial norms and position biases (timm inits them to 1 / 0 / small)
        for name, param in net.named_parameters():
            if "norm" in name or "relative_position_bias_table" in name:
                param.add_(0.1 * torch.randn_like(param))
    return net.eval()


def save(net, path):
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return str(path)


def backbone_of(method, **options):
    model = build_method(ModelConfig(method, {**TINY, **options}), 5).eval()
    return model.net.model.pixel_level_module.encoder


def test_key_map_splits_qkv_moves_downsampling_and_drops_the_head():
    state = timm_swin().state_dict()
    hf = timm_swin_to_hf(state)
    qkv = state["layers.2.blocks.1.attn.qkv.weight"]
    for i, part in enumerate(("query", "key", "value")):
        assert torch.equal(hf[f"model.encoder.layers.2.blocks.1.attention.self.{part}.weight"], qkv[64 * i:64 * (i + 1)])
    assert torch.equal(hf["model.encoder.layers.0.downsample.reduction.weight"], state["layers.1.downsample.reduction.weight"])
    assert torch.equal(hf["model.encoder.layers.2.downsample.norm.bias"], state["layers.3.downsample.norm.bias"])
    assert torch.equal(hf["model.layernorm.weight"], state["norm.weight"])
    assert not any(k.startswith("head") or "relative_position_index" in k or "attn_mask" in k for k in hf)
    assert timm_swin_to_hf({"layers.0.blocks.0.attn.unknown": torch.zeros(1)}) == {"layers.0.blocks.0.attn.unknown": torch.zeros(1)}


@pytest.mark.parametrize("method", ["maskformer", "mask2former"])
def test_backbone_file_loads_every_weight_and_reproduces_timm_stage_outputs(method, tmp_path):
    reference = timm_swin()
    backbone = backbone_of(method, backbone_file=save(reference, tmp_path / "swin.safetensors"))
    # (a) every weight: the mapped timm tensor (names as transformers' MaskFormerSwin / Swin)
    mapped = timm_swin_to_hf(reference.state_dict())
    if method == "mask2former":
        from genseg.methods.maskformer import _swin_names

        mapped = {_swin_names(k): v for k, v in mapped.items()}
    buffers = {name for name, _ in backbone.named_buffers()}
    loaded = {k: v for k, v in backbone.state_dict().items() if k not in buffers}
    norms = [k for k in loaded if k.startswith("hidden_states_norms.")]
    assert sorted(set(loaded) - set(norms)) == sorted(mapped)
    for key, value in mapped.items():
        assert torch.equal(loaded[key], value), key
    for key in norms:  # new per-stage output norms (not in an ImageNet file): their init, as the official code's norm{i}
        assert torch.equal(loaded[key], torch.ones_like(loaded[key]) if key.endswith("weight") else torch.zeros_like(loaded[key]))
    # (b) the same function: the backbone's feature maps = LayerNorm(timm's stage outputs)
    x = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = backbone(x).feature_maps
        theirs = reference.forward_intermediates(x, intermediates_only=True)  # NCHW, before timm's final norm
    assert [tuple(f.shape) for f in ours] == [tuple(f.shape) for f in theirs] == [(1, 16 * 2**i, SIZE // 4 // 2**i, SIZE // 4 // 2**i) for i in range(4)]
    for stage, (a, b) in enumerate(zip(ours, theirs)):
        expected = F.layer_norm(b.permute(0, 2, 3, 1), (b.shape[1],)).permute(0, 3, 1, 2)
        assert torch.allclose(a, expected, atol=1e-4), (stage, (a - expected).abs().max())
    # and the file matters: another init gives other features
    with torch.no_grad():
        assert not torch.allclose(backbone_of(method)(x).feature_maps[3], ours[3], atol=1e-2)


def test_backbone_file_of_another_width_names_the_option_file_and_key(tmp_path):
    wide = save(timm_swin(embed_dim=24), tmp_path / "swin24.safetensors")
    pattern = (r"model\.backbone_file .*swin24\.safetensors does not fit the model's Swin backbone.*first: "
               r"model\.embeddings\.patch_embeddings\.projection\.weight \(file: patch_embed\.proj\.weight\): "
               r"expected shape \(16, 3, 4, 4\), found \(24, 3, 4, 4\)")
    with pytest.raises(ValueError, match=pattern):
        backbone_of("maskformer", backbone_file=wide)
    state = timm_swin().state_dict()
    del state["layers.3.blocks.1.mlp.fc2.bias"]
    save_file({**{k: v.contiguous() for k, v in state.items()}, "extra.weight": torch.zeros(2)}, str(tmp_path / "holes.safetensors"))
    with pytest.raises(ValueError, match=r"holes\.safetensors .*2 missing, unexpected or mismatched keys; first: "
                                         r"model\.encoder\.layers\.3\.blocks\.1\.output\.dense\.bias: expected shape \(128,\), found none"):
        backbone_of("maskformer", backbone_file=str(tmp_path / "holes.safetensors"))


@pytest.mark.parametrize("method", ["maskformer", "mask2former"])
def test_missing_backbone_file_and_pickles_and_pretrained_dir_are_errors(method, tmp_path):
    missing = tmp_path / "swin_tiny_patch4_window7_224.ms_in1k.safetensors"
    with pytest.raises(FileNotFoundError, match=rf"model\.backbone_file {missing} does not exist; expected a safetensors file of a timm swin_\* backbone"):
        backbone_of(method, backbone_file=str(missing))
    pickle = tmp_path / "swin.pth"
    torch.save({}, pickle)
    with pytest.raises(ValueError, match=r"model\.backbone_file .*swin\.pth is not a \.safetensors file"):
        backbone_of(method, backbone_file=str(pickle))
    with pytest.raises(ValueError, match=r"model\.backbone_file and model\.pretrained_dir exclude each other"):
        backbone_of(method, backbone_file=str(missing), pretrained_dir=str(tmp_path))


def test_paper_config_names_the_swin_file_for_preflight_and_weights(tmp_path, monkeypatch):
    import yaml
    from conftest import REPO

    from genseg.experiments import apply_overlay, run_configs
    from genseg.preflight import check as preflight_check
    from genseg.weights import needed_weights

    monkeypatch.setenv("GENSEG_WEIGHTS", str(tmp_path / "weights"))
    workflow = apply_overlay({**yaml.safe_load((REPO / "workflow/config/paper-flowseg-ade20k.yaml").read_text()), "overlay": ""})
    workflow["experiments"] = {"maskformer-swin-t": workflow["experiments"]["maskformer-swin-t"]}
    runs = run_configs(workflow, str(tmp_path), tmp_path / "runs")
    [run] = runs.values()
    assert run.model.options["backbone_file"] == str(tmp_path / "weights" / "swin_tiny_patch4_window7_224.ms_in1k.safetensors")
    assert [e["name"] for e in needed_weights(workflow)] == ["swin-t-in1k"]
    [problem] = [p for p in preflight_check(workflow, runs, tmp_path / "runs") if "swin" in p]
    assert "swin-t-in1k" in problem and "model.backbone_file of maskformer-swin-t" in problem and "genseg weights fetch --name swin-t-in1k" in problem
    smoke = apply_overlay({**yaml.safe_load((REPO / "workflow/config/paper-flowseg-ade20k.yaml").read_text()), "overlay": "smoke"})
    assert smoke["experiments"]["maskformer-swin-t"]["model"]["backbone_file"] == ""


def test_paper_row_options_fit_a_swin_t_shaped_file(tmp_path):
    """The maskformer-swin-t row's Swin options take a file of timm's swin_tiny_patch4_window7_224 shapes (random here)."""
    import yaml
    from conftest import REPO

    reference = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False)
    row = yaml.safe_load((REPO / "workflow/config/paper-flowseg-ade20k.yaml").read_text())["experiments"]["maskformer-swin-t"]["model"]
    swin = {k: row[k] for k in ("embed_dim", "depths", "num_heads", "window_size")}
    backbone = build_method(ModelConfig("maskformer", {**swin, "backbone_file": save(reference, tmp_path / "swin_t.safetensors")}), 150)
    backbone = backbone.net.model.pixel_level_module.encoder
    qkv = reference.layers[2].blocks[5].attn.qkv.weight
    assert torch.equal(backbone.model.encoder.layers[2].blocks[5].attention.self.value.weight, qkv[2 * 384:])
    assert torch.equal(backbone.model.encoder.layers[2].downsample.reduction.weight, reference.layers[3].downsample.reduction.weight)
