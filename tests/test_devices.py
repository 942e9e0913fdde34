"""One device per job (genseg.devices) and the accelerator RNG in checkpoints, all without a GPU:
the visible device count is injected (GENSEG_NUM_DEVICES / an argument), the accelerator faked."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from genseg import devices
from genseg.cli import main
from genseg.engine import checkpoint, provenance
from genseg.io import write_yaml

REPO = Path(__file__).resolve().parents[1]

# A job: take one of 4 pretend devices, write the index it would use, hold it until killed.
HOLDER = """
import sys, time
from pathlib import Path
from genseg import devices
slots = devices.acquire(1, 4, directory=Path(sys.argv[1]))
Path(sys.argv[2]).write_text(str(slots[0]))
time.sleep(60)
"""


def _start(lock_dir: Path, out: Path, **env) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock_dir), str(out)],
        env={**os.environ, "PYTHONPATH": str(REPO), **env}, stderr=subprocess.PIPE, text=True,
    )


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 20) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    raise AssertionError(f"{path} not written in {seconds} s")


def test_concurrent_jobs_get_distinct_slots_the_next_waits_and_a_killed_holder_frees_its_slot(tmp_path):
    locks, procs = tmp_path / "locks", []
    try:
        holders = [_start(locks, tmp_path / f"job{i}") for i in range(4)]
        procs += holders
        slots = [int(_wait_for(tmp_path / f"job{i}", p)) for i, p in enumerate(holders)]
        assert sorted(slots) == [0, 1, 2, 3]  # four concurrent jobs, four distinct devices

        fifth = _start(locks, tmp_path / "job4")
        procs.append(fifth)
        time.sleep(1.5)
        assert fifth.poll() is None and not (tmp_path / "job4").exists()  # all busy: it waits

        victim = holders[slots.index(2)]
        victim.send_signal(signal.SIGKILL)  # a crash: the OS drops its flock
        victim.wait()
        assert _wait_for(tmp_path / "job4", fifth) == "2"

        # With a time limit, a job that finds no free slot fails, naming the setting and the holders.
        sixth = _start(locks, tmp_path / "job5", GENSEG_DEVICE_WAIT_S="0.5")
        procs.append(sixth)
        assert sixth.wait(timeout=30) != 0
        err = sixth.stderr.read()
        assert "no 1 free device slot(s) of 4" in err and "GENSEG_DEVICE_WAIT_S" in err and "pid" in err
        assert not (tmp_path / "job5").exists()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_a_job_takes_n_slots_at_once_or_none(tmp_path):
    held = os.open(tmp_path / "slot-1.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another job holds device 1
    try:
        assert devices.acquire(2, 4, directory=tmp_path) == [0, 2]
        with pytest.raises(devices.DeviceError, match="no 2 free device slot"):
            devices.acquire(2, 4, directory=tmp_path, timeout=0.3)  # only 3 left: takes none
        assert devices.held_slots() == [0, 2]
    finally:
        devices.release()
        os.close(held)


def test_auto_device_claims_a_free_slot_and_provenance_records_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GENSEG_NUM_DEVICES", "4")
    monkeypatch.setenv("GENSEG_DEVICE_LOCK_DIR", str(tmp_path))
    monkeypatch.setattr(provenance, "resolve_device", lambda name: torch.device("xpu"))  # a pretend accelerator
    current = []
    monkeypatch.setattr(torch.accelerator, "set_device_index", current.append)
    held = os.open(tmp_path / "slot-0.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        device = devices.claim_device("auto", 1)
        assert device == torch.device("xpu", 1) and current == [device]
        monkeypatch.setattr(provenance, "device_name", str)
        assert provenance.provenance("hash", 0, device)["device_slots"] == [1]
        assert devices.claim_device("cpu", 1) == torch.device("cpu")  # a run pinned to the CPU takes none
    finally:
        devices.release()
        os.close(held)


@pytest.mark.parametrize("gpus, visible", [(2, "1"), (1, "0")])
def test_more_gpus_than_visible_is_named_before_training(tmp_path, monkeypatch, capsys, tiny_config, gpus, visible):
    monkeypatch.setenv("GENSEG_NUM_DEVICES", visible)
    cfg = tiny_config(tmp_path / "no-data", device="auto")
    write_yaml(tmp_path / "cfg" / "config.yaml", cfg.to_dict())
    assert main(["train", str(tmp_path / "cfg" / "config.yaml"), "--run-dir", str(tmp_path / "run"), "--gpus", str(gpus)]) == 2
    err = capsys.readouterr().err
    assert "resources.gpus_per_job" in err and f"asks for {gpus} device(s) but {visible}" in err
    assert not (tmp_path / "run").exists()  # nothing started (the data root does not even exist)
    # evaluate: the same check, before the model is loaded (this run has none)
    assert main(["evaluate", str(tmp_path / "cfg"), "--out", str(tmp_path / "e.json"), "--gpus", str(gpus)]) == 2
    assert "resources.gpus_per_job" in capsys.readouterr().err and not (tmp_path / "e.json").exists()


def test_bad_device_count_override_is_named(monkeypatch):
    monkeypatch.setenv("GENSEG_NUM_DEVICES", "two")
    with pytest.raises(devices.DeviceError, match="GENSEG_NUM_DEVICES"):
        devices.visible_device_count()


class _FakeAccelerator:
    """A device module with one RNG state, as torch.get_device_module(type) gives for CUDA/XPU/MPS."""

    def __init__(self):
        self.state = torch.arange(16, dtype=torch.uint8)

    def get_rng_state(self, device):
        return self.state.clone()

    def set_rng_state(self, state, device):
        self.state = state.clone()


def _parts():
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return dict(model=model, optimizer=optimizer, scheduler=torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: 1.0))


def test_accelerator_rng_state_round_trips_and_old_checkpoints_load(tmp_path, monkeypatch):
    fake = _FakeAccelerator()
    real = torch.get_device_module
    monkeypatch.setattr(torch, "get_device_module", lambda kind=None: fake if kind == "xpu" else real(kind))

    # A CPU run is unchanged: no accelerator state in its checkpoint.
    checkpoint.save_checkpoint(tmp_path / "cpu", step=1, **_parts())
    with safe_open(str(tmp_path / "cpu.safetensors"), framework="pt") as f:
        assert "rng.accelerator" not in f.keys() and "rng_accelerator" not in f.metadata()

    monkeypatch.setattr(checkpoint, "_device_of", lambda model: torch.device("xpu"))  # the model "on an accelerator"
    saved = fake.state.clone()
    checkpoint.save_checkpoint(tmp_path / "acc", step=2, **_parts())
    with safe_open(str(tmp_path / "acc.safetensors"), framework="pt") as f:
        assert f.metadata()["rng_accelerator"] == "xpu"
    fake.state = torch.zeros(16, dtype=torch.uint8)
    checkpoint.load_checkpoint(tmp_path / "acc", **_parts())
    assert torch.equal(fake.state, saved)

    # A checkpoint without the key (written before, or by a CPU run) loads and leaves the device RNG alone.
    fake.state = torch.ones(16, dtype=torch.uint8)
    assert checkpoint.load_checkpoint(tmp_path / "cpu", **_parts())["step"] == 1
    assert torch.equal(fake.state, torch.ones(16, dtype=torch.uint8))
