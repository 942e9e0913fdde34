import pytest
import timm
import torch
from safetensors.torch import save_file

from genseg.config import ModelConfig
from genseg.methods import build_method


def test_deeplabv3plus_shapes_and_one_step_lowers_loss():
    torch.manual_seed(0)
    model = build_method(ModelConfig("deeplabv3plus", {"encoder": "tu-resnet18"}), 5)
    x, y = torch.rand(2, 3, 64, 64), torch.randint(0, 5, (2, 64, 64))
    y[:, :4] = 255
    model.eval()
    assert model.predict(torch.rand(1, 3, 50, 70)).shape == (1, 50, 70)  # any size: padded inside
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    first, _ = model.training_loss(x, y)
    for _ in range(3):
        loss, _ = model.training_loss(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert model.training_loss(x, y)[0].item() < first.item()


def test_local_pretrained_file_is_loaded_without_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    reference = timm.create_model("resnet18", pretrained=False)
    path = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(path))
    model = build_method(ModelConfig("deeplabv3plus", {"encoder": "tu-resnet18", "pretrained_file": str(path)}), 4)
    loaded = dict(model.net.encoder.model.named_parameters())
    assert torch.equal(loaded["conv1.weight"], reference.conv1.weight)
    assert torch.equal(loaded["layer4.1.conv2.weight"], reference.layer4[1].conv2.weight)


def test_missing_pretrained_file_names_path_and_format(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.safetensors does not exist; expected a timm checkpoint"):
        build_method(ModelConfig("deeplabv3plus", {"pretrained_file": str(tmp_path / "nope.safetensors")}), 4)


# ---------------------------------------------------------------------------- every baseline

import os  # noqa: E402
from pathlib import Path  # noqa: E402

import yaml  # noqa: E402

from genseg.config import ConfigError, RunConfig  # noqa: E402
from genseg.experiments import run_configs  # noqa: E402
from genseg.methods.baselines import PAPER_MODELS, PUBLISHED_PARAMS_M  # noqa: E402
from genseg.methods.ocrnet import ObjectContext, SpatialGather  # noqa: E402

BASELINES = ["deeplabv3plus", "segformer", "upernet", "maskformer", "mask2former", "ocrnet"]
STATE_DICT_BASELINES = ["deeplabv3plus", "segformer", "upernet", "ocrnet"]  # weights_file; (mask2)maskformer: pretrained_dir
MASK_CLASSIFIERS = ["maskformer", "mask2former"]
K = 12
REPO = Path(__file__).resolve().parents[1]


def tiny(method: str, classes: int = K, **options):
    return build_method(ModelConfig(method, options), classes)


def fixed_batch():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 3, 64, 64, generator=g), torch.randint(0, K, (2, 64, 64), generator=g)
    y[:, :, :6] = 255
    return x, y


def outputs(model, x):
    """Per-pixel class scores at the input size: logits, or MaskFormer's semantic scores."""
    model.eval()
    with torch.no_grad():
        return model.scores(x) if hasattr(model, "scores") else model.logits(x)


def save(tensors: dict, path: Path) -> str:
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(path))
    return str(path)


@pytest.mark.parametrize("method", BASELINES)
def test_baseline_builds_tiny_predicts_and_training_lowers_loss(method):
    torch.manual_seed(0)
    model = tiny(method)
    assert sum(p.numel() for p in model.parameters()) < 13e6  # tiny at the default options
    x, y = fixed_batch()
    assert outputs(model, x).shape == (2, K, 64, 64)
    pred = model.predict(torch.rand(1, 3, 50, 70))  # any size: padded inside, cropped back
    assert pred.shape == (1, 50, 70) and pred.dtype == torch.int64 and 0 <= pred.min() and pred.max() < K
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    torch.manual_seed(1)
    first, logs = model.training_loss(x, y)
    assert logs["loss"] == pytest.approx(first.item())
    for _ in range(3):
        loss, _ = model.training_loss(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.manual_seed(1)
    assert model.training_loss(x, y)[0].item() < first.item()


@pytest.mark.parametrize("method", ["upernet", "ocrnet"])
def test_auxiliary_loss_enters_with_its_weight(method):
    torch.manual_seed(0)
    model = tiny(method).eval()  # eval: dropout off, so the two parts are deterministic
    x, y = fixed_batch()
    loss, logs = model.training_loss(x, y)
    assert loss.item() == pytest.approx(logs["loss_main"] + 0.4 * logs["loss_aux"], rel=1e-5)
    loss, logs = tiny(method, aux_weight=0.0).eval().training_loss(x, y)
    assert loss.item() == pytest.approx(logs.get("loss_main", logs["loss"]), rel=1e-6)


@pytest.mark.parametrize("method", STATE_DICT_BASELINES)
def test_weights_file_reproduces_outputs_exactly(method, tmp_path):
    torch.manual_seed(1)
    trained = tiny(method)
    with torch.no_grad():  # move the norm statistics off their initial values
        trained.train().training_loss(*fixed_batch())
    path = save(trained.state_dict(), tmp_path / f"{method}.safetensors")
    torch.manual_seed(2)
    loaded = tiny(method, weights_file=path)
    x = torch.rand(2, 3, 64, 64)
    assert torch.equal(outputs(trained, x), outputs(loaded, x))


def test_weights_file_takes_a_bare_smp_state_dict_and_a_torch_pickle(tmp_path):
    torch.manual_seed(1)
    trained = tiny("segformer")
    path = tmp_path / "segformer.pth"
    torch.save({"state_dict": trained.net.state_dict()}, path)
    loaded = tiny("segformer", weights_file=str(path))
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(outputs(trained, x), outputs(loaded, x))


@pytest.mark.parametrize("method", MASK_CLASSIFIERS)
def test_mask_classifier_pretrained_dir_reproduces_outputs_exactly(method, tmp_path):
    torch.manual_seed(1)
    trained = tiny(method)
    trained.net.save_pretrained(tmp_path / "mf")
    torch.manual_seed(2)
    loaded = tiny(method, pretrained_dir=str(tmp_path / "mf"))
    x = torch.rand(2, 3, 64, 64)
    assert torch.equal(outputs(trained, x), outputs(loaded, x))
    other = tiny(method, classes=7, pretrained_dir=str(tmp_path / "mf"))  # new classes: head re-initialised
    source = trained.state_dict()
    kept = {k: v for k, v in other.state_dict().items() if not k.startswith(("net.class_predictor.", "net.criterion."))}
    assert len(kept) > 50 and all(torch.equal(v, source[k]) for k, v in kept.items())
    with pytest.raises(ValueError, match=r"mf does not fit the model options"):
        tiny(method, pretrained_dir=str(tmp_path / "mf"), fpn_channels=64)


def test_maskformer_init_is_the_official_one_so_queries_differ():
    """transformers' N(0, 0.02) decoder and query init leaves all queries alike (constant predictions)."""
    torch.manual_seed(0)
    model = tiny("maskformer").eval()
    module = model.net.model.transformer_module
    assert 0.8 < module.queries_embedder.weight.std() < 1.2  # nn.Embedding's N(0, 1)
    bound = (6 / (2 * 32)) ** 0.5  # Xavier-uniform of the 32 x 32 attention projections
    assert 0.9 * bound < module.decoder.layers[0].encoder_attn.q_proj.weight.abs().max() <= bound
    x = model.norm(torch.rand(2, 3, 64, 64))
    with torch.no_grad():
        class_logits, mask_logits, _ = model.predictions(x)
    assert class_logits.softmax(-1).std(1).mean() > 0.02  # queries disagree from the start
    assert mask_logits.std(1).mean() > 0.1


def test_maskformer_deep_supervision_uses_every_layers_normed_output():
    """Each auxiliary prediction is what the decoder cut after that layer would predict."""
    torch.manual_seed(0)
    model = tiny("maskformer", decoder_layers=3, deep_supervision=True).eval()
    x, y = fixed_batch()
    loss, logs = model.training_loss(x, y)
    x = model.norm(x)
    with torch.no_grad():
        _, _, aux = model.predictions(x)
        assert len(aux) == 2
        decoder = model.net.model.transformer_module.decoder
        layers, model.net.config.use_auxiliary_loss = decoder.layers, False
        for n, inner in enumerate(aux, start=1):
            decoder.layers = layers[:n]
            class_logits, mask_logits, _ = model.predictions(x)
            assert torch.allclose(inner["class_queries_logits"], class_logits, atol=1e-5)
            assert torch.allclose(inner["masks_queries_logits"], mask_logits, atol=1e-4)
    assert torch.isfinite(loss) and loss.item() > logs["loss_mask"] + logs["loss_dice"] + logs["loss_cross_entropy"]


def test_maskformer_inference_is_the_library_semantic_post_processing():
    from transformers import MaskFormerImageProcessor

    torch.manual_seed(0)
    model = tiny("maskformer").eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        out = model.net(pixel_values=model.norm(x))
    reference = MaskFormerImageProcessor().post_process_semantic_segmentation(out, target_sizes=[(64, 64)] * 2)
    for ref, pred in zip(reference, model.predict(x)):
        assert torch.equal(ref if torch.is_tensor(ref) else ref["segmentation"], pred)


def test_maskformer_targets_are_one_mask_per_present_class():
    model = tiny("maskformer")
    labels = torch.tensor([[[0, 0, 3], [255, 3, 3]], [[255, 255, 255], [255, 255, 255]]])
    masks, classes = model.targets(labels)
    assert classes[0].tolist() == [0, 3] and masks[0].shape == (2, 2, 3)
    assert masks[0][1].tolist() == [[0, 0, 1], [0, 1, 1]]
    assert classes[1].numel() == 0 and masks[1].shape == (0, 2, 3)  # an all-ignore image has no targets
    loss, _ = model.train().training_loss(torch.rand(2, 3, 2, 3), labels)
    assert torch.isfinite(loss)


# ---------------------------------------------------------------------------- encoder weights from local files


def test_smp_encoder_loads_a_local_state_dict_dropping_the_classifier(tmp_path):
    reference = timm.create_model("resnet18")  # torchvision key names, fc included
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    model = tiny("deeplabv3plus", encoder="resnet18", pretrained_file=str(path))  # smp's own encoder
    assert torch.equal(model.net.encoder.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)


def test_segformer_mit_encoder_loads_a_local_state_dict(tmp_path):
    torch.manual_seed(3)
    source = tiny("segformer").net.encoder.state_dict()
    path = save({**source, "head.weight": torch.zeros(1000, 256)}, tmp_path / "mit_b0.safetensors")
    model = tiny("segformer", pretrained_file=path)
    assert all(torch.equal(v, source[k]) for k, v in model.net.encoder.state_dict().items())


def test_upernet_timm_encoder_loads_a_local_timm_checkpoint(tmp_path):
    reference = timm.create_model("convnext_atto")
    path = save(reference.state_dict(), tmp_path / "convnext_atto.safetensors")
    model = tiny("upernet", pretrained_file=path)
    assert torch.equal(model.net.encoder.model.stages_3.blocks[1].conv_dw.weight, reference.stages[3].blocks[1].conv_dw.weight)


def test_ocrnet_hrnet_loads_a_local_timm_classifier_checkpoint(tmp_path):
    reference = timm.create_model("hrnet_w18_small")
    path = save(reference.state_dict(), tmp_path / "hrnet_w18_small.safetensors")
    model = tiny("ocrnet", pretrained_file=path)
    body = model.net.backbone.body
    assert torch.equal(body.conv1.weight, reference.conv1.weight)
    assert torch.equal(body.stage4[0].branches[3][0].conv1.weight, reference.stage4[0].branches[3][0].conv1.weight)


@pytest.mark.parametrize("method, key, name", [
    *[(m, "pretrained_file", "enc.safetensors") for m in STATE_DICT_BASELINES],
    *[(m, "weights_file", "all.safetensors") for m in STATE_DICT_BASELINES],
    ("maskformer", "pretrained_dir", "maskformer-dir"),
    ("mask2former", "pretrained_dir", "mask2former-dir"),
])
def test_missing_weight_files_fail_naming_path_and_format(method, key, name, tmp_path):
    missing = tmp_path / name
    with pytest.raises(FileNotFoundError, match=rf"model\.{key} {missing} does not exist; expected .*(safetensors|config\.json)"):
        tiny(method, **{key: str(missing)})


def test_wrong_weight_files_fail_naming_path_and_what_was_expected(tmp_path):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_text("not a checkpoint")
    with pytest.raises(ValueError, match=r"garbage\.safetensors could not be read .*expected a state dict for smp encoder 'mit_b0'"):
        tiny("segformer", pretrained_file=str(garbage))
    with pytest.raises(ValueError, match=r"garbage\.safetensors could not be read .*expected a timm checkpoint"):
        tiny("upernet", pretrained_file=str(garbage))
    other = save(timm.create_model("resnet18").state_dict(), tmp_path / "resnet18.safetensors")
    with pytest.raises(ValueError, match=r"resnet18\.safetensors does not fit timm 'hrnet_w18_small' weights.*missing keys.*of another shape"):
        tiny("ocrnet", pretrained_file=other)
    with pytest.raises(ValueError, match=r"resnet18\.safetensors does not fit a whole-model state dict"):
        tiny("segformer", weights_file=other)


# ---------------------------------------------------------------------------- OCR equations


def test_ocr_object_regions_and_relation():
    x = torch.randn(1, 4, 3, 3)
    regions = torch.full((1, 2, 3, 3), -1e4)
    regions[0, 0, 1, 2] = 0  # region 0 is all on pixel (1, 2); region 1 is uniform
    regions[0, 1] = 0
    f = SpatialGather()(x, regions)  # f_k = sum_i m_ki x_i
    assert f.shape == (1, 4, 2, 1)
    assert torch.allclose(f[0, :, 0, 0], x[0, :, 1, 2]) and torch.allclose(f[0, :, 1, 0], x[0].mean((1, 2)), atol=1e-6)
    block = ObjectContext(4, 2).eval()
    assert block(x, f).shape == (1, 4, 3, 3)


# ---------------------------------------------------------------------------- paper sizes and configs


def test_paper_models_match_published_parameter_counts():
    counts = {}
    for name, section in PAPER_MODELS.items():
        options = {k: v for k, v in section.items() if k != "method"}
        model = build_method(ModelConfig(section["method"], options), 150)
        counts[name] = sum(p.numel() for p in model.parameters()) / 1e6
    for name, (published, _) in PUBLISHED_PARAMS_M.items():
        assert abs(counts[name] / published - 1) < 0.05, (name, counts[name], published)


@pytest.mark.parametrize("config", ["paper-ade20k", "paper-cocostuff", "paper-cityscapes"])
def test_paper_configs_mirror_paper_models_and_validate(config):
    workflow = yaml.safe_load((REPO / "workflow/config" / f"{config}.yaml").read_text())
    assert workflow["dataset"]["root"] == ""
    for name, experiment in workflow["experiments"].items():
        if name in PAPER_MODELS:  # the baselines; GSS and FlowSeg rows describe their own models
            assert {k: v for k, v in experiment["model"].items() if k not in ("pretrained_file", "backbone_file")} == PAPER_MODELS[name], name
    runs = run_configs(workflow, Path("/nonexistent"))  # strict checks; the data is not read
    assert len(runs) == len(workflow["experiments"]) * len(workflow["seeds"])


def test_bad_baseline_options_are_config_errors():
    with pytest.raises(ConfigError, match="model.aspp_project_kernel"):
        RunConfig.from_dict({"model": {"method": "deeplabv3plus", "aspp_project_kernel": 5}})
    with pytest.raises(ConfigError, match="model.num_heads"):
        RunConfig.from_dict({"model": {"method": "maskformer", "num_heads": [3, 3, 3, 3]}})
    with pytest.raises(ConfigError, match="model.decoder_heads"):
        RunConfig.from_dict({"model": {"method": "mask2former", "decoder_dim": 30, "decoder_heads": 4}})
    with pytest.raises(ConfigError, match="model.fpn_channels"):
        RunConfig.from_dict({"model": {"method": "mask2former", "fpn_channels": 12}})
    with pytest.raises(ConfigError, match="unknown key 'model.encodr'"):
        RunConfig.from_dict({"model": {"method": "segformer", "encodr": "mit_b2"}})
    with pytest.raises(ConfigError, match="model.backbone must be a timm HRNet"):
        RunConfig.from_dict({"model": {"method": "ocrnet", "backbone": "resnet50"}})
    assert os.environ["HF_HUB_OFFLINE"] == "1"
