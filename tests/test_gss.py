"""GSS: palettes, maskige inverses, the token ignore rule, the three methods, config errors."""

import pytest
import torch

from genseg.config import ConfigError, ModelConfig
from genseg.engine.checkpoint import load_weights, save_weights
from genseg.methods import build_method, method_options
from genseg.methods.gss.inverse import LearnedPalette, colour_logits
from genseg.methods.gss.maskige import (
    from_vq_range,
    ignore_colour,
    nearest_colour,
    palette,
    to_maskige,
    to_vq_range,
)
from genseg.methods.gss.method import VQVAEMethod, VQVAEOptions

K = 12
TINY_VQ = {"codes": 16, "downsample": 4, "vq_width": 8, "code_dim": 4}
TINY_PRIOR = {"encoder": "resnet18", "mla_dim": 8, "dim": 16, "depth": 2, "heads": 2, "ffn": 32, "hidden": 16}


def random_labels(b=2, h=32, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, K, (b, h // 8, w // 8), generator=g)
    labels = labels.repeat_interleave(8, 1).repeat_interleave(8, 2)  # blocky, like real masks
    labels[:, :3, :5] = 255
    return labels


@pytest.fixture(scope="module")
def posterior_file(tmp_path_factory):
    """A tiny VQ-VAE saved as a `vqvae` run saves it."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("posterior") / "model.safetensors"
    save_weights(path, VQVAEMethod(VQVAEOptions(**TINY_VQ), K))
    return str(path)


def fit(method, images, labels, steps, lr):
    """``steps`` Adam steps on one batch; (losses, the last step's logs)."""
    optimizer = torch.optim.Adam([p for p in method.parameters() if p.requires_grad], lr=lr)
    method.train()
    losses = []
    for _ in range(steps):
        loss, logs = method.training_loss(images, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, logs


def build(method, **options):
    model = ModelConfig(method=method, options=options)
    return build_method(model, K)


@pytest.mark.parametrize("name,count", [("ff", 12), ("ff", 150), ("ff", 194), ("ff-r", 40), ("cityscapes", 19)])
def test_palette_count_range_distinct(name, count):
    colours = palette(name, count)
    assert colours.shape == (count, 3)
    assert colours.min() >= 0 and colours.max() <= 1
    assert len(torch.unique(colours, dim=0)) == count


def test_ff_palette_is_far_apart_and_seeded():
    ff = palette("ff", 150)
    d = torch.cdist(ff, ff) + torch.eye(150) * 9
    assert d.min() * 255 > 10  # grid steps of 40..51 with +-15 jitter
    assert torch.equal(palette("ff", 150, seed=3), palette("ff", 150, seed=3))
    assert not torch.equal(palette("ff", 150, seed=3), palette("ff", 150, seed=4))


def test_palette_errors_name_the_value():
    with pytest.raises(ValueError, match="'nope'"):
        palette("nope", 12)
    with pytest.raises(ValueError, match="19 colours"):
        palette("cityscapes", 12)


def test_inverse_round_trip_on_clean_maskiges():
    labels = random_labels()
    for name in ("ff", "ff-r"):
        colours = palette(name, K)
        maskige = to_maskige(labels, colours)
        valid = labels != 255
        assert torch.equal(nearest_colour(maskige, colours)[valid], labels[valid])
        assert torch.allclose(from_vq_range(to_vq_range(maskige)), maskige, atol=1e-6)
        assert torch.equal(colour_logits(maskige, colours).argmax(1)[valid], labels[valid])
        # the ignore colour is not a class colour
        assert torch.cdist(ignore_colour(colours)[None], colours).min() > 0.05


def test_learned_palette_starts_at_the_nearest_candidate_and_gets_gradients():
    init = palette("ff", K)
    learned = LearnedPalette(init).eval()
    assert (learned() - init).abs().max() <= 0.1 + 1e-6  # 6 levels: candidates 0.2 apart
    learned.train()
    maskige = learned.draw(random_labels(), 255)
    maskige.sum().backward()
    assert learned.logits.grad is not None and learned.logits.grad.abs().sum() > 0


def test_token_ignore_rule(posterior_file):
    """A token is ignored only when every pixel under it is ignore."""
    gss = build("gss", posterior_file=posterior_file, **TINY_VQ, **TINY_PRIOR)
    labels = torch.zeros(1, 32, 32, dtype=torch.long)
    labels[:, :4, :4] = 255  # the whole first token (stride 4): ignored
    labels[:, :2, 4:8] = 255  # half of the second: kept
    aux = torch.zeros(1, K, 8, 8)
    targets = gss.token_targets(labels, aux)
    assert targets.shape == (1, 8, 8)
    assert targets[0, 0, 0] == 255
    assert (targets[0].flatten()[1:] != 255).all()


def test_vqvae_trains_and_reports_the_upper_bound():
    torch.manual_seed(0)
    method = VQVAEMethod(VQVAEOptions(**TINY_VQ), K)
    labels = random_labels()
    images = torch.rand(2, 3, 32, 32)
    losses, logs = fit(method, images, labels, 5, 1e-2)
    assert losses[-1] < losses[0]
    assert {"recon", "codes_used"} <= set(logs)
    pred = method.predict(images, labels=labels)
    assert pred.shape == labels.shape and pred.dtype == torch.int64


@pytest.mark.parametrize("inverse", ["ft", "ft-w", "tf"])
def test_maskige_inverse_trains_with_the_posterior_frozen(posterior_file, tmp_path, inverse):
    method = build("maskige", posterior_file=posterior_file, inverse=inverse, inverse_width=8, **TINY_VQ)
    frozen = {k: v.clone() for k, v in method.codec.posterior.state_dict().items()}
    assert any(p.requires_grad for p in method.parameters())
    assert not any(p.requires_grad for p in method.codec.posterior.parameters())
    labels, images = random_labels(), torch.rand(2, 3, 32, 32)
    losses, _ = fit(method, images, labels, 4, 1e-2)
    assert losses[-1] < losses[0]
    assert all(torch.equal(v, method.codec.posterior.state_dict()[k]) for k, v in frozen.items())
    # a saved run holds no posterior weights and reloads to the same predictions
    path = tmp_path / "model.safetensors"
    save_weights(path, method)
    method.eval()
    again = build("maskige", posterior_file=posterior_file, inverse=inverse, inverse_width=8, **TINY_VQ)
    load_weights(path, again)
    assert not any(k.startswith("codec.posterior.") for k in method.state_dict())
    assert torch.equal(method.predict(images, labels=labels), again.eval().predict(images, labels=labels))


def test_maskige_ff_has_nothing_to_train(posterior_file):
    method = build("maskige", posterior_file=posterior_file, **TINY_VQ)
    with pytest.raises(ValueError, match="iterations: 0"):
        method.training_loss(torch.rand(1, 3, 32, 32), random_labels(1))


def test_gss_prior_step_then_inverse_stage(posterior_file, tmp_path):
    torch.manual_seed(0)
    gss = build("gss", posterior_file=posterior_file, **TINY_VQ, **TINY_PRIOR)
    images, labels = torch.rand(2, 3, 32, 32), random_labels()
    losses, logs = fit(gss, images, labels, 3, 1e-3)
    assert {"token_loss", "aux_loss"} <= set(logs) and losses[-1] < losses[0]
    gss.eval()
    pred = gss.predict(torch.rand(1, 3, 40, 36))  # not a multiple of the token stride
    assert pred.shape == (1, 40, 36)
    prior_file = tmp_path / "model.safetensors"
    save_weights(prior_file, gss)
    # inverse stage: the prior comes from init_file and stays frozen
    ft = build("gss", posterior_file=posterior_file, stage="inverse", inverse="ft", inverse_width=8,
               init_file=str(prior_file), **TINY_VQ, **TINY_PRIOR)
    assert not any(p.requires_grad for p in ft.prior.parameters())
    assert torch.equal(ft.prior.state_dict()["fuse.weight"], gss.prior.state_dict()["fuse.weight"])
    ft.train()
    assert not ft.prior.training
    loss, _ = ft.training_loss(images, labels)
    loss.backward()
    assert all(p.grad is not None for p in ft.codec.inverse_net.parameters())


@pytest.mark.parametrize(
    "options,match",
    [
        ({"method": "gss"}, "posterior_file is required"),
        ({"method": "gss", "posterior_file": "x", "inverse": "fft"}, "known inverses"),
        ({"method": "gss", "posterior_file": "x", "stage": "inverse", "inverse": "ft"}, "init_file"),
        ({"method": "gss", "posterior_file": "x", "inverse": "ft"}, "stage: inverse"),
        ({"method": "maskige", "posterior_file": "x", "palette": "rainbow"}, "known palettes"),
        ({"method": "vqvae", "downsample": 6}, "power of two"),
        ({"method": "gss", "posterior_file": "x", "codebook": 5}, "codebook"),
    ],
)
def test_config_errors_name_the_key(options, match):
    model = ModelConfig(method=options.pop("method"), options=options)
    with pytest.raises(ConfigError, match=match):
        method_options(model)


def test_posterior_file_errors_name_the_file(tmp_path, posterior_file):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        build("maskige", posterior_file=str(missing), **TINY_VQ)
    with pytest.raises(ValueError, match="does not fit model.codes"):
        build("maskige", posterior_file=posterior_file, **{**TINY_VQ, "codes": 32})


def test_gss_on_a_dalle_posterior(tmp_path):
    """The official setting: the dVAE (8x) on maskiges at 2x the image, tokens at 1/4 of the image."""
    from safetensors.torch import save_file

    from genseg.methods.gss.dvae import FORMAT, DalleDecoder, DalleDVAE, DalleEncoder

    torch.manual_seed(0)
    dvae = DalleDVAE(DalleEncoder(n_hid=8, n_blk_per_group=1, vocab_size=32), DalleDecoder(n_init=8, n_hid=8, n_blk_per_group=1, vocab_size=32))
    path = tmp_path / "dvae.safetensors"
    save_file({k: v.contiguous() for k, v in dvae.state_dict().items()}, str(path),
              metadata={"format": FORMAT, **{k: str(v) for k, v in dvae.config().items()}})
    gss = build("gss", posterior="dalle", posterior_file=str(path), maskige_scale=2, **TINY_PRIOR)
    assert gss.token_stride == 4 and gss.codec.posterior.num_codes == 32
    images, labels = torch.rand(2, 3, 32, 32), random_labels()
    gss.train()
    loss, logs = gss.training_loss(images, labels)
    loss.backward()
    assert logs["token_loss"] > 0
    assert gss.eval().predict(images).shape == (2, 32, 32)
    assert not any(k.startswith("codec.posterior.") for k in gss.state_dict())
