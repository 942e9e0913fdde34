"""Pretrained weights: the manifest, `genseg weights [fetch]` against a local HTTP server, the
{weights} placeholder, the workflow's pre-flight, and timm_features' checks of its file."""

import hashlib
import http.server
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import timm
import torch
import yaml
from conftest import REPO
from safetensors.torch import save_file

from genseg import weights
from genseg.cli import main
from genseg.experiments import run_configs
from genseg.methods.base import timm_features
from genseg.preflight import check as preflight_check
from test_dvae import TINY, _pickles, clean_dall_e, dall_e  # noqa: F401 -- the stand-in dall_e package (fixtures)

TINY_TIMM = "test_resnet"  # timm's own test model: a few thousand parameters


def _safetensors(model_name: str, path: Path, **kwargs) -> bytes:
    torch.manual_seed(0)
    state = timm.create_model(model_name, pretrained=False, **kwargs).state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path.read_bytes()


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict = {}  # path -> (body, declared length)

    def do_GET(self):  # noqa: N802 -- http.server's name
        if self.path not in self.files:
            self.send_error(404)
            return
        body, length = self.files[self.path]
        self.send_response(200)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)  # a length above len(body): the server closes mid-body
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A local HTTP server in a thread; ``serve(path, body, length=None)`` publishes a file, returns its URL."""
    handler = type("Handler", (_Handler,), {"files": {}})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()

    def serve(path: str, body: bytes, length: int | None = None) -> str:
        handler.files[path] = (body, len(body) if length is None else length)
        return f"http://127.0.0.1:{httpd.server_address[1]}{path}"

    yield serve
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    out = tmp_path / "weights"
    monkeypatch.setenv("GENSEG_WEIGHTS", str(out))
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    return out


def _manifest(tmp_path: Path, entries: dict) -> Path:
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(entries))
    return path


def _entry(url: str, sha: str | None, file: str = "tiny.safetensors") -> dict:
    return {"what": "timm's test ResNet", "file": file, "sources": [{"url": url, "sha256": sha}], "timm_model": TINY_TIMM}


def test_shipped_manifest_is_complete_and_plausible():
    manifest = weights.load_manifest()
    for name in ("resnet50-v1c", "resnet101-v1c", "mit-b2", "swin-t-in1k", "swin-l-in22k-384", "hrnet-w48",
                 "dalle-dvae", "pixnerd-xl16", "pixnerd-l16", "dinov2-vitb14"):
        assert name in manifest
    for name, e in manifest.items():
        assert e["what"] and e["file"].endswith(".safetensors"), name
        for source in e["sources"]:
            assert source["url"].startswith("https://"), name
            assert source["sha256"] is None or re.fullmatch(r"[0-9a-f]{64}", source["sha256"]), name
        assert e["sources"] or e.get("note"), f"{name}: no source and no note saying why"
        assert e.get("converter") in (None, "convert-dvae", "convert-pixnerd"), name
        if e.get("timm_model"):
            assert e["timm_model"] in timm.list_pretrained(e["timm_model"]), name
    assert manifest["resnet101-v1c"]["timm_model"].startswith("resnet101c")  # V1c: the deep stem
    assert weights.expected_shapes(manifest["resnet101-v1c"])["conv1.0.weight"] == (32, 3, 3, 3)
    assert weights.expected_shapes(manifest["pixnerd-xl16"])["s_embedder.proj.weight"] == (1152, 768)
    from genseg.methods import baselines

    assert weights.HEAD_PREFIXES == baselines.HEAD_PREFIXES


def test_fetch_good_file_is_verified_and_present(tmp_path, server, weights_dir, capsys):
    body = _safetensors(TINY_TIMM, tmp_path / "src.safetensors")
    url = server("/good.safetensors", body)
    manifest = _manifest(tmp_path, {"tiny": _entry(url, hashlib.sha256(body).hexdigest())})
    assert main(["weights", "--manifest", str(manifest)]) == 1
    assert "missing" in capsys.readouterr().out
    assert main(["weights", "fetch", "--manifest", str(manifest)]) == 0
    assert (weights_dir / "tiny.safetensors").read_bytes() == body
    assert sorted(p.name for p in weights_dir.iterdir()) == ["tiny.safetensors"]  # no temp file left
    assert main(["weights", "--manifest", str(manifest)]) == 0
    assert re.search(r"tiny\s+present", capsys.readouterr().out)


def test_wrong_checksum_keeps_nothing(tmp_path, server, weights_dir, capsys):
    body = _safetensors(TINY_TIMM, tmp_path / "src.safetensors")
    wrong = "0" * 64
    manifest = _manifest(tmp_path, {"tiny": _entry(server("/x.safetensors", body), wrong)})
    assert main(["weights", "fetch", "--name", "tiny", "--manifest", str(manifest)]) == 1
    err = capsys.readouterr().err
    assert "tiny.safetensors" in err and f"expected {wrong}" in err and hashlib.sha256(body).hexdigest() in err
    assert not weights_dir.exists() or list(weights_dir.iterdir()) == []
    # a file already in place with another hash is reported, not trusted
    weights_dir.mkdir(exist_ok=True)
    (weights_dir / "tiny.safetensors").write_bytes(body)
    state, detail = weights.status(weights.load_manifest(manifest)["tiny"], weights_dir)
    assert state == "wrong checksum" and wrong in detail


def test_dropped_connection_keeps_nothing(tmp_path, server, weights_dir):
    body = _safetensors(TINY_TIMM, tmp_path / "src.safetensors")
    url = server("/cut.safetensors", body[: len(body) // 2], length=len(body))
    e = weights.load_manifest(_manifest(tmp_path, {"tiny": _entry(url, None)}))["tiny"]
    with pytest.raises(weights.WeightsError, match=r"tiny\.safetensors.*(stopped after|failed after)"):
        weights.fetch(e, weights_dir, log=lambda *_: None)
    assert list(weights_dir.iterdir()) == []


def test_unknown_name_lists_the_known_ones(capsys):
    assert main(["weights", "fetch", "--name", "resnet-1001"]) == 2
    err = capsys.readouterr().err
    assert "unknown weights 'resnet-1001'" in err and "resnet101-v1c" in err and "dalle-dvae" in err
    with pytest.raises(weights.WeightsError, match="known: resnet50-v1c"):
        weights.resolve("nope")


def test_wrong_architecture_names_the_file_and_key(tmp_path, server, weights_dir, capsys):
    body = _safetensors(TINY_TIMM, tmp_path / "src.safetensors", num_classes=7)  # another head: fc of shape (7, C)
    manifest = _manifest(tmp_path, {"tiny": _entry(server("/other.safetensors", body), None)})
    e = weights.load_manifest(manifest)["tiny"]
    with pytest.raises(weights.WeightsError, match=r"tiny\.safetensors: key fc\.weight has shape \(7, \d+\), timm model 'test_resnet' expects \(1000, \d+\)"):
        weights.fetch(e, weights_dir, log=lambda *_: None)
    assert list(weights_dir.iterdir()) == []
    (weights_dir / "tiny.safetensors").write_bytes(body)  # put there by hand: `genseg weights` says so
    assert main(["weights", "--manifest", str(manifest)]) == 1
    out = capsys.readouterr().out
    assert "wrong architecture" in out and "fc.weight" in out and str(weights_dir / "tiny.safetensors") in out


def test_fetch_converts_pickles_with_the_named_converter(tmp_path, server, weights_dir, dall_e):
    enc, dec = _pickles(tmp_path, dall_e.encoder.Encoder(**TINY), dall_e.decoder.Decoder(n_init=16, **TINY))
    sources = [{"url": server(f"/{p.name}", p.read_bytes()), "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in (enc, dec)]
    e = {"name": "dvae", "what": "dVAE", "file": "dvae.safetensors", "sources": sources, "converter": "convert-dvae"}
    out = weights.fetch(e, weights_dir, log=lambda *_: None)
    from genseg.methods.gss.dvae import load_dvae

    assert load_dvae(out).encoder.blocks.input.w.shape[0] == 64
    assert sorted(p.name for p in (weights_dir / "sources").iterdir()) == ["decoder.pkl", "encoder.pkl"]
    assert weights.status(e, weights_dir)[0] == "present"
    (weights_dir / "dvae.safetensors").write_bytes(_safetensors(TINY_TIMM, tmp_path / "t.safetensors"))  # another kind of file
    state, detail = weights.status(e, weights_dir)
    assert state == "wrong architecture" and "dvae.safetensors" in detail and "genseg-dalle-dvae" in detail


def test_pixnerd_entry_is_checked_against_its_preset(tmp_path):
    from genseg.methods.flowseg.pixnerd import PRESETS, PixNerd

    e = {"name": "p", "what": "PixNerd", "file": "p.safetensors", "sources": [], "pixnerd_network": "pixnerd-cpu",
         "converter": "convert-pixnerd"}
    save_file({k: v.contiguous() for k, v in PixNerd(PRESETS["pixnerd-cpu"]).state_dict().items()}, str(tmp_path / "p.safetensors"))
    assert weights.status(e, tmp_path) == ("present", str(tmp_path / "p.safetensors"))
    e["pixnerd_network"] = "pixnerd-l16"
    state, detail = weights.status(e, tmp_path)
    assert state == "wrong architecture" and re.search(r"p\.safetensors: key \S+ has shape .* PixNerd 'pixnerd-l16' expects", detail)


def _paper_like(tmp_path: Path) -> dict:
    """A paper-style config on ADE20K that names a manifest file and an absent data root."""
    cfg = yaml.safe_load((REPO / "workflow/config/paper-ade20k.yaml").read_text())
    cfg["name"] = "paper-test"
    cfg["dataset"]["root"] = str(tmp_path / "no-ade20k")
    cfg["experiments"] = {
        "deeplabv3plus-r101": {"model": {"method": "deeplabv3plus", "encoder": "tu-resnet101c",
                                         "pretrained_file": "{weights}/resnet101c.gluon_in1k.safetensors"}},
        "segformer-b2": {"model": {"method": "segformer", "encoder": "mit_b2", "pretrained_file": "{weights}/mit_b2.imagenet.safetensors"}},
        "ocrnet": {"model": {"method": "ocrnet", "backbone": "hrnet_w18_small"}},
    }
    return cfg


def test_weights_placeholder_and_needed_weights(tmp_path, weights_dir, capsys):
    cfg = _paper_like(tmp_path)
    cfg["defaults"]["model"] = {"pretrained_file": "{weights}/x.safetensors"}
    runs = run_configs(cfg, cfg["dataset"]["root"], tmp_path / "runs")
    assert runs["deeplabv3plus-r101-s0"].model.options["pretrained_file"] == str(weights_dir / "resnet101c.gluon_in1k.safetensors")
    assert runs["ocrnet-s0"].model.options["pretrained_file"] == str(weights_dir / "x.safetensors")  # defaults too
    assert [e["name"] for e in weights.needed_weights(cfg)] == ["resnet101-v1c", "mit-b2"]
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["weights", "--config", str(path)]) == 1
    out = capsys.readouterr().out
    assert re.search(r"resnet101-v1c\s+missing", out) and re.search(r"mit-b2\s+missing", out)
    assert "hrnet-w48" not in out and "genseg weights fetch --name resnet101-v1c" in out


def test_preflight_lists_every_missing_input_and_passes_the_default(tmp_path, weights_dir, monkeypatch):
    monkeypatch.delenv("GENSEG_DATA", raising=False)
    cfg = _paper_like(tmp_path)
    problems = preflight_check(cfg, run_configs(cfg, cfg["dataset"]["root"], tmp_path / "runs"), tmp_path / "runs")
    assert len(problems) == 3
    assert "dataset ade20k" in problems[0] and str(tmp_path / "no-ade20k") in problems[0] and "ADEChallengeData2016" in problems[0]
    assert "resnet101-v1c" in problems[1] and "genseg weights fetch --name resnet101-v1c" in problems[1]
    assert "mit-b2" in problems[2] and "segformer-b2" in problems[2]
    cfg["experiments"]["deeplabv3plus-r101"]["model"]["encoder"] = "tu-resnet101"  # the plain stem: not V1c's file
    problems = preflight_check(cfg, run_configs(cfg, cfg["dataset"]["root"], tmp_path / "runs"), tmp_path / "runs")
    assert len(problems) == 4 and "fits 'resnet101c', but experiment deeplabv3plus-r101 builds 'tu-resnet101'" in problems[3]
    cfg["experiments"]["segformer-b2"]["model"]["pretrained_file"] = "mit-b2"
    problems = preflight_check(cfg)  # run configs resolved from the workflow config itself
    assert 'mit-b2 (model.pretrained_file of segformer-b2) is a weights name, not a file: write "{weights}/mit_b2.imagenet.safetensors"' in problems
    default = yaml.safe_load((REPO / "workflow/config/default.yaml").read_text())
    assert preflight_check(default, run_configs(default, str(tmp_path / "synthetic"), tmp_path / "runs"), tmp_path / "runs") == []


def _snakemake(tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path / "wd"), *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)


def _paper_like_file(tmp_path: Path) -> Path:
    path = tmp_path / "paper-test.yaml"
    path.write_text(yaml.safe_dump(_paper_like(tmp_path)))
    return path


@pytest.mark.slow
def test_workflow_preflight_dry_run_warns_and_plans(tmp_path, weights_dir):
    dry = _snakemake(tmp_path, "-n", "--configfile", str(_paper_like_file(tmp_path)))
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert dry.stderr.count("genseg pre-flight") == 1 and "3 missing or mismatched input(s)" in dry.stderr
    assert "train" in dry.stdout and "This was a dry-run" in dry.stdout


@pytest.mark.slow
def test_workflow_preflight_stops_a_real_run_before_any_job(tmp_path, weights_dir):
    real = _snakemake(tmp_path, "--cores", "1", "--configfile", str(_paper_like_file(tmp_path)))
    assert real.returncode != 0
    for needle in ("dataset ade20k", "resnet101c.gluon_in1k.safetensors", "mit_b2.imagenet.safetensors", "no job was started"):
        assert needle in real.stderr
    assert not (tmp_path / "wd" / "results").exists() and not (tmp_path / "wd" / "logs").exists()


def test_timm_features_names_a_missing_or_wrong_file(tmp_path):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(FileNotFoundError, match=rf"model.pretrained_file {re.escape(str(missing))} does not exist; expected a safetensors file of timm model 'resnet18'"):
        timm_features("resnet18", str(missing))
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a tensor file")
    with pytest.raises(ValueError, match="garbage.safetensors is not a readable safetensors file"):
        timm_features("resnet18", str(garbage), key="model.encoder_file")
    other = tmp_path / "other.safetensors"
    _safetensors(TINY_TIMM, other)
    with pytest.raises(ValueError, match=r"other\.safetensors: key \S+ (of timm model 'resnet18' is missing|has shape)"):
        timm_features("resnet18", str(other))
    good = tmp_path / "good.safetensors"
    _safetensors(TINY_TIMM, good)
    net = timm_features(TINY_TIMM, str(good), out_indices=(1, 2))
    assert len(net(torch.zeros(1, 3, 32, 32))) == 2


def test_smp_timm_encoder_refuses_another_models_file(tmp_path):
    """smp's tu- encoders load through timm, which would half-load a file of another model."""
    from genseg.config import ModelConfig
    from genseg.methods import build_method

    other = tmp_path / "resnet34.safetensors"
    _safetensors("resnet34", other)
    with pytest.raises(ValueError, match=r"model.pretrained_file .*resnet34\.safetensors: key \S+ is not in timm model 'resnet18'"):
        build_method(ModelConfig("deeplabv3plus", {"encoder": "tu-resnet18", "pretrained_file": str(other)}), 4)


@pytest.mark.slow
def test_workflow_preflight_warn_starts_jobs_and_prints_once(tmp_path, weights_dir):
    path = _paper_like_file(tmp_path)
    target = "results/paper-test/runs/ocrnet-s0/config.yaml"  # a local job: writes the run config only
    run = _snakemake(tmp_path, target, "--cores", "1", "--configfile", str(path), "--config", "preflight=warn")
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stderr.count("genseg pre-flight") == 1  # not again from the job's process
    assert (tmp_path / "wd" / target).is_file()


def test_hub_source_goes_through_huggingface_hub_or_says_how(tmp_path, monkeypatch, weights_dir):
    import huggingface_hub

    body = _safetensors(TINY_TIMM, tmp_path / "src.safetensors")
    calls = []

    def fake_download(repo, filename, revision=None, local_dir=None):  # what hf_hub_download does, offline
        calls.append((repo, filename, revision))
        Path(local_dir).mkdir(parents=True, exist_ok=True)
        (Path(local_dir) / filename).write_bytes(body)
        return str(Path(local_dir) / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    e = _entry("https://huggingface.co/timm/test_resnet/resolve/main/model.safetensors", None)
    e |= {"name": "tiny", "sources": [{**e["sources"][0], "hf": {"repo": "timm/test_resnet", "file": "model.safetensors"}}]}
    assert weights.fetch(e, weights_dir, log=lambda *_: None).read_bytes() == body
    assert calls == [("timm/test_resnet", "model.safetensors", None)]
    assert sorted(p.name for p in weights_dir.iterdir()) == ["tiny.safetensors"]  # the hub's temporary folder is gone
    (weights_dir / "tiny.safetensors").unlink()
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # not installed
    with pytest.raises(weights.WeightsError, match=r"tiny\.safetensors is a Hugging Face hub file: `pip install huggingface_hub`, or download https://huggingface\.co/\S+ by hand"):
        weights.fetch(e, weights_dir, log=lambda *_: None)
    assert list(weights_dir.iterdir()) == []
