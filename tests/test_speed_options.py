"""train.compile (torch.compile of the training loss) and train.activation_checkpointing (timm's
set_grad_checkpointing convention: PixNerd, timm backbones, transformers models)."""

import pytest
import torch
import torch.utils.checkpoint
from safetensors import safe_open

from genseg.config import ConfigError
from genseg.engine import precision
from genseg.engine.train import train
from genseg.methods import build_method
from genseg.methods.flowseg.pixnerd import PRESETS, PixNerd

FLOWSEG = {"method": "flowseg", "encoding": "kronecker", "pixel_features": 16, "condition": ["pixels"]}


def _keys(path):
    with safe_open(str(path), "pt") as f:
        return sorted(f.keys())


def _grads(model, fn):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(1)  # the same dropout draws
    fn().backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _count_checkpoints(monkeypatch):
    calls = []
    original = torch.utils.checkpoint.checkpoint

    def counting(*args, **kwargs):
        calls.append(kwargs.get("use_reentrant"))
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.utils.checkpoint, "checkpoint", counting)
    return calls


def test_pixnerd_checkpointed_blocks_give_the_same_gradients(monkeypatch):
    """The tiny preset: every transformer and field block goes through torch.utils.checkpoint
    (non-reentrant) and the gradients equal the plain backward's to float tolerance."""
    torch.manual_seed(0)
    net = PixNerd(PRESETS["pixnerd-cpu"]).train()
    x, t, y = torch.randn(2, 3, 32, 32), torch.rand(2), torch.full((2,), 1000)
    fn = lambda: net(x, t, y).square().mean()  # noqa: E731
    plain = _grads(net, fn)
    calls = _count_checkpoints(monkeypatch)
    net.set_grad_checkpointing(True)
    checkpointed = _grads(net, fn)
    shape = PRESETS["pixnerd-cpu"]
    assert calls == [False] * (shape.transformer_blocks + shape.field_blocks)
    assert plain.keys() == checkpointed.keys() and len(plain) > 10
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], rtol=1e-5, atol=1e-6, msg=name)
    calls.clear()
    with torch.no_grad():  # inference: no recomputation to save
        net(x, t, y)
    net.eval()
    net(x, t, y).sum().backward()
    assert calls == []


def test_methods_report_what_they_checkpoint():
    flowseg = build_method(_model_cfg(FLOWSEG), 4, 255)
    assert flowseg.set_grad_checkpointing(True) == ["net.denoiser", "net.encoder"]  # PixNerd and the timm encoder
    assert flowseg.net.denoiser.grad_checkpointing and flowseg.net.encoder.grad_checkpointing
    deeplab = build_method(_model_cfg({"method": "deeplabv3plus", "encoder": "tu-resnet18"}), 4, 255)
    assert deeplab.set_grad_checkpointing(True) == ["net.encoder.model"]  # timm's features_only model
    with pytest.raises(NotImplementedError, match="activation checkpointing"):
        build_method(_model_cfg({"method": "deeplabv3plus", "encoder": "resnet18"}), 4, 255).set_grad_checkpointing(True)


def test_timm_backbone_checkpointing_keeps_the_gradients():
    torch.manual_seed(0)
    model = build_method(_model_cfg({"method": "deeplabv3plus", "encoder": "tu-resnet18"}), 4, 255).train()
    for m in model.modules():  # BatchNorm's running stats move on each (re)computation: keep them fixed
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 0.0
    images, labels = torch.rand(2, 3, 64, 64), torch.randint(0, 4, (2, 64, 64))
    fn = lambda: model.training_loss(images, labels)[0]  # noqa: E731
    plain = _grads(model, fn)
    model.set_grad_checkpointing(True)
    checkpointed = _grads(model, fn)
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], rtol=1e-4, atol=1e-6, msg=name)


def _model_cfg(model):
    from genseg.config import ModelConfig

    model = dict(model)
    return ModelConfig(model.pop("method"), model)


def test_a_run_with_activation_checkpointing_trains(tmp_path, tiny_synthetic, tiny_config, monkeypatch):
    calls = _count_checkpoints(monkeypatch)
    cfg = tiny_config(tiny_synthetic, model=FLOWSEG, train__activation_checkpointing=True,
                      optim={"iterations": 2, "warmup_iters": 1, "lr": 1e-3})
    record = train(cfg, tmp_path / "run")
    assert calls and set(calls) == {False}  # the blocks really went through torch.utils.checkpoint
    assert record["iterations"] == 2 and torch.isfinite(torch.tensor(record["final_train_loss"]))


def test_activation_checkpointing_without_support_is_a_config_error(tmp_path, tiny_synthetic, tiny_config):
    cfg = tiny_config(tiny_synthetic, model={"method": "segformer", "encoder": "mit_b0", "decoder_channels": 16},
                      train__activation_checkpointing=True)
    with pytest.raises(ConfigError, match=r"train\.activation_checkpointing: method 'segformer'.*SmpClassifier"):
        train(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoint.json").exists()


@pytest.mark.slow
def test_compiled_training_trains_and_keeps_checkpoint_keys(tmp_path, tiny_synthetic, tiny_config, monkeypatch):
    """train.compile: the loss runs through torch.compile (backend 'eager' here: inductor's C++ build
    takes minutes on this 2-core CPU); weights and checkpoint keys are the non-compiled run's."""
    compiled = []
    original = torch.compile

    def spy(fn, **kwargs):
        compiled.append(kwargs)
        return original(fn, **kwargs)

    monkeypatch.setattr(precision.torch, "compile", spy)
    torch._dynamo.reset()
    from torch._dynamo.utils import counters

    counters.clear()
    runs = {}
    for flag in (False, True):
        cfg = tiny_config(tiny_synthetic, train__compile=flag, train__compile_backend="eager",
                          optim={"iterations": 2, "warmup_iters": 1, "lr": 1e-3})
        runs[flag] = train(cfg, tmp_path / f"run-{flag}")
    assert compiled == [{"backend": "eager"}]
    assert counters["stats"]["calls_captured"] > 0  # dynamo traced the training loss
    assert torch.isfinite(torch.tensor(runs[True]["final_train_loss"]))
    for name in ("model.safetensors", "checkpoint.safetensors"):
        keys = _keys(tmp_path / f"run-True/{name}")
        assert keys == _keys(tmp_path / f"run-False/{name}") and not any("_orig_mod" in k for k in keys)


def test_compile_backend_is_checked(tmp_path, tiny_config):
    with pytest.raises(ConfigError, match=r"train\.compile_backend.*'nope'"):
        tiny_config(tmp_path, train__compile=True, train__compile_backend="nope")
