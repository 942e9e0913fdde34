"""Shared fixtures. No test touches the network: hub access is switched off here."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("OMP_NUM_THREADS", "2")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from genseg.config import RunConfig  # noqa: E402
from genseg.data import synthetic  # noqa: E402
from genseg.methods.base import PixelClassifier  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# The real CamVid copy: $GENSEG_DATA/camvid, else ../shared/data/camvid beside the repository
# (as workflow/config/camvid.yaml reads it); tests that need it skip when it is absent.
CAMVID_ROOT = Path(os.environ["GENSEG_DATA"], "camvid") if os.environ.get("GENSEG_DATA") else REPO.parent / "shared" / "data" / "camvid"


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory) -> Path:
    """A small synthetic dataset on disk (64 px, two domains)."""
    root = tmp_path_factory.mktemp("data") / "synthetic"
    synthetic.generate(root, seed=0, image_size=64, num_train=24, num_val=8, num_test=8, domains=("clean", "shifted"), workers=1)
    return root


@pytest.fixture
def tiny_config():
    """``tiny_config(root, section__field=value, ...)``: a few-step DeepLabV3+ run config."""
    return tiny_run_config


def tiny_run_config(root: Path, **overrides) -> RunConfig:
    """A run config that trains DeepLabV3+ for a few steps on ``root``."""
    data = {
        "name": "tiny",
        "seed": 0,
        "device": "cpu",
        "data": {"dataset": "synthetic", "root": str(root), "train_domains": ["clean"], "batch_size": 4, "crop_size": 64},
        "model": {"method": "deeplabv3plus", "encoder": "tu-resnet18"},
        "optim": {"iterations": 4, "warmup_iters": 1, "lr": 1e-3},
        "train": {"log_every": 1, "val_every": 2, "val_max_images": 4, "checkpoint_every": 2, "progress": False},
        "eval": {"batch_size": 4},
    }
    for key, value in overrides.items():
        section, _, field = key.partition("__")
        if field:
            data[section] = {**data[section], field: value}
        else:
            data[section] = value
    return RunConfig.from_dict(data)


def fixed_batch_steps(model, images, labels, steps: int, lr: float) -> list[dict]:
    """``steps`` AdamW steps on one batch with the same random draws each step (t, noise: a fixed
    objective); returns each step's logs with ``loss`` as a float."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    logs = []
    for _ in range(steps):
        torch.manual_seed(1)
        loss, log = model.training_loss(images, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        logs.append({**log, "loss": loss.item()})
    return logs



class GroupNormNet(PixelClassifier):
    """No batch-dependent layer, no random draw, and a loss that is a mean over every pixel of the
    batch (ignored pixels count 0): the loss of 2b images is exactly the mean of two b-image losses."""

    def __init__(self, num_classes: int, ignore_index: int = 255):
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.GroupNorm(2, 8), torch.nn.ReLU(),
                                  torch.nn.Conv2d(8, num_classes, 1))
        super().__init__(net, num_classes, ignore_index, size_divisor=1)

    def training_loss(self, images, labels):
        loss = F.cross_entropy(self.logits(images), labels, ignore_index=self.ignore_index, reduction="none").mean()
        return loss, {"loss": loss.item()}
