"""Speed benchmarks (pytest-benchmark). In the normal suite they run once as smoke tests;
measure with: python -m pytest tests/test_benchmarks.py --benchmark-enable"""

import pytest
import torch

from genseg.config import ModelConfig
from genseg.methods import build_method

BATCH, SIZE, CLASSES = 16, 64, 12


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.rand(BATCH, 3, SIZE, SIZE, generator=g), torch.randint(0, CLASSES, (BATCH, SIZE, SIZE), generator=g)


def _train_step(model, opt, images, labels):
    loss, _ = model.training_loss(images, labels)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


@pytest.mark.parametrize("method", ["flowseg", "deeplabv3plus"])
def test_train_step(benchmark, batch, method):
    torch.manual_seed(0)
    model = build_method(ModelConfig(method, {}), CLASSES).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss = benchmark(_train_step, model, opt, *batch)
    assert loss == loss  # finite


@pytest.mark.parametrize("method, options", [("flowseg", {"steps": 1}), ("flowseg", {"steps": 10}), ("deeplabv3plus", {})])
def test_predict(benchmark, batch, method, options):
    """A 1-step FlowSeg prediction against a DeepLabV3+ one with the same backbone (resnet18)."""
    torch.manual_seed(0)
    model = build_method(ModelConfig(method, {}), CLASSES).eval()
    with torch.no_grad():
        pred = benchmark(model.predict, batch[0], **options)
    assert pred.shape == (BATCH, SIZE, SIZE)
