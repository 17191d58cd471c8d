"""Models rebuilt from saved weights for prediction."""

import pytest
import torch

from conftest import tiny_config
from podium import model as model_module
from podium.model import create_model, model_with_weights


@pytest.mark.parametrize("name", ["test_resnet", "test_coatnet"])  # test_coatnet has buffers that state_dict leaves out
def test_rebuilt_model_predicts_the_same(tmp_path, name):
    config = tiny_config(tmp_path, tmp_path, f"model.name={name}")
    torch.manual_seed(0)
    trained = create_model(config, 3, pretrained=False).eval()
    rebuilt = model_with_weights(config, 3, trained.state_dict()).eval()
    images = torch.rand(2, *trained.pretrained_cfg["input_size"])

    devices = {tensor.device.type for tensor in [*rebuilt.parameters(), *rebuilt.buffers()]}
    assert devices == {"cpu"}
    assert torch.equal(trained(images), rebuilt(images))


def test_rebuild_without_meta_device(tmp_path, monkeypatch):
    config = tiny_config(tmp_path, tmp_path)
    trained = create_model(config, 3, pretrained=False).eval()

    def value_reading_create(*args, **kwargs):
        torch.zeros(1).item()  # fails on the meta device, as a constructor that reads a tensor would
        return create_model(*args, **kwargs)

    monkeypatch.setattr(model_module, "create_model", value_reading_create)
    rebuilt = model_with_weights(config, 3, trained.state_dict()).eval()
    images = torch.rand(2, 3, 32, 32)
    assert torch.equal(trained(images), rebuilt(images))
