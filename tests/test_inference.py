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


def test_whole_mode_pads_to_the_divisor_and_crops_back():
    model = PixelModel()
    images, labels = torch.rand(1, 3, 37, 50), torch.zeros(1, 37, 50, dtype=torch.long)
    pred = predict_batch(model, images, labels, 5, size_divisor=32)
    assert model.seen == [(64, 64)] and pred.shape == (1, 37, 50)
    assert torch.equal(pred, model.conv(images).argmax(1))  # per-pixel: padding changes nothing inside


def test_scaled_inference_predicts_at_the_label_resolution():
    """Images resized by ``scale`` for the model; the prediction comes back at the label's size."""
    model = PixelModel()
    images, labels = torch.rand(2, 3, 40, 60), torch.zeros(2, 40, 60, dtype=torch.long)
    pred = predict_batch(model, images, labels, 5, scale=0.5)
    assert model.seen == [(20, 30)] and pred.shape == (2, 40, 60)
    slide = predict_batch(model, images, labels, 5, mode="slide", crop=16, stride=8, scale=0.5)
    assert slide.shape == (2, 40, 60) and torch.equal(slide, pred)
    with pytest.raises(ConfigError, match="eval.scale"):
        RunConfig.from_dict({"eval": {"scale": 0}})


def test_images_of_different_sizes_are_evaluated_at_their_own_size(tmp_path):
    """ADE20K-like splits mix image sizes: each is predicted and scored at its own resolution."""
    import numpy as np
    from PIL import Image

    from genseg.data.base import SegmentationDataset, SplitSpec, identity_lut
    from genseg.engine.evaluate import predict_split
    from genseg.metrics import ConfusionMatrix

    pairs, model = [], PixelModel(num_classes=3)
    rng = np.random.default_rng(0)
    matrix = ConfusionMatrix(3)
    for i, (h, w) in enumerate([(20, 30), (20, 30), (17, 25)]):
        image, label = rng.integers(0, 255, (h, w, 3), dtype=np.uint8), rng.integers(0, 3, (h, w), dtype=np.uint8)
        Image.fromarray(image).save(tmp_path / f"{i}.png")
        Image.fromarray(label).save(tmp_path / f"{i}_label.png")
        pairs.append((tmp_path / f"{i}.png", tmp_path / f"{i}_label.png"))
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
        matrix.update(model.conv(x).argmax(1), torch.from_numpy(label)[None].long())
    spec = SplitSpec("mixed", ("a", "b", "c"), tuple(pairs), identity_lut(3))
    out = predict_split(model, SegmentationDataset(spec), torch.device("cpu"), batch_size=3, per_image=True)
    assert out["num_images"] == 3 and out["per_image"]["intersect"].shape == (3, 3)
    assert out["scores"]["miou"] == pytest.approx(matrix.compute()["miou"])
