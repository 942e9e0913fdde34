"""GSS at paper scale, on CPU with tiny widths: the Swin prior, the 2x maskige resize, the dVAE's precision."""

import torch

from genseg.methods.gss.dvae import DalleDecoder, DalleDVAE, DalleEncoder, half_on_accelerator
from genseg.methods.gss.method import resize_labels
from genseg.methods.gss.prior import Prior

TINY_SWIN = {"embed_dim": 16, "depths": (1, 1, 1, 1), "num_heads": (1, 2, 2, 4), "window_size": 7}


def test_swin_prior_builds_and_runs_at_a_crop_and_at_another_size():
    """The Swin-L code path (timm Swin, 4 stages, channels-last, img_size given) at tiny widths."""
    prior = Prior(64, 5, encoder="swin_large_patch4_window12_384", token_stride=4, mla_dim=8, dim=16, depth=1, heads=2,
                  window=7, ffn=16, hidden=16, encoder_args={**TINY_SWIN, "img_size": 512, "dynamic_img_size": True})
    assert prior.first_level == 0 and prior.channels_last
    prior.eval()
    with torch.no_grad():
        tokens, aux = prior(torch.rand(1, 3, 512, 512))  # a paper crop
        assert tokens.shape == (1, 64, 128, 128) and aux.shape == (1, 5, 128, 128)
        tokens, _ = prior(torch.rand(1, 3, 96, 128))  # a whole-image test size other than the crop
        assert tokens.shape == (1, 64, 24, 32)


def test_resnet_prior_fuses_strides_4_to_32():
    prior = Prior(16, 3, encoder="resnet18", token_stride=4, mla_dim=8, dim=16, depth=1, heads=2, window=4, ffn=16, hidden=16)
    assert prior.first_level == 1 and not prior.channels_last
    assert prior(torch.rand(1, 3, 64, 64))[0].shape == (1, 16, 16, 16)


def test_img_size_on_an_encoder_without_it_names_the_keys():
    import pytest

    with pytest.raises(ValueError, match=r"model.encoder 'resnet18' does not take model.img_size / model.encoder_args"):
        Prior(16, 3, encoder="resnet18", encoder_args={"img_size": 64})


def test_onehot_bilinear_resize_doubles_and_keeps_classes_and_ignore():
    labels = torch.tensor([[[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 255, 255], [2, 2, 255, 255]]])
    up = resize_labels(labels, 2, "onehot-bilinear", num_classes=3)
    near = resize_labels(labels, 2, "nearest")
    assert up.shape == (1, 8, 8) and torch.equal(up, near)  # 2 x 2 blocks: the two agree
    thin = torch.zeros(1, 4, 4, dtype=torch.long)
    thin[0, 1, 1] = 1  # a lone pixel of class 1
    up = resize_labels(thin, 2, "onehot-bilinear", num_classes=2)
    assert set(up.unique().tolist()) <= {0, 1} and (up == 1).sum() == 4  # one-hot, bilinear, argmax: no new labels


def test_dvae_runs_float32_on_cpu():
    model = DalleDVAE(DalleEncoder(n_hid=8, n_blk_per_group=1, vocab_size=16), DalleDecoder(n_init=8, n_hid=8, n_blk_per_group=1, vocab_size=16))
    tokens = model.encode(torch.rand(1, 3, 16, 16))
    maskige = model.decode(tokens)
    assert maskige.dtype == torch.float32 and maskige.shape == (1, 3, 16, 16)
    assert not half_on_accelerator(torch.device("cpu"))._enabled
