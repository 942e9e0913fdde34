"""Faults and edits a user makes: crashes inside checkpoint writes, corrupt files, config changes,
divergence, reruns that deleted outputs, two trainings on one folder, bad values (issue 16)."""

import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml
from safetensors.torch import load_file

from genseg.config import ConfigError, RunConfig
from genseg.engine import checkpoint as checkpoint_module
from genseg.engine.checkpoint import CheckpointError, save_checkpoint
from genseg.engine.train import NonFiniteLossError, train
from genseg.io import LockedError, locked
from genseg.methods.base import PixelClassifier


def _interrupt_at(monkeypatch, call_index: int, make_error):
    """Make the ``call_index``-th training-loss call (1-based) raise or return ``make_error(loss)``."""
    original = PixelClassifier.training_loss
    calls = {"n": 0}

    def patched(self, images, labels):
        calls["n"] += 1
        loss, logs = original(self, images, labels)
        if calls["n"] == call_index:
            return make_error(loss), logs
        return loss, logs

    monkeypatch.setattr(PixelClassifier, "training_loss", patched)


def _stop(loss):
    raise KeyboardInterrupt


def _same_weights(a, b) -> bool:
    x, y = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def _step(run) -> int:
    return json.loads((run / "checkpoint.json").read_text())["step"]


def test_crash_inside_a_checkpoint_write_keeps_the_previous_one(tmp_path, tiny_synthetic, tiny_config, monkeypatch):
    """The step-4 write dies after part of its temp file is on disk: the step-2 checkpoint is intact,
    the rerun removes the temp file, resumes from step 2 and ends on the uninterrupted weights."""
    cfg = tiny_config(tiny_synthetic)
    train(cfg, tmp_path / "straight")
    real_save = checkpoint_module.save_file
    calls = {"n": 0}

    def dies_on_second(tensors, path, metadata=None):
        calls["n"] += 1
        if calls["n"] == 2:
            with open(path, "wb") as f:
                f.write(b"\x00" * 1000)  # a torn temp file, as a kill mid-write leaves
            raise KeyboardInterrupt
        real_save(tensors, path, metadata=metadata)

    monkeypatch.setattr(checkpoint_module, "save_file", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "run")
    monkeypatch.undo()
    # atomic_path removes its temp on an exception; a SIGKILL would not: leave one as a kill does
    (tmp_path / "run" / "checkpoint.safetensors.tmp-424242").write_bytes(b"\x00" * 1000)
    assert _step(tmp_path / "run") == 2
    resumed = train(cfg, tmp_path / "run")
    assert resumed["resumed_from"] == 2 and _same_weights(tmp_path / "straight", tmp_path / "run")
    assert not list((tmp_path / "run").glob("*.tmp-*"))


def test_crash_between_the_weights_and_their_json_copy_resumes_from_the_weights(tmp_path, tiny_synthetic, tiny_config, monkeypatch):
    """The state lives in the safetensors file: a stale or missing checkpoint.json changes nothing."""
    cfg = tiny_config(tiny_synthetic)
    train(cfg, tmp_path / "straight")
    with monkeypatch.context() as m:
        _interrupt_at(m, 3, _stop)
        with pytest.raises(KeyboardInterrupt):
            train(cfg, tmp_path / "run")
    (tmp_path / "run" / "checkpoint.json").unlink()  # as if the crash came right after the weights' rename
    resumed = train(cfg, tmp_path / "run")
    assert resumed["resumed_from"] == 2 and _same_weights(tmp_path / "straight", tmp_path / "run")


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage"])
def test_corrupt_checkpoint_is_named(tmp_path, tiny_synthetic, tiny_config, damage):
    cfg = tiny_config(tiny_synthetic, optim__iterations=2)
    train(cfg, tmp_path / "run")
    path = tmp_path / "run" / "checkpoint.safetensors"
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 2], "empty": b"", "garbage": b"not a checkpoint" * 10}[damage])
    with pytest.raises(CheckpointError, match=r"checkpoint .*checkpoint\.safetensors is unreadable .* restart the run from step 0"):
        train(cfg, tmp_path / "run")


def test_changed_config_is_refused_or_restarted(tmp_path, tiny_synthetic, tiny_config):
    """lr 1e-3 -> 1e-2 after step 2: refused (not silently resumed at the old lr); with restart the
    run is the new config's from step 0."""
    old = tiny_config(tiny_synthetic, optim__iterations=2)
    new = tiny_config(tiny_synthetic, optim__iterations=2, optim__lr=1e-2)
    train(old, tmp_path / "run")
    with pytest.raises(ConfigError, match=rf"config hash {old.hash()}.* now hashes to {new.hash()}"):
        train(new, tmp_path / "run")
    restarted = train(new, tmp_path / "run", on_change="restart")
    assert restarted["resumed_from"] == 0 and restarted["provenance"]["config_hash"] == new.hash()
    train(new, tmp_path / "fresh")
    assert _same_weights(tmp_path / "fresh", tmp_path / "run")


def test_divergence_never_writes_a_poisoned_checkpoint(tmp_path, tiny_synthetic, tiny_config, monkeypatch):
    """A finite loss with an inf BatchNorm variance (what a diverging run leaves): the checkpoint
    write is refused and the step-2 one kept."""
    cfg = tiny_config(tiny_synthetic)
    original = PixelClassifier.training_loss
    calls = {"n": 0}

    def poison(self, images, labels):
        calls["n"] += 1
        if calls["n"] == 3:
            next(m for m in self.modules() if isinstance(m, torch.nn.BatchNorm2d)).running_var.fill_(math.inf)
        return original(self, images, labels)

    monkeypatch.setattr(PixelClassifier, "training_loss", poison)
    with pytest.raises(CheckpointError, match=r"step 4: non-finite values in model\..*running_var.*previous one is kept"):
        train(cfg, tmp_path / "run")
    assert _step(tmp_path / "run") == 2


def test_nan_before_the_first_checkpoint_says_so(tmp_path, tiny_synthetic, tiny_config, monkeypatch):
    _interrupt_at(monkeypatch, 1, lambda loss: loss * float("nan"))
    with pytest.raises(NonFiniteLossError, match="loss is nan at step 1 .*No checkpoint was written yet: a rerun starts from step 0"):
        train(tiny_config(tiny_synthetic), tmp_path / "run")


def test_curve_and_metrics_survive_reruns_that_deleted_them(tmp_path, tiny_synthetic, tiny_config, monkeypatch):
    """Snakemake deletes a rerun job's outputs (val_curve.csv, train_metrics.json) first."""
    cfg = tiny_config(tiny_synthetic)
    with monkeypatch.context() as m:
        _interrupt_at(m, 3, _stop)
        with pytest.raises(KeyboardInterrupt):
            train(cfg, tmp_path / "run")
    (tmp_path / "run" / "val_curve.csv").unlink()
    train(cfg, tmp_path / "run")
    lines = (tmp_path / "run" / "val_curve.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in lines] == ["step", "2", "4"]
    first = json.loads((tmp_path / "run" / "train_metrics.json").read_text())
    for name in ("val_curve.csv", "train_metrics.json"):
        (tmp_path / "run" / name).unlink()
    again = train(cfg, tmp_path / "run")  # finished: nothing to train, everything from the checkpoint
    assert again["resumed_from"] == 4 and again["final_train_loss"] == first["final_train_loss"]
    assert again["train_images_per_s"] == first["train_images_per_s"] and again["final_val_miou"] == first["final_val_miou"]
    assert (tmp_path / "run" / "val_curve.csv").read_text().splitlines() == lines


def test_second_training_on_a_run_folder_is_refused_naming_the_holder(tmp_path, tiny_synthetic, tiny_config):
    run = tmp_path / "run"
    with locked(run / ".lock", what="test holder"):
        with pytest.raises(LockedError, match=rf"run folder {run} is in use by another process \(pid \d+ on "):
            train(tiny_config(tiny_synthetic), run)
    assert not (run / "config.yaml").exists()


def test_bad_predict_options_stop_before_training(tmp_path, tiny_synthetic, tiny_config):
    with pytest.raises(ConfigError, match=r"eval.predict: SmpClassifier.predict has no option 'steps'; it takes none"):
        train(tiny_config(tiny_synthetic, eval__predict={"steps": 2}), tmp_path / "a")
    flow = {"method": "flowseg", "hidden_size": 32, "num_heads": 2, "transformer_blocks": 1, "field_blocks": 1, "field_width": 8,
            "pixel_features": 8}
    with pytest.raises(ConfigError, match=r"eval.predict.steps must be an integer >= 1"):
        train(tiny_config(tiny_synthetic, model=flow, eval__predict={"steps": 0}), tmp_path / "b")
    with pytest.raises(ConfigError, match=r"has no option 'stpes'; it takes steps, sampler, seed"):
        train(tiny_config(tiny_synthetic, model=flow, eval__predict={"stpes": 2}), tmp_path / "c")
    assert not (tmp_path / "b" / "checkpoint.safetensors").exists()


@pytest.mark.parametrize("key,value", [
    ("optim__lr", float("nan")), ("optim__lr", float("inf")), ("optim__weight_decay", -0.01),
    ("train__checkpoint_every", -1), ("optim__grad_clip", float("nan")), ("optim__betas", [0.9, 1.5]),
])
def test_bad_numbers_are_named(tmp_path, tiny_config, key, value):
    name = key.replace("__", ".")
    with pytest.raises(ConfigError, match=rf"{name} must be"):
        tiny_config(tmp_path, **{key: value})


def test_save_checkpoint_refuses_non_finite_tensors(tmp_path):
    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        model.weight[0, 0] = float("nan")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    with pytest.raises(CheckpointError, match=r"non-finite values in model.weight"):
        save_checkpoint(tmp_path / "checkpoint", step=1, model=model, optimizer=opt, scheduler=sched)
    assert not list(tmp_path.iterdir())


def test_run_config_round_trip_unchanged():
    """The hash a checkpoint is compared by is stable across a YAML round trip."""
    cfg = RunConfig.from_dict({"name": "x", "optim": {"lr": 0.002}})
    assert RunConfig.from_dict(cfg.to_dict()).hash() == cfg.hash()


def _launch(run, *args):
    """``genseg train`` in its own process group (so a SIGKILL takes it whole)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    return subprocess.Popen([sys.executable, "-m", "genseg", "train", str(run / "config.yaml"), *args], env=env,
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _kill_when(job, condition, timeout=300.0) -> bool:
    """SIGKILL the job's process group as soon as ``condition()`` holds; False when the job ended
    (or the timeout passed, the job then killed) before it did."""
    deadline = time.time() + timeout
    while job.poll() is None and time.time() < deadline:
        if condition():
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()
            return True
        time.sleep(0.002)
    if job.poll() is None:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()
    return False


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["after a random step", "inside a checkpoint write"])
def test_sigkill_then_rerun_gives_the_uninterrupted_weights(tmp_path, tiny_synthetic, tiny_config, moment):
    """A real SIGKILL to a running ``genseg train`` (at a random step, or while its checkpoint's temp
    file is on disk); the rerun resumes and ends on the uninterrupted run's weights, bitwise."""
    cfg = tiny_config(tiny_synthetic, optim__iterations=8, train__checkpoint_every=1, train__val_every=4)
    train(cfg, tmp_path / "straight")
    run = tmp_path / "run"
    after = random.Random(os.getpid()).randint(1, 6)  # a different step on each run of the suite
    ckpt = run / "checkpoint.json"
    moments = {"inside a checkpoint write": lambda: any(run.glob("checkpoint.safetensors.tmp-*")) and (run / "checkpoint.safetensors").exists(),
               "after a random step": lambda: ckpt.exists() and json.loads(ckpt.read_text() or "{}").get("step", 0) >= after}
    for _ in range(5):  # a busy machine can let a short run slip past the poll: start it again
        shutil.rmtree(run, ignore_errors=True)
        run.mkdir()
        (run / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
        if _kill_when(_launch(run), moments[moment]):
            break
    else:
        pytest.fail(f"five runs ended before the kill could land {moment}")
    assert not (run / "model.safetensors").exists(), "the kill came too late"
    resumed = train(cfg, run)
    assert 1 <= resumed["resumed_from"] < 8 and _same_weights(tmp_path / "straight", run)
    assert not list(run.glob("*.tmp-*"))
