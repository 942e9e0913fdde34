"""DALL-E dVAE: genseg's reimplementation, the pickle -> safetensors converter, and the loader.

The official ``encoder.pkl`` / ``decoder.pkl`` are whole modules pickled with ``torch.save``
that reference ``dall_e.encoder.Encoder`` etc. CI has no ``dall_e``, so the conversion tests
build such pickles with the stand-in package in ``tests/fixtures/dall_e`` (smallest sizes its
validators allow).
"""

import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from genseg.cli import main
from genseg.methods.gss.convert import convert_dvae
from genseg.methods.gss.dvae import (
    DalleDecoder,
    DalleDVAE,
    DalleEncoder,
    DVAEError,
    load_dvae,
)

FIXTURES = Path(__file__).parent / "fixtures"
TINY = {"n_hid": 64, "n_blk_per_group": 1, "vocab_size": 512}  # the official validators' minimum


def _is_dall_e(name: str) -> bool:
    return name == "dall_e" or name.startswith("dall_e.")


def _forget_dall_e() -> None:
    for name in [m for m in sys.modules if _is_dall_e(m)]:
        del sys.modules[name]


@pytest.fixture
def clean_dall_e():
    """No ``dall_e`` module imported when the test starts; the previous state restored after it."""
    saved = {m: sys.modules.pop(m) for m in list(sys.modules) if _is_dall_e(m)}
    yield
    _forget_dall_e()
    sys.modules.update(saved)


@pytest.fixture
def dall_e(clean_dall_e, monkeypatch):
    """The test stand-in ``dall_e`` package (tests/fixtures), imported fresh."""
    monkeypatch.syspath_prepend(str(FIXTURES))
    import dall_e.decoder
    import dall_e.encoder

    return dall_e


def _pickles(tmp_path: Path, encoder: torch.nn.Module, decoder: torch.nn.Module) -> tuple[Path, Path]:
    """Whole modules saved with torch.save, as OpenAI did."""
    enc, dec = tmp_path / "encoder.pkl", tmp_path / "decoder.pkl"
    torch.save(encoder, enc)
    torch.save(decoder, dec)
    return enc, dec


def _assert_same_outputs(model: DalleDVAE, encoder, decoder) -> None:
    torch.manual_seed(1)
    x = 0.8 * torch.rand(2, 3, 16, 24) + 0.1
    with torch.no_grad():
        assert torch.equal(model.encoder(x), encoder(x))
        tokens = torch.randint(0, model.num_codes, (2, 2, 3))
        onehot = torch.nn.functional.one_hot(tokens, model.num_codes).permute(0, 3, 1, 2).float()
        reference = decoder(onehot)
        assert torch.equal(model.decoder(onehot), reference)
        assert torch.allclose(model.decode(tokens), ((torch.sigmoid(reference[:, :3]) - 0.1) / 0.8).clamp(0, 1))


def test_tiny_shapes_and_posterior_protocol():
    torch.manual_seed(0)
    enc = DalleEncoder(n_hid=8, n_blk_per_group=1, vocab_size=32)
    dec = DalleDecoder(n_init=8, n_hid=8, n_blk_per_group=1, vocab_size=32)
    assert enc(torch.rand(2, 3, 16, 24)).shape == (2, 32, 2, 3)
    assert dec(torch.rand(2, 32, 2, 3)).shape == (2, 6, 16, 24)
    model = DalleDVAE(enc, dec)
    assert (model.num_codes, model.downsample) == (32, 8)
    tokens = model.encode(torch.rand(2, 3, 16, 24))
    assert tokens.shape == (2, 2, 3) and tokens.dtype == torch.int64
    assert 0 <= tokens.min() and tokens.max() < 32
    out = model.decode(tokens)
    assert out.shape == (2, 3, 16, 24) and out.dtype == torch.float32
    assert 0 <= out.min() and out.max() <= 1
    with pytest.raises(ValueError, match="multiple of 8"):
        model.encode(torch.rand(1, 3, 12, 16))


def test_full_size_state_dict_layout():
    with torch.device("meta"):
        model = DalleDVAE()
    keys = model.state_dict().keys()
    assert "encoder.blocks.group_2.block_1.id_path.w" in keys
    assert "decoder.blocks.group_4.block_2.res_path.conv_4.b" in keys
    assert model.state_dict()["encoder.blocks.output.conv.w"].shape == (8192, 2048, 1, 1)
    assert model.state_dict()["decoder.blocks.output.conv.w"].shape == (6, 256, 1, 1)


def test_convert_then_load_reproduces_official_modules(tmp_path, dall_e, capsys):
    torch.manual_seed(0)
    encoder = dall_e.encoder.Encoder(**TINY)
    decoder = dall_e.decoder.Decoder(n_init=16, **TINY)
    for module in (encoder, decoder):  # non-zero biases, so that a mix-up of b would show
        for name, p in module.named_parameters():
            if name.endswith(".b"):
                p.data.normal_(std=0.1)
    enc_pkl, dec_pkl = _pickles(tmp_path, encoder, decoder)

    out = convert_dvae(enc_pkl, dec_pkl, tmp_path / "dvae.safetensors")
    model = load_dvae(out)
    assert not any(p.requires_grad for p in model.parameters()) and not model.training
    assert model.config()["decoder.n_init"] == 16
    _assert_same_outputs(model, encoder, decoder)

    cli_out = tmp_path / "cli" / "dvae.safetensors"
    assert main(["convert-dvae", str(enc_pkl), str(dec_pkl), str(cli_out)]) == 0
    assert str(cli_out) in capsys.readouterr().out
    first, second = load_file(out), load_file(cli_out)
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_convert_errors_name_the_file(tmp_path, dall_e, capsys):
    missing = tmp_path / "nope.pkl"
    with pytest.raises(FileNotFoundError, match="nope.pkl"):
        convert_dvae(missing, missing, tmp_path / "out.safetensors")
    assert main(["convert-dvae", str(missing), str(missing), str(tmp_path / "out.safetensors")]) == 2
    assert "nope.pkl" in capsys.readouterr().err

    wrong = tmp_path / "conv.pkl"
    torch.save(torch.nn.Conv2d(3, 3, 1), wrong)
    expected = r"conv.pkl holds a torch.nn.modules.conv.Conv2d, expected dall_e.encoder.Encoder"
    with pytest.raises(DVAEError, match=expected):
        convert_dvae(wrong, wrong, tmp_path / "out.safetensors")

    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(b"not a pickle")
    with pytest.raises(DVAEError, match="garbage.pkl"):
        convert_dvae(garbage, garbage, tmp_path / "out.safetensors")
    assert not (tmp_path / "out.safetensors").exists()


def test_convert_without_dall_e_says_how_to_install(tmp_path, dall_e, monkeypatch):
    enc_pkl, dec_pkl = _pickles(tmp_path, dall_e.encoder.Encoder(**TINY), dall_e.decoder.Decoder(n_init=16, **TINY))
    _forget_dall_e()
    monkeypatch.setattr(sys, "path", [p for p in sys.path if Path(p) != FIXTURES])
    sys.modules["dall_e"] = None  # as if not installed, even where it is (undone by clean_dall_e)
    with pytest.raises(DVAEError, match=r"encoder.pkl.*pip install dall-e"):
        convert_dvae(enc_pkl, dec_pkl, tmp_path / "out.safetensors")


def test_load_errors_name_the_file_and_format(tmp_path, dall_e):
    with pytest.raises(FileNotFoundError, match=r"missing.safetensors.*genseg convert-dvae"):
        load_dvae(tmp_path / "missing.safetensors")

    text = tmp_path / "text.safetensors"
    text.write_text("hello")
    with pytest.raises(DVAEError, match=r"text.safetensors.*genseg convert-dvae"):
        load_dvae(text)

    enc_pkl, dec_pkl = _pickles(tmp_path, dall_e.encoder.Encoder(**TINY), dall_e.decoder.Decoder(n_init=16, **TINY))
    good = convert_dvae(enc_pkl, dec_pkl, tmp_path / "good.safetensors")
    from safetensors import safe_open

    with safe_open(str(good), framework="pt") as f:
        metadata = f.metadata()
    tensors = load_file(good)
    del tensors["decoder.blocks.group_1.block_1.id_path.w"]
    broken = tmp_path / "broken.safetensors"
    save_file(tensors, str(broken), metadata=metadata)
    with pytest.raises(DVAEError, match=r"(?s)broken.safetensors.*genseg convert-dvae.*group_1.block_1.id_path.w"):
        load_dvae(broken)

    untagged = tmp_path / "untagged.safetensors"
    save_file(load_file(good), str(untagged))
    with pytest.raises(DVAEError, match=r"untagged.safetensors.*genseg convert-dvae"):
        load_dvae(untagged)


def test_real_dall_e_package_if_installed(tmp_path, clean_dall_e):
    try:
        from dall_e.decoder import Decoder
        from dall_e.encoder import Encoder
    except ImportError as err:
        pytest.skip(f"the optional `dall_e` package is not installed ({err}); `pip install dall-e` to run this")
    torch.manual_seed(0)
    encoder, decoder = Encoder(**TINY), Decoder(n_init=16, **TINY)
    enc_pkl, dec_pkl = _pickles(tmp_path, encoder, decoder)
    model = load_dvae(convert_dvae(enc_pkl, dec_pkl, tmp_path / "dvae.safetensors"))
    _assert_same_outputs(model, encoder, decoder)
