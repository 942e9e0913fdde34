"""Multi-process (DDP) training on the CPU with the gloo backend: sharding, equivalence, resume, bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml
from safetensors import safe_open
from safetensors.torch import load_file

from conftest import GroupNormNet, tiny_run_config
from genseg.config import ConfigError
from genseg.data.base import StreamSampler
from genseg.engine.distributed import spawn
from genseg.engine.train import train

ITERS = 10


def _batches(sampler, batch, count):
    stream = iter(sampler)
    return [[next(stream) for _ in range(batch)] for _ in range(count)]


@pytest.mark.parametrize("start", [0, 24])
def test_ranks_read_the_one_process_stream_in_contiguous_shares(start):
    one = _batches(StreamSampler(10, seed=3, start=start), 6, 5)
    ranks = [_batches(StreamSampler(10, seed=3, start=start, rank=r, world=3, batch=6), 2, 5) for r in range(3)]
    for i, batch in enumerate(one):
        assert sum((ranks[r][i] for r in range(3)), []) == batch


def test_stream_sampler_rejects_uneven_shares():
    with pytest.raises(ValueError, match="batch 5 must split over 2 ranks"):
        StreamSampler(10, seed=0, rank=0, world=2, batch=5)


def _cfg(root, **overrides):
    return tiny_run_config(root, **{"optim__iterations": ITERS, "train__val_every": ITERS // 2, "train__checkpoint_every": 1, **overrides})


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory, tiny_synthetic):
    run = tmp_path_factory.mktemp("ddp") / "two"
    record = train(_cfg(tiny_synthetic), run, processes=2)
    return run, record


def _group_norm_process(rank, world, cfg, run_dir, devices):
    """A spawn target: ``train_process`` with the model swapped for :class:`GroupNormNet` in this process."""
    from genseg.engine import train as train_module

    train_module.build_method = lambda model, num_classes, ignore: GroupNormNet(num_classes, ignore)
    return train_module.train_process(rank, world, cfg, run_dir, devices)


@pytest.mark.slow
def test_two_processes_train_exactly_as_one_at_the_global_batch(tmp_path, tiny_synthetic, monkeypatch):
    """No batch statistics and no random draw in the model: 2 processes x 2 images give one process's
    batch-4 weights and losses to float tolerance (the gradient is averaged over ranks; the ranks read
    the two halves of each global batch), with 2 micro-batches per step too (no_sync on the first)."""
    from genseg.engine import train as train_module

    monkeypatch.setattr(train_module, "build_method", lambda model, num_classes, ignore: GroupNormNet(num_classes, ignore))
    common = {"train__val_every": 0, "optim__iterations": 4, "train__checkpoint_every": 0}
    cfg = _cfg(tiny_synthetic, **common, train__accumulate=2)
    one = train(cfg, tmp_path / "one")
    spawn(_group_norm_process, 2, (cfg, tmp_path / "two", [torch.device("cpu")] * 2))
    two = json.loads((tmp_path / "two" / "train_metrics.json").read_text())
    a, b = load_file(str(tmp_path / "one" / "model.safetensors")), load_file(str(tmp_path / "two" / "model.safetensors"))
    assert two["processes"] == 2 and max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5
    assert two["final_train_loss"] == pytest.approx(one["final_train_loss"], rel=1e-5)
    # and not one rank's half alone
    half = train(_cfg(tiny_synthetic, **common, train__accumulate=2, data__batch_size=2), tmp_path / "half")
    c = load_file(str(tmp_path / "half" / "model.safetensors"))
    assert half["effective_batch_size"] == 4 and max((a[k] - c[k]).abs().max().item() for k in a) > 1e-4


@pytest.mark.slow
def test_two_processes_at_global_batch_follow_one_process(tmp_path, tiny_synthetic, two_process_run):
    """DeepLabV3+ at global batch 4: 2 processes x 2 images vs 1 x 4. Its BatchNorm statistics are
    per rank (2 images; SyncBN runs on accelerators only) and its ASPP dropout draws differ per rank,
    hence a tolerance: each validation point's training loss within 5% and mIoU within 0.05."""
    run, two = two_process_run
    one = train(_cfg(tiny_synthetic), tmp_path / "one")
    assert two["processes"] == 2 and one["processes"] == 1 and two["effective_batch_size"] == one["effective_batch_size"] == 4
    curves = [[line.split(",") for line in (d / "val_curve.csv").read_text().splitlines()[1:]] for d in (tmp_path / "one", run)]
    assert [row[0] for row in curves[0]] == [row[0] for row in curves[1]] == [str(ITERS // 2), str(ITERS)]
    for a, b in zip(*curves):
        assert float(b[2]) == pytest.approx(float(a[2]), rel=0.05)  # training loss, averaged over ranks
        assert float(b[1]) == pytest.approx(float(a[1]), abs=0.05)  # validation mIoU
    # only rank 0 wrote: one TensorBoard file; every rank's RNG state is in the checkpoint
    assert len(list((run / "tb").iterdir())) == 1
    with safe_open(str(run / "checkpoint.safetensors"), framework="pt") as f:
        assert {"rng.torch", "rng.rank1.torch"} <= set(f.keys())
        assert not torch.equal(f.get_tensor("rng.torch"), f.get_tensor("rng.rank1.torch"))


@pytest.mark.slow
def test_killed_two_process_run_resumes_to_the_same_weights(tmp_path, tiny_synthetic, tiny_config, two_process_run):
    """SIGKILL to the whole job (launcher and both ranks) mid-run; the rerun resumes from the
    last checkpoint and ends with the uninterrupted run's weights."""
    straight, _ = two_process_run
    run = tmp_path / "killed"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(_cfg(tiny_synthetic).to_dict()))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(p) for p in sys.path if p])}
    job = subprocess.Popen([sys.executable, "-m", "genseg", "train", str(run / "config.yaml"), "--processes", "2"],
                           env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and job.poll() is None:
        ckpt = run / "checkpoint.json"
        if ckpt.exists() and json.loads(ckpt.read_text())["step"] >= 2:
            break
        time.sleep(0.02)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    step = json.loads((run / "checkpoint.json").read_text())["step"]
    assert 2 <= step < ITERS and not (run / "model.safetensors").exists()
    resumed = train(_cfg(tiny_synthetic), run, processes=2)
    assert resumed["resumed_from"] == step
    a, b = load_file(str(straight / "model.safetensors")), load_file(str(run / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_uneven_global_batch_is_refused_before_compute(tmp_path, tiny_synthetic, tiny_config):
    with pytest.raises(ConfigError, match="data.batch_size 3 is the global batch .* 2 processes"):
        train(tiny_config(tiny_synthetic, data__batch_size=3), tmp_path / "run", processes=2)
    assert not (tmp_path / "run").exists()


def test_sync_bn_on_the_cpu_is_refused_before_compute(tmp_path, tiny_synthetic, tiny_config):
    with pytest.raises(ConfigError, match="train.sync_bn: .* accelerators only"):
        train(tiny_config(tiny_synthetic, train__sync_bn=True), tmp_path / "run", processes=2)
    assert not (tmp_path / "run").exists()


def test_processes_must_be_positive(tmp_path, tiny_synthetic, tiny_config):
    with pytest.raises(ConfigError, match="--processes must be >= 1"):
        train(tiny_config(tiny_synthetic), tmp_path / "run", processes=0)
