"""Official training / test recipes as config data: SGD, param-name multipliers, mmseg's pipeline, test resize."""

import numpy as np
import pytest
import torch
from torch import nn

from genseg.config import ConfigError, OptimConfig, RunConfig
from genseg.data.base import IGNORE_INDEX
from genseg.data.transforms import MmsegTransform, cat_max_crop, keep_ratio_resize, keep_ratio_size, photo_metric_distortion
from genseg.engine.inference import predict_batch
from genseg.engine.train import build_optimizer, match_key, poly_schedule


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.backbone.add_module("pos_block", nn.Conv2d(4, 4, 1))
        self.decode_head = nn.Sequential(nn.Conv2d(4, 4, 1), nn.LayerNorm(4))


def group_of(optimizer, param):
    return next(g for g in optimizer.param_groups if any(p is param for p in g["params"]))


def test_sgd_param_groups_by_name_pattern():
    """SegFormer's mmseg keys: head lr x 10, pos_block and norm no decay; the longest key wins."""
    net = Net()
    keys = {"head": {"lr_mult": 10.0}, "norm": {"decay_mult": 0.0}, "pos_block": {"decay_mult": 0.0},
            "decode_head.1": {"lr_mult": 10.0, "decay_mult": 0.0}}
    optim = OptimConfig(optimizer="sgd", lr=0.01, weight_decay=5e-4, custom_keys=keys, decay_1d=True)
    opt = build_optimizer(net, optim)
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["momentum"] == 0.9 and opt.defaults["nesterov"] is False
    cases = {
        net.backbone[0].weight: (0.01, 5e-4), net.backbone[0].bias: (0.01, 5e-4),  # decay_1d: biases decay too
        net.backbone[1].weight: (0.01, 5e-4),  # "backbone.1.weight": a BN without "norm" in its name
        net.decode_head[1].bias: (0.1, 0.0),
        net.backbone.pos_block.weight: (0.01, 0.0),
        net.decode_head[0].weight: (0.1, 5e-4), net.decode_head[1].weight: (0.1, 0.0),
    }
    for param, (lr, decay) in cases.items():
        group = group_of(opt, param)
        assert group["lr"] == pytest.approx(lr) and group["weight_decay"] == pytest.approx(decay)
    assert match_key("decode_head.norm.weight", ["head", "norm"]) == "head"  # equal length: alphabetical, as mmseg
    by_type = build_optimizer(net, OptimConfig(lr=1.0, weight_decay=0.1, decay_1d=True, norm_decay_mult=0.0))
    assert group_of(by_type, net.backbone[1].weight)["weight_decay"] == 0.0  # a norm layer, by type (mmseg's norm_decay_mult)
    assert group_of(by_type, net.backbone[0].bias)["weight_decay"] == 0.1
    plain = build_optimizer(net, OptimConfig(lr=1e-3, weight_decay=0.01))  # today's default: no decay on 1-D
    assert isinstance(plain, torch.optim.AdamW)
    assert group_of(plain, net.backbone[0].bias)["weight_decay"] == 0.0 and group_of(plain, net.backbone[0].weight)["weight_decay"] == 0.01


def test_a_model_without_trainable_parameters_still_gets_an_optimizer():
    frozen = Net().requires_grad_(False)  # oracle runs (iterations 0) train nothing
    assert build_optimizer(frozen, OptimConfig()).param_groups[0]["params"] == []


def test_poly_decays_to_min_lr():
    f = poly_schedule(0, 10, 0.9, min_ratio=0.01)
    assert f(0) == pytest.approx(1.0) and f(10) == pytest.approx(0.01) and 0.01 < f(5) < 1


def test_recipe_keys_are_checked():
    with pytest.raises(ConfigError, match="optim.optimizer"):
        RunConfig.from_dict({"optim": {"optimizer": "adam"}})
    with pytest.raises(ConfigError, match=r"optim.custom_keys.norm: expected a mapping of lr_mult and/or decay_mult"):
        RunConfig.from_dict({"optim": {"custom_keys": {"norm": {"decay": 0}}}})
    with pytest.raises(ConfigError, match="data.pipeline"):
        RunConfig.from_dict({"data": {"pipeline": "timm"}})
    with pytest.raises(ConfigError, match="eval.resize"):
        RunConfig.from_dict({"eval": {"resize": [2048, 0]}})


def test_photo_metric_distortion_keeps_uint8_range_and_changes_pixels():
    image = np.random.default_rng(0).integers(0, 256, (16, 20, 3), dtype=np.uint8)
    outs = [photo_metric_distortion(image, np.random.default_rng(seed)) for seed in range(20)]
    assert all(o.dtype == np.uint8 and o.shape == image.shape for o in outs)
    assert sum(not np.array_equal(o, image) for o in outs) >= 15  # 4 steps at p = 0.5: 1/16 leave it unchanged
    assert not np.array_equal(outs[0], outs[1])


def test_cat_max_ratio_redraws_crops_one_class_dominates():
    """Class 1 only in the last 16 columns: a 16 px window holds < 75 % of one class only at left 37..43."""
    label = np.zeros((16, 64), np.uint8)
    label[:, 48:] = 1
    image = np.zeros((16, 64, 3), np.uint8)

    def mixed(ratio):
        hits = 0
        for seed in range(200):
            _, crop = cat_max_crop(image, label, np.random.default_rng(seed), 16, ratio)
            _, counts = np.unique(crop, return_counts=True)
            hits += len(counts) > 1 and counts.max() / counts.sum() < 0.75
        return hits / 200

    assert mixed(0.75) > 0.65 and mixed(1.0) < 0.25  # 1 - (42/49)^11 = 0.82 against 7/49 = 0.14


def test_keep_ratio_resize_fits_2048_by_512():
    assert keep_ratio_size(375, 500, (2048, 512)) == (512, 683)  # an ADE20K image: the short side sets it
    assert keep_ratio_size(1024, 2048, (2048, 512)) == (512, 1024)
    assert keep_ratio_size(100, 1000, (2048, 512)) == (205, 2048)  # a long panorama: the long side sets it
    image, label = np.zeros((375, 500, 3), np.uint8), np.zeros((375, 500), np.uint8)
    out, lab = keep_ratio_resize(image, label, (2048, 512))
    assert out.shape == (512, 683, 3) and lab.shape == (512, 683)
    out, lab = MmsegTransform(64, scale=(256, 64), cat_max_ratio=0.75)(image, label, np.random.default_rng(0))
    assert out.shape == (64, 64, 3) and lab.shape == (64, 64) and out.dtype == np.uint8


def test_whole_mode_resizes_keeping_the_ratio_and_predicts_at_label_size():
    seen = []

    class Stub(nn.Module):
        def predict(self, images):
            seen.append(tuple(images.shape[-2:]))
            return torch.zeros(images.shape[0], *images.shape[-2:], dtype=torch.long)

    labels = torch.full((1, 30, 40), IGNORE_INDEX)
    pred = predict_batch(Stub(), torch.rand(1, 3, 30, 40), labels, 3, resize=(128, 32), size_divisor=32)
    assert seen == [(32, 64)] and pred.shape == (1, 30, 40)  # 30 x 40 -> 32 x 43, padded to 32 x 64
