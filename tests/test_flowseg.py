import math

import pytest
import torch
import torch.nn.functional as F
from conftest import fixed_batch_steps

from genseg.config import ConfigError, ModelConfig, RunConfig
from genseg.engine.evaluate import evaluate_run
from genseg.engine.train import train
from genseg.experiments import eval_plan
from genseg.methods import build_method
from genseg.methods.flowseg.sampler import euler, heun, nfe, sample

TINY = {"hidden_size": 32, "num_heads": 2, "transformer_blocks": 1, "field_blocks": 1, "field_width": 8, "pixel_features": 8}


def tiny_flowseg(classes=5, **options):
    torch.manual_seed(0)
    return build_method(ModelConfig("flowseg", {**TINY, **options}), classes)


@pytest.mark.parametrize("options", [{}, {"prediction": "x", "source": "image", "encoding": "bits"}, {"time_sampling": "logit_normal", "schedule": "annealed", "distance_transform": "inverse"}])
def test_training_steps_lower_the_loss(options):
    model = tiny_flowseg(**options)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(4, 3, 32, 32, generator=g), torch.randint(0, 5, (4, 32, 32), generator=g)
    y[:, :2] = 255
    losses = [log["loss"] for log in fixed_batch_steps(model, x, y, 8, 2e-3)]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]


def test_predict_any_size_counts_nfe_and_is_deterministic_for_a_seed():
    model = tiny_flowseg().eval()
    x = torch.rand(2, 3, 40, 52)
    a = model.predict(x, steps=3, seed=7)
    assert a.shape == (2, 40, 52) and model.last_nfe == 3
    assert torch.equal(a, model.predict(x, steps=3, seed=7))
    model.predict(x, steps=3, sampler="heun")
    assert model.last_nfe == 6 == nfe("heun", 3)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        model.predict(x, steps=0)


def test_temperature_scales_the_noise_and_zero_is_deterministic():
    model = tiny_flowseg(steps=2, temperature=0.0).eval()
    x = torch.rand(2, 3, 32, 32)
    draw = model.source(x, torch.Generator().manual_seed(3))
    assert torch.equal(model.source(x, torch.Generator().manual_seed(3), temperature=2.5), 2.5 * draw)
    assert torch.equal(model.source(x, torch.Generator().manual_seed(3), temperature=0.0), torch.zeros_like(draw))
    with torch.no_grad():
        assert torch.equal(model.predict(x, seed=0), model.predict(x, seed=1))  # x_0 = 0 whatever the seed
        assert not torch.equal(model.predict(x, seed=0, temperature=1.0), model.predict(x, seed=1, temperature=1.0))
    model.check_predict_options({"temperature": 0.5})
    with pytest.raises(ConfigError, match="eval.predict.temperature must be a number >= 0"):
        model.check_predict_options({"temperature": -1})


def test_centroid_map_and_image_source():
    model = tiny_flowseg(encoding="bits", source="image")
    labels = torch.tensor([[[0, 3], [255, 4]]])
    x1 = model.centroid_map(labels)
    assert x1.shape == (1, 3, 2, 2) and torch.equal(x1[0, :, 1, 0], torch.zeros(3))
    assert torch.equal(x1[0, :, 0, 1], model.centroids[3])
    image = torch.rand(1, 3, 2, 2)
    assert torch.allclose(model.source(image)[:, 0], image[:, 0] * 2 - 1)


def test_samplers_on_known_fields():
    x0 = torch.ones(1, 1, 1, 1)
    const, n = euler(lambda x, t: torch.full_like(x, 2.0), x0, 4)
    assert torch.allclose(const, torch.full_like(x0, 3.0)) and n == 4
    e, _ = euler(lambda x, t: x, x0, 5)
    h, n = heun(lambda x, t: x, x0, 5)
    assert abs(h.item() - math.e) < abs(e.item() - math.e) and n == 10
    with pytest.raises(ValueError, match="unknown sampler 'rk9'"):
        sample("rk9", lambda x, t: x, x0, 2)


@pytest.mark.parametrize("bad, message", [({"encoding": "hilbert"}, "model.encoding = 'hilbert'"), ({"steps": 0}, "model.steps must be >= 1"), ({"tau": -1.0}, "model.tau must be > 0"), ({"samplr": "euler"}, "did you mean 'sampler'"),
                                          ({"temperature": -0.5}, "model.temperature must be >= 0")])
def test_bad_config_is_named(bad, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig.from_dict({"model": {"method": "flowseg", **bad}})


def test_one_checkpoint_evaluated_at_many_step_counts(tmp_path, tiny_synthetic, tiny_config):
    cfg = tiny_config(tiny_synthetic, optim__iterations=2, model={"method": "flowseg", **TINY})
    train(cfg, tmp_path / "flow-s0")
    for steps in (1, 2):
        record = evaluate_run(tmp_path / "flow-s0", "test", ["clean"], tmp_path / f"e{steps}.json", predict_options={"steps": steps}, progress=False)
        assert record["nfe"] == steps and record["predict_options"] == {"steps": steps}
        assert record["model"]["encoding"] == "kronecker"


def test_eval_plan_sweeps_only_in_domain():
    cfg = RunConfig.from_dict({"model": {"method": "flowseg"}, "data": {"train_domains": ["clean"]}})
    evaluate = {"domains": ["clean", "shifted"], "sweeps": {"flowseg": {"steps": [1, 10]}}}
    # 10 steps is the run's default: the {} entry measures it
    assert eval_plan(evaluate, cfg) == [("clean", {}), ("shifted", {}), ("clean", {"steps": 1})]
    five = RunConfig.from_dict({"model": {"method": "flowseg", "steps": 5}, "data": {"train_domains": ["clean"]}})
    assert eval_plan(evaluate, five)[2:] == [("clean", {"steps": 1}), ("clean", {"steps": 10})]
    baseline = RunConfig.from_dict({"data": {"train_domains": ["clean"]}})
    assert eval_plan(evaluate, baseline) == [("clean", {}), ("shifted", {})]
    # an ablation variant: its table row only (in-domain, own options); all domains when none is in-domain
    assert eval_plan(evaluate, five, with_sweeps=False) == [("clean", {})]
    elsewhere = RunConfig.from_dict({"model": {"method": "flowseg"}, "data": {"train_domains": ["other"]}})
    assert eval_plan(evaluate, elsewhere, with_sweeps=False) == [("clean", {}), ("shifted", {})]


@pytest.mark.parametrize("options", [
    {"condition": []},
    {"condition": [], "source": "image"},
    {"condition": ["stem"]},
    {"condition": ["encoder"]},
    {"condition": ["pixels"]},
    {"condition": ["stem", "encoder", "pixels"], "field_overlap": 2},
    {"flow_stride": 2, "output_stride": 16},
])
def test_every_way_the_image_enters_trains(options):
    """Each conditioning of ablations/flowseg-conditioning.yaml (and the field overlap, a coarser
    flow) builds, lowers the loss on a fixed batch and predicts at the input size."""
    model = tiny_flowseg(**options)
    assert (hasattr(model.net, "encoder")) == bool({"encoder", "pixels"} & set(options.get("condition", ("encoder", "pixels"))))
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 3, 32, 32, generator=g), torch.randint(0, 5, (2, 32, 32), generator=g)
    losses = [log["loss"] for log in fixed_batch_steps(model, x, y, 6, 3e-3)]
    assert losses[-1] < losses[0]
    assert model.eval().predict(torch.rand(1, 3, 40, 52), steps=2).shape == (1, 40, 52)


def test_overlapping_fields_blend_to_a_partition_of_unity_and_leave_no_seams():
    """field_overlap m: windows of P + 2m every P pixels, weights ramping over the 2m shared pixels,
    so overlapping weights sum to 1; a field whose output jumps from patch to patch (random
    weights) then has no larger steps across the patch borders than inside the patches."""

    from genseg.methods.flowseg.pixnerd import PixNerd, PixNerdShape, blend_weights

    p = 8
    for m in (1, 2, 4):
        w = blend_weights(p, m)
        k = p + 2 * m
        cover = F.fold(w[None, :, None].expand(1, -1, 16), (32, 32), kernel_size=k, stride=p, padding=m)
        assert torch.allclose(cover[..., m:-m, m:-m], torch.ones(1, 1, 32 - 2 * m, 32 - 2 * m))
    shape = PixNerdShape(hidden=32, heads=2, patch=p, transformer_blocks=1, field_blocks=1, field_width=8)
    steps = {}
    for m in (0, 4):
        torch.manual_seed(0)
        net = PixNerd(shape, overlap=m)
        torch.nn.init.normal_(net.final_layer.linear.weight)
        with torch.no_grad():
            out = net(torch.randn(4, 3, 32, 32), torch.rand(4), torch.full((4,), 1000))
        diff = (out[..., 1:] - out[..., :-1]).abs().mean((0, 1, 2))
        steps[m] = (diff[p - 1::p].mean() / diff.mean()).item()  # border steps / all steps
    assert steps[0] > 1.2 and steps[4] < 1.0  # measured: 1.26 and 0.85


def test_shifted_grid_is_the_padded_image_through_the_unshifted_network():
    """grid_offset (oy, ox): the image replicate-padded by (oy, P - oy) rows and (ox, P - ox) columns,
    the patch grid laid from the padded corner, the output cropped back; pixel features pad alike."""

    from genseg.methods.flowseg.pixnerd import PixNerd, PixNerdShape

    p = 8
    shape = PixNerdShape(hidden=32, heads=2, patch=p, transformer_blocks=1, field_blocks=1, field_width=8)
    torch.manual_seed(0)
    net = PixNerd(shape, pixel_extra=5, overlap=2)
    torch.nn.init.normal_(net.final_layer.linear.weight)
    x, extra, t, y = torch.randn(2, 3, 16, 24), torch.randn(2, 5, 16, 24), torch.rand(2), torch.full((2,), 1000)
    with torch.no_grad():
        for oy, ox in ((4, 4), (3, 6)):
            pads = (ox, p - ox, oy, p - oy)
            got = net(x, t, y, pixel_extra=extra, grid_offset=(oy, ox))
            padded = net(F.pad(x, pads, mode="replicate"), t, y, pixel_extra=F.pad(extra, pads, mode="replicate"))
            assert got.shape == x.shape
            assert torch.allclose(got, padded[..., oy:oy + 16, ox:ox + 24], atol=1e-5)
        assert not torch.allclose(net(x, t, y, pixel_extra=extra, grid_offset=(4, 4)), net(x, t, y, pixel_extra=extra), atol=1e-3)
        with pytest.raises(ValueError, match="takes no stem_extra"):
            net(x, t, y, stem_extra=torch.zeros(2, 12, 3 * 64), grid_offset=(4, 4))


def test_grid_shift_alternates_the_grid_in_sampling_and_training():
    model = tiny_flowseg(condition=["pixels"], grid_shift=True, field_overlap=2)
    offsets = []
    forward = model.net.forward
    model.net.forward = lambda *a, grid_offset=None, **k: offsets.append(grid_offset) or forward(*a, grid_offset=grid_offset, **k)
    model.eval()
    model.predict(torch.rand(1, 3, 32, 32), steps=4)
    assert offsets == [None, (4, 4), None, (4, 4)]
    offsets.clear()
    model.train()
    for _ in range(12):
        model.training_loss(torch.rand(2, 3, 32, 32), torch.randint(0, 5, (2, 32, 32)))
    assert set(offsets) == {None, (4, 4)}


@pytest.mark.parametrize("offset", [(4, 4), (2, 6), (0, 3)])
def test_shifted_tokens_are_the_area_average_of_the_token_map(offset):
    """Brute force: paint each token over its 8 x 8 patch, replicate-pad as PixNerd pads the input
    for ``grid_offset``, average over the shifted patches."""
    from genseg.methods.flowseg.model import shift_tokens
    tokens, (h, w), p = torch.randn(2, 3 * 4, 5), (3, 4), 8
    painted = tokens.transpose(1, 2).reshape(2, 5, h, w).repeat_interleave(p, -2).repeat_interleave(p, -1)
    oy, ox = offset
    expected = F.avg_pool2d(F.pad(painted, (ox, p - ox, oy, p - oy), mode="replicate"), p).flatten(2).transpose(1, 2)
    assert torch.allclose(shift_tokens(tokens, (h, w), offset, p), expected, atol=1e-6)


def test_encoder_tokens_follow_the_shifted_grid():
    from genseg.methods.flowseg.model import shift_tokens
    model = tiny_flowseg(condition=["encoder", "pixels"], grid_shift=True, field_overlap=1)
    model.eval()
    seen = []
    denoiser = model.net.denoiser.forward
    model.net.denoiser.forward = lambda *a, token_add=None, **k: seen.append(token_add) or denoiser(*a, token_add=token_add, **k)
    images = torch.rand(1, 3, 32, 64)  # a multiple of the size divisor (32): predicted unpadded
    assert model.predict(images, steps=2).shape == (1, 32, 64)
    tokens = model.context(images)["token_add"]  # the corner grid: 4 x 8 patches of 8 px
    assert torch.equal(seen[0], tokens)
    assert torch.allclose(seen[1], shift_tokens(tokens, (4, 8), (4, 4), 8)) and seen[1].shape[1] == 5 * 9
    model.train()
    for _ in range(4):
        loss, _ = model.training_loss(torch.rand(2, 3, 32, 32), torch.randint(0, 5, (2, 32, 32)))
        loss.backward()


@pytest.mark.parametrize("bad, message", [
    ({"condition": ["pixel"]}, "model.condition"),
    ({"grid_shift": True, "condition": ["stem", "pixels"]}, "model.grid_shift does not combine with model.condition 'stem'"),
    ({"network": "pixnerd-xxl"}, "known PixNerd presets"),
    ({"field_overlap": 5}, "model.field_overlap must be in 0..4"),
    ({"flow_stride": 0}, "model.flow_stride must be >= 1"),
    ({"hidden_size": 100, "num_heads": 4}, "multiple of 4"),
    ({"output_stride": 12}, "model.output_stride"),
])
def test_bad_network_options_are_named(bad, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig.from_dict({"model": {"method": "flowseg", **bad}})


def test_projecting_per_map_equals_projecting_the_resized_concatenation():
    """project_resize_sum (maps finer than the target resized first, coarser ones projected first,
    equal sizes summed) computes conv1x1(cat(resize(f_l))) up to float rounding."""
    from genseg.methods.flowseg.model import project_resize_sum
    g = torch.Generator().manual_seed(0)
    feats = [torch.randn(2, c, s, s, generator=g) for c, s in ((4, 16), (6, 8), (5, 4), (3, 2), (7, 2))]
    conv = torch.nn.Conv2d(sum(f.shape[1] for f in feats), 9, 1)
    for size in ((8, 8), (4, 6), (16, 16)):
        expected = conv(torch.cat([F.interpolate(f, size=size, mode="bilinear", align_corners=False) for f in feats], dim=1))
        weights = conv.weight.split([f.shape[1] for f in feats], dim=1)
        got = project_resize_sum(feats, weights, [conv.bias] + [None] * 4, size)
        assert torch.allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("size, target", [((4, 4), (32, 32)), ((5, 3), (37, 20)), ((16, 12), (16, 40)), ((1, 2), (3, 9)),
                                          ((32, 32), (8, 8)), ((9, 16), (4, 33))])
def test_resize_is_bilinear_interpolation(size, target):
    """The matrix-product upsampling (R_y x R_x^T) equals F.interpolate(bilinear, align_corners
    False) for any ratio, odd ones included, and passes gradients; a shrink or mixed resize
    falls back to F.interpolate."""
    from genseg.methods.flowseg.model import bilinear_matrix, resize
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(0), requires_grad=True)
    expected = F.interpolate(x, size=target, mode="bilinear", align_corners=False)
    got = resize(x, target)
    assert got.shape == expected.shape and torch.allclose(got, expected, atol=1e-5)
    grad = torch.randn_like(expected)
    assert torch.allclose(torch.autograd.grad(got, x, grad)[0], torch.autograd.grad(expected, x, grad)[0], atol=1e-4)
    assert torch.allclose(bilinear_matrix(size[0], target[0], "cpu", torch.float64).sum(1), torch.ones(target[0], dtype=torch.float64))
