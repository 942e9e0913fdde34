"""train.precision (bf16 / fp16 autocast), channels_last and train.accumulate (gradient accumulation)."""

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from conftest import GroupNormNet
from genseg.config import ConfigError
from genseg.engine import train as train_module
from genseg.engine.evaluate import evaluate_run
from genseg.engine.precision import autocast, check_precision, resolve_precision
from genseg.engine.train import train
from genseg.methods import build_method
from genseg.methods.base import PixelClassifier


def _loss_curve(model, images, labels, precision: str, steps: int) -> list[float]:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(steps):
        with autocast(precision, images.device):
            loss, _ = model.training_loss(images, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.slow
def test_bf16_loss_curve_follows_fp32(tiny_config, tmp_path):
    """30 AdamW steps on one fixed batch: bf16 autocast decreases the loss as fp32 does, final
    loss within 10% relative (and not identical: autocast really ran in bfloat16)."""
    cfg = tiny_config(tmp_path)
    torch.manual_seed(0)
    images = F.interpolate(torch.rand(2, 3, 4, 4), scale_factor=16.0)  # 16 px blocks; the class a function of the colour
    labels = (images[:, 0] > 0.5).long() + 2 * (images[:, 1] > 0.5).long()
    curves = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = build_method(cfg.model, 4).train()
        curves[precision] = _loss_curve(model, images, labels, precision, steps=30)
    fp32, bf16 = curves["fp32"], curves["bf16"]
    assert fp32[-1] < 0.5 * fp32[0] and bf16[-1] < 0.5 * bf16[0]
    assert abs(bf16[-1] - fp32[-1]) <= 0.1 * fp32[-1]
    assert bf16 != fp32


def test_train_in_bf16_channels_last_records_precision(tmp_path, tiny_synthetic, tiny_config, monkeypatch):
    """The loss, the validation and the evaluation run under bf16 autocast, the loss on channels_last
    inputs; the record says bf16."""
    seen = []

    def spy(original):
        def wrapped(self, images, *args, **kwargs):
            seen.append((original.__name__, torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu"),
                         images.is_contiguous(memory_format=torch.channels_last)))
            return original(self, images, *args, **kwargs)
        return wrapped

    monkeypatch.setattr(PixelClassifier, "training_loss", spy(PixelClassifier.training_loss))
    monkeypatch.setattr(PixelClassifier, "predict", spy(PixelClassifier.predict))
    cfg = tiny_config(tiny_synthetic, optim__iterations=2, train__precision="bf16", train__channels_last=True)
    record = train(cfg, tmp_path / "run")
    assert {(name, dtype) for name, dtype, _ in seen} == {("training_loss", torch.bfloat16), ("predict", torch.bfloat16)}
    assert all(last for name, _, last in seen if name == "training_loss")
    seen.clear()
    evaluate_run(tmp_path / "run", "test", ["shifted"], tmp_path / "run" / "eval" / "test.json", progress=False)
    assert seen and all(dtype == torch.bfloat16 for _, dtype, _ in seen)  # evaluated as trained
    saved = json.loads((tmp_path / "run" / "train_metrics.json").read_text())
    assert record["precision"] == saved["precision"] == "bf16"
    assert saved["accumulate"] == 1 and saved["effective_batch_size"] == 4
    assert saved["final_train_loss"] == saved["final_train_loss"] and saved["final_val_miou"] is not None


@pytest.mark.parametrize("value", ["fp64", "bfloat16", "FP32"])
def test_unknown_precision_is_named(tmp_path, tiny_config, value):
    with pytest.raises(ConfigError, match=r"train\.precision must be one of auto, fp32, bf16, fp16"):
        tiny_config(tmp_path, train__precision=value)


def test_precision_the_device_cannot_run_is_named(monkeypatch):
    check_precision("bf16", torch.device("cpu"))  # CPU autocast runs bf16 and (torch >= 2.3, with GradScaler) fp16
    check_precision("fp16", torch.device("cpu"))
    with pytest.raises(ConfigError, match=r"train\.precision 'fp16': device meta has no autocast"):
        check_precision("fp16", torch.device("meta"))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with pytest.raises(ConfigError, match=r"train\.precision 'bf16': device cuda does not support bfloat16"):
        check_precision("bf16", torch.device("cuda"))


@pytest.mark.parametrize("value", [0, -1])
def test_bad_accumulate_is_named(tmp_path, tiny_config, value):
    with pytest.raises(ConfigError, match=r"train\.accumulate must be an integer >= 1"):
        tiny_config(tmp_path, train__accumulate=value)


def test_accumulating_two_micro_batches_is_one_double_batch(tmp_path, tiny_synthetic, tiny_config, monkeypatch):
    """train.accumulate 2 with batch b: the same weights as accumulate 1 with batch 2b (same images,
    same order), to float tolerance; SGD so that the update is linear in the gradient."""
    monkeypatch.setattr(train_module, "build_method", lambda model, num_classes, ignore: GroupNormNet(num_classes, ignore))
    common = {"optim__iterations": 3, "optim__optimizer": "sgd", "optim__lr": 0.05, "train__val_every": 0}
    double = train(tiny_config(tiny_synthetic, **common, data__batch_size=4), tmp_path / "double")
    micro = train(tiny_config(tiny_synthetic, **common, data__batch_size=2, train__accumulate=2), tmp_path / "micro")
    assert micro["accumulate"] == 2 and micro["effective_batch_size"] == double["effective_batch_size"] == 4
    a = load_file(str(tmp_path / "double" / "model.safetensors"))
    b = load_file(str(tmp_path / "micro" / "model.safetensors"))
    assert micro["final_train_loss"] == pytest.approx(double["final_train_loss"], rel=1e-5)  # the mean of the micro losses
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5
    # and it is not the single micro-batch update: accumulation used both halves
    single = train(tiny_config(tiny_synthetic, **common, data__batch_size=2), tmp_path / "single")
    c = load_file(str(tmp_path / "single" / "model.safetensors"))
    assert single["effective_batch_size"] == 2 and max((a[k] - c[k]).abs().max().item() for k in a) > 1e-4


@pytest.mark.slow
def test_train_in_fp16_scales_the_loss_and_checkpoints_the_scaler(tmp_path, tiny_synthetic, tiny_config):
    """fp16 (CPU autocast supports it): GradScaler, unscaled before clipping; its state is in the checkpoint."""
    cfg = tiny_config(tiny_synthetic, optim__iterations=2, optim__grad_clip=1.0, train__precision="fp16")
    record = train(cfg, tmp_path / "run")
    state = json.loads((tmp_path / "run" / "checkpoint.json").read_text())
    assert record["precision"] == "fp16" and state["scaler"]["scale"] > 0
    assert record["final_train_loss"] == record["final_train_loss"]  # finite, not NaN


# ---------------------------------------------------------------- evaluation: eval.precision, eval.num_workers

BF16_EVAL_MIOU_TOLERANCE = 0.01  # absolute mIoU (1 point): bf16 autocast vs fp32 on the same weights (measured: ~1e-4)


@pytest.fixture(scope="module")
def trained_fp32(tmp_path_factory, tiny_synthetic):
    """A DeepLabV3+ trained 60 iterations in fp32 (test mIoU ~0.4: well above chance)."""
    from conftest import tiny_run_config

    run = tmp_path_factory.mktemp("bf16eval") / "tiny-s0"
    train(tiny_run_config(tiny_synthetic, optim__iterations=60, optim__warmup_iters=4, optim__lr=3e-3, train__val_every=0,
                          train__checkpoint_every=0), run)
    return run


def _evaluate(run, out, **eval_overrides):
    """evaluate_loaded on ``run`` with eval.<key> overrides, on the in-domain test split."""
    import dataclasses

    from genseg.engine.evaluate import evaluate_loaded, load_trained

    cfg, model, dev = load_trained(run)
    cfg = dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, **eval_overrides))
    return evaluate_loaded(cfg, model, dev, run.name, "test", "clean", out)


@pytest.mark.slow
def test_bf16_evaluation_is_within_tolerance_of_fp32(trained_fp32, tmp_path, monkeypatch):
    """eval.precision bf16 on fp32-trained weights: predict runs under bfloat16 autocast, the record
    says so, and mIoU is within BF16_EVAL_MIOU_TOLERANCE of the fp32 evaluation's."""
    seen = []
    original = PixelClassifier.predict

    def spy(self, images, *args, **kwargs):
        seen.append(torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu"))
        return original(self, images, *args, **kwargs)

    monkeypatch.setattr(PixelClassifier, "predict", spy)
    fp32 = _evaluate(trained_fp32, tmp_path / "fp32.json")
    assert seen and not any(seen) and fp32["precision"] == "fp32"  # default: train.precision, no autocast
    seen.clear()
    bf16 = _evaluate(trained_fp32, tmp_path / "bf16.json", precision="bf16")
    assert seen and all(dtype == torch.bfloat16 for dtype in seen)
    saved = json.loads((tmp_path / "bf16.json").read_text())
    assert saved["precision"] == "bf16" and saved["images_per_s"] > 0 and saved["num_images"] == 8
    assert fp32["scores"]["miou"] > 0.3, fp32["scores"]  # trained: a tolerance on chance-level scores would say little
    assert abs(bf16["scores"]["miou"] - fp32["scores"]["miou"]) <= BF16_EVAL_MIOU_TOLERANCE, (bf16["scores"], fp32["scores"])


def test_evaluation_workers_give_identical_scores(trained_fp32, tmp_path):
    """eval.num_workers 2 loads the same images in the same order: scores and per-image areas equal to 0 workers'."""
    import numpy as np

    main = _evaluate(trained_fp32, tmp_path / "w0.json")
    workers = _evaluate(trained_fp32, tmp_path / "w2.json", num_workers=2)
    assert workers["num_workers"] == 2 and main["num_workers"] == 0
    assert workers["scores"] == main["scores"] and workers["grid_ratio"] == main["grid_ratio"]
    with np.load(tmp_path / "w0.npz") as a, np.load(tmp_path / "w2.npz") as b:
        assert set(a.files) == set(b.files) and all(np.array_equal(a[k], b[k]) for k in a.files)


@pytest.mark.parametrize("key,value,message", [
    ("eval__precision", "bfloat16", r"eval\.precision must be one of auto, fp32, bf16, fp16 or ''"),
    ("eval__num_workers", -1, r"eval\.num_workers must be >= 0"),
])
def test_bad_eval_settings_are_named(tmp_path, tiny_config, key, value, message):
    with pytest.raises(ConfigError, match=message):
        tiny_config(tmp_path, **{key: value})


def test_eval_precision_the_device_cannot_run_is_named_before_any_image(trained_fp32, tmp_path, monkeypatch):
    """An eval.precision the device cannot run: the error names eval.precision, and no image is read."""
    import dataclasses

    from genseg.engine import evaluate as evaluate_module

    cfg, model, _ = evaluate_module.load_trained(trained_fp32)
    cfg = dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, precision="fp16"))
    monkeypatch.setattr(evaluate_module, "eval_spec", lambda *a, **k: pytest.fail("read the split before checking"))
    with pytest.raises(ConfigError, match=r"eval\.precision 'fp16': device meta has no autocast"):
        evaluate_module.evaluate_loaded(cfg, model, torch.device("meta"), "tiny-s0", "test", "clean", tmp_path / "x.json")


def test_auto_precision_is_bf16_where_the_accelerator_supports_it(monkeypatch, tmp_path, tiny_config):
    """The default ``auto``: fp32 on the CPU (results unchanged), bf16 on an accelerator with bfloat16."""
    assert tiny_config(tmp_path).train.precision == "auto"
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert resolve_precision("fp16", torch.device("cpu")) == "fp16"
    # A device object only (no tensor is made): the one accelerator type torch can name without
    # hardware, with its bf16 support patched both ways.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", torch.device("cuda")) == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_precision("auto", torch.device("cuda")) == "fp32"
    assert resolve_precision("auto", torch.device("meta")) == "fp32"
