import pytest
import timm
import torch
from safetensors.torch import save_file

from genseg.config import ModelConfig
from genseg.methods import build_method


def test_deeplabv3plus_shapes_and_one_step_lowers_loss():
    torch.manual_seed(0)
    model = build_method(ModelConfig("deeplabv3plus", {"encoder": "tu-resnet18"}), 5)
    x, y = torch.rand(2, 3, 64, 64), torch.randint(0, 5, (2, 64, 64))
    y[:, :4] = 255
    model.eval()
    assert model.predict(torch.rand(1, 3, 50, 70)).shape == (1, 50, 70)  # any size: padded inside
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    first, _ = model.training_loss(x, y)
    for _ in range(3):
        loss, _ = model.training_loss(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert model.training_loss(x, y)[0].item() < first.item()


def test_local_pretrained_file_is_loaded_without_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    reference = timm.create_model("resnet18", pretrained=False)
    path = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(path))
    model = build_method(ModelConfig("deeplabv3plus", {"encoder": "tu-resnet18", "pretrained_file": str(path)}), 4)
    loaded = dict(model.net.encoder.model.named_parameters())
    assert torch.equal(loaded["conv1.weight"], reference.conv1.weight)
    assert torch.equal(loaded["layer4.1.conv2.weight"], reference.layer4[1].conv2.weight)


def test_missing_pretrained_file_names_path_and_format(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.safetensors does not exist; expected a timm checkpoint"):
        build_method(ModelConfig("deeplabv3plus", {"pretrained_file": str(tmp_path / "nope.safetensors")}), 4)
