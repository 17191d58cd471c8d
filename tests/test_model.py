"""Models rebuilt from saved weights for prediction."""

import pytest
import torch

from conftest import tiny_config
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
