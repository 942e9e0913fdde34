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
    same, native = predict_batch(model, images, labels, 5, scale=0.5, return_native=True)
    assert torch.equal(same, pred) and native.shape == (2, 20, 30)
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


class BlockModel(torch.nn.Module):
    """Predicts, at whatever size it is given, 8 px blocks of random classes with a fraction
    ``noise`` of pixels given random classes (noise=1: per-pixel noise, no grid); keeps its outputs."""

    def __init__(self, noise):
        super().__init__()
        self.noise, self.outputs = noise, []
        self.generator = torch.Generator().manual_seed(0)

    def predict(self, images):
        b, _, h, w = images.shape
        g = self.generator
        pred = torch.randint(0, 5, (b, h // 8 + 1, w // 8 + 1), generator=g).repeat_interleave(8, 1).repeat_interleave(8, 2)
        pred = pred[:, :h, :w]
        flip = torch.rand(pred.shape, generator=g) < self.noise
        pred = torch.where(flip, torch.randint(0, 5, pred.shape, generator=g), pred)
        self.outputs.append(pred)
        return pred


@pytest.mark.parametrize("noise", [0.02, 1.0])
def test_grid_ratio_is_counted_at_the_model_resolution(tmp_path, noise):
    """Eval scale 0.5: the model predicts at half the labels' size. Counted there, blocks show
    (ratio > 1) and per-pixel noise gives 1.0; counted after the nearest 2x upsampling, noise
    would change labels only between odd and even pixels (ratio 7/3 at 8 px)."""
    import numpy as np
    from PIL import Image

    from genseg.data.base import SegmentationDataset, SplitSpec, identity_lut
    from genseg.engine.evaluate import predict_split
    from genseg.metrics import GridArtifacts

    rng, pairs = np.random.default_rng(0), []
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
        Image.fromarray(rng.integers(0, 5, (128, 128), dtype=np.uint8)).save(tmp_path / f"{i}_label.png")
        pairs.append((tmp_path / f"{i}.png", tmp_path / f"{i}_label.png"))
    spec = SplitSpec("grid", tuple("abcde"), tuple(pairs), identity_lut(5))
    model = BlockModel(noise)
    out = predict_split(model, SegmentationDataset(spec), torch.device("cpu"), batch_size=2, window={"scale": 0.5})
    assert [tuple(o.shape) for o in model.outputs] == [(2, 64, 64)] * 2
    expected = GridArtifacts()
    for o in model.outputs:
        expected.update(o)
    assert out["grid_ratio"] == {str(p): r for p, r in expected.ratios().items()}
    if noise < 1:
        assert out["grid_ratio"]["8"] > 5 and out["grid_ratio"]["16"] > 1
    else:
        assert out["grid_ratio"]["8"] == pytest.approx(1.0, abs=0.1) and out["grid_ratio"]["16"] == pytest.approx(1.0, abs=0.1)
        upsampled = GridArtifacts()
        for o in model.outputs:
            upsampled.update(o.repeat_interleave(2, 1).repeat_interleave(2, 2))
        assert upsampled.ratios()[8] == pytest.approx(7 / 3, abs=0.2)  # what counting at the labels' size would say
