"""Sliding-window inference: window placement, equivalence for per-pixel models, bounded crops."""

import pytest
import torch

from genseg.config import ConfigError, RunConfig
from genseg.engine.inference import predict_batch, window_starts


class PixelModel(torch.nn.Module):
    """A per-pixel classifier (1x1 conv): sliding windows must not change its answer."""

    def __init__(self, num_classes=5, crop=None):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, num_classes, 1)
        self.crop, self.seen = crop, []

    def predict(self, images):
        self.seen.append(tuple(images.shape[-2:]))
        return self.conv(images).argmax(1)


@pytest.mark.parametrize("size,crop,stride,expected", [(10, 4, 3, [0, 3, 6]), (11, 4, 3, [0, 3, 6, 7]), (4, 8, 4, [0]), (8, 8, 4, [0])])
def test_window_starts_cover_the_axis(size, crop, stride, expected):
    assert window_starts(size, crop, stride) == expected


def test_slide_equals_whole_for_a_per_pixel_model_and_crops_are_bounded():
    model = PixelModel()
    images, labels = torch.rand(2, 3, 37, 50), torch.zeros(2, 37, 50, dtype=torch.long)
    whole = predict_batch(model, images, labels, 5)
    model.seen.clear()
    slide = predict_batch(model, images, labels, 5, mode="slide", crop=16, stride=12)
    assert torch.equal(whole, slide)
    assert max(h for h, _ in model.seen) <= 16 and max(w for _, w in model.seen) <= 16
    assert len(model.seen) == len(window_starts(37, 16, 12)) * len(window_starts(50, 16, 12))


def test_slide_mode_needs_crop_and_stride():
    with pytest.raises(ConfigError, match="eval.crop"):
        RunConfig.from_dict({"eval": {"mode": "slide", "crop": 0, "stride": 0}})
    with pytest.raises(ConfigError, match="eval.mode"):
        RunConfig.from_dict({"eval": {"mode": "sliding"}})
    assert RunConfig.from_dict({"eval": {"mode": "slide", "crop": 64, "stride": 48}}).eval.crop == 64
