import json

import pytest
import torch
from safetensors.torch import load_file

from genseg.engine.checkpoint import load_weights, save_weights
from genseg.engine.evaluate import evaluate_run
from genseg.engine.train import NonFiniteLossError, poly_schedule, train
from genseg.methods import build_method
from genseg.methods.base import PixelClassifier


def test_poly_schedule_warms_up_then_decays():
    f = poly_schedule(warmup_iters=4, total_iters=14, power=1.0)
    assert [f(i) for i in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert f(9) == pytest.approx(0.5) and f(14) == 0.0


def test_weights_round_trip(tmp_path, tiny_config):
    cfg = tiny_config(tmp_path)
    a = build_method(cfg.model, 10)
    b = build_method(cfg.model, 10)
    save_weights(tmp_path / "w.safetensors", a)
    load_weights(tmp_path / "w.safetensors", b)
    x = torch.rand(2, 3, 64, 64)
    a.eval(), b.eval()
    assert torch.equal(a.logits(x), b.logits(x))
    with pytest.raises(RuntimeError, match="does not match the model"):
        load_weights(tmp_path / "w.safetensors", build_method(cfg.model, 11))


def _interrupt_at(monkeypatch, call_index, make_error):
    original = PixelClassifier.training_loss
    calls = {"n": 0}

    def patched(self, images, labels):
        loss, logs = original(self, images, labels)
        calls["n"] += 1
        if calls["n"] == call_index:
            return make_error(loss), logs
        return loss, logs

    monkeypatch.setattr(PixelClassifier, "training_loss", patched)


def assert_resume_is_exact(cfg, straight, resumed, monkeypatch) -> None:
    """A run of ``cfg`` killed during step 3 (after the step-2 checkpoint) and rerun ends with the
    weights of the ``straight`` run, bitwise."""

    def stop(loss):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        _interrupt_at(m, 3, stop)
        with pytest.raises(KeyboardInterrupt):
            train(cfg, resumed)
    assert json.loads((resumed / "checkpoint.json").read_text())["step"] == 2
    assert train(cfg, resumed)["resumed_from"] == 2
    a, b = (load_file(str(run / "model.safetensors")) for run in (straight, resumed))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_train_writes_run_and_resume_is_exact(tmp_path, tiny_synthetic, monkeypatch, tiny_config):
    cfg = tiny_config(tiny_synthetic)
    straight = train(cfg, tmp_path / "straight")
    run = tmp_path / "straight"
    for name in ("config.yaml", "model.safetensors", "checkpoint.safetensors", "checkpoint.json", "val_curve.csv", "train_metrics.json"):
        assert (run / name).exists(), name
    assert list((run / "tb").iterdir())
    assert straight["provenance"]["config_hash"] == cfg.hash() and straight["train_images_per_s"] > 0
    assert straight["peak_memory_mb"] > 0 and straight["provenance"]["seed"] == 0
    assert straight["loader_images_per_s"] > 0 and 0 < straight["data_wait_fraction"] < 1  # is the loop fed?

    assert_resume_is_exact(cfg, run, tmp_path / "resumed", monkeypatch)
    lines = (tmp_path / "resumed" / "val_curve.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in lines] == ["step", "2", "4"]


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, tiny_synthetic, monkeypatch, tiny_config):
    cfg = tiny_config(tiny_synthetic)
    _interrupt_at(monkeypatch, 3, lambda loss: loss * float("nan"))
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at step 3 .*step 2\) is kept"):
        train(cfg, tmp_path / "run")
    assert json.loads((tmp_path / "run" / "checkpoint.json").read_text())["step"] == 2
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_evaluate_writes_metrics_with_provenance(tmp_path, tiny_synthetic, tiny_config):
    cfg = tiny_config(tiny_synthetic, optim__iterations=2)
    train(cfg, tmp_path / "tiny-s0")
    record = evaluate_run(tmp_path / "tiny-s0", "test", ["shifted"], tmp_path / "tiny-s0" / "eval" / "test_shifted.json", progress=False)
    saved = json.loads((tmp_path / "tiny-s0" / "eval" / "test_shifted.json").read_text())
    assert saved["run_id"] == "tiny-s0" and saved["domains"] == ["shifted"] and saved["num_images"] == 8
    assert 0 <= saved["scores"]["miou"] <= 1 and saved["images_per_s"] > 0 and saved["peak_memory_mb"] > 0
    assert set(saved["grid_ratio"]) == {"8", "16"}
    assert all(r is None or r >= 0 for r in saved["grid_ratio"].values())
    prov = saved["provenance"]
    assert set(prov) >= {"git_commit", "config_hash", "versions", "seed", "device", "time_utc"}
    assert prov["versions"]["torch"] == torch.__version__.split("+")[0] or prov["versions"]["torch"].startswith(torch.__version__.split("+")[0])
    import numpy as np

    with np.load(tmp_path / "tiny-s0" / "eval" / "test_shifted.npz", allow_pickle=False) as areas:
        assert areas["intersect"].shape == (8, len(saved["classes"]))
    assert record["scores"] == saved["scores"]


def test_validation_cadence_does_not_change_training(tmp_path, tiny_synthetic, tiny_config):
    """Validation reads its own random stream: the weights after training do not depend on how often it ran."""
    rarely = train(tiny_config(tiny_synthetic, train__val_every=4), tmp_path / "rarely")
    often = train(tiny_config(tiny_synthetic, train__val_every=1), tmp_path / "often")
    assert rarely["iterations"] == often["iterations"]
    a = load_file(str(tmp_path / "rarely" / "model.safetensors"))
    b = load_file(str(tmp_path / "often" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_ema_weights_are_validated_saved_and_resumed(tmp_path, tiny_synthetic, monkeypatch, tiny_config):
    """train.ema_decay: model.safetensors holds the EMA copy (theta_ema <- d theta_ema + (1 - d) theta),
    the checkpoint carries it, and a resumed run ends with the same EMA weights as a straight one."""
    from genseg.engine.checkpoint import load_checkpoint  # noqa: F401  (the loader restores ema.*)

    cfg = tiny_config(tiny_synthetic, train__ema_decay=0.5)
    straight = train(cfg, tmp_path / "straight")
    assert straight["ema_decay"] == 0.5
    saved = load_file(str(tmp_path / "straight" / "model.safetensors"))
    ckpt = load_file(str(tmp_path / "straight" / "checkpoint.safetensors"))
    trained = {k[6:]: v for k, v in ckpt.items() if k.startswith("model.")}
    ema = {k[4:]: v for k, v in ckpt.items() if k.startswith("ema.")}
    assert set(ema) == set(trained) == set(saved)
    assert all(torch.equal(saved[k], ema[k]) for k in saved)  # the EMA copy is what the run saves
    floats = [k for k in saved if saved[k].is_floating_point() and "running" not in k]
    assert any(not torch.equal(saved[k], trained[k]) for k in floats)  # and it is not the trained weights

    def stop(loss):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        _interrupt_at(m, 3, stop)
        with pytest.raises(KeyboardInterrupt):
            train(cfg, tmp_path / "resumed")
    train(cfg, tmp_path / "resumed")
    resumed = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    assert all(torch.equal(saved[k], resumed[k]) for k in saved)


def test_ema_update_is_the_moving_average():
    from genseg.engine.train import WeightEMA

    model = torch.nn.Linear(2, 1)
    ema = WeightEMA(model, 0.9)
    before = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    assert torch.allclose(ema.module.weight, 0.9 * before + 0.1 * model.weight)


@pytest.mark.parametrize("decay", [-0.1, 1.0, float("nan")])
def test_bad_ema_decay_is_named(tmp_path, tiny_config, decay):
    from genseg.config import ConfigError

    with pytest.raises(ConfigError, match="train.ema_decay"):
        tiny_config(tmp_path, train__ema_decay=decay)


def test_evaluation_records_the_training_budget(tmp_path, tiny_synthetic, tiny_config):
    """Each evaluation records the run's iterations x batch and train wall, and those of the runs
    whose files its options name (GSS: posterior, prior); the tidy table carries them as text."""
    from genseg.engine.evaluate import training_budget
    from genseg.report.aggregate import budget_text

    up = tiny_config(tiny_synthetic, name="upstream", optim__iterations=2)
    train(up, tmp_path / "upstream-s0")
    cfg = tiny_config(tiny_synthetic, optim__iterations=2,
                      model={"method": "deeplabv3plus", "encoder": "tu-resnet18", "weights_file": str(tmp_path / "upstream-s0" / "model.safetensors")})
    train(cfg, tmp_path / "tiny-s0")
    budget = training_budget(cfg, tmp_path / "tiny-s0")
    assert budget["iterations"] == 2 and budget["batch_size"] == 4 and budget["train_wall_seconds"] > 0
    assert budget["upstream"] == [{"experiment": "upstream", "iterations": 2, "batch_size": 4}]
    assert budget_text(budget) == "2 x 4 (+ upstream 2 x 4)"
    trained = json.loads((tmp_path / "tiny-s0" / "train_metrics.json").read_text())
    assert budget["train_git_commit"] == trained["provenance"]["git_commit"] != ""  # the commit it was trained from
    record = evaluate_run(tmp_path / "tiny-s0", "test", ["clean"], tmp_path / "e.json", progress=False)
    assert record["budget"] == budget


def test_resume_with_gradient_accumulation_is_exact(tmp_path, tiny_synthetic, monkeypatch, tiny_config):
    """train.accumulate 2: the loader resumes k x batch images per step further on, so an interrupted
    run ends with the straight run's weights."""
    cfg = tiny_config(tiny_synthetic, data__batch_size=2, train__accumulate=2)
    train(cfg, tmp_path / "straight")

    def stop(loss):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        _interrupt_at(m, 6, stop)  # step 3's second micro-batch, after the step-2 checkpoint
        with pytest.raises(KeyboardInterrupt):
            train(cfg, tmp_path / "resumed")
    assert json.loads((tmp_path / "resumed" / "checkpoint.json").read_text())["step"] == 2
    resumed = train(cfg, tmp_path / "resumed")
    assert resumed["resumed_from"] == 2 and resumed["effective_batch_size"] == 4
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
