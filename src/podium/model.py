"""Create a timm model from the config, with clear errors for unknown names and offline weights."""

import difflib
import itertools
import logging

import timm
import torch
from omegaconf import DictConfig

from podium.errors import PodiumError

log = logging.getLogger(__name__)


def create_model(config: DictConfig, num_classes: int, pretrained: bool | None = None) -> torch.nn.Module:
    """Build `model.name` with a fresh head of `num_classes` outputs.

    `pretrained` overrides the config; inference passes False because it loads fold weights.
    """
    spec = config.model
    pretrained = spec.pretrained if pretrained is None else pretrained
    if not timm.is_model(spec.name):
        close = difflib.get_close_matches(spec.name, timm.list_models(), n=5, cutoff=0.6)
        raise PodiumError(f"unknown timm model {spec.name!r} in model.name; close matches: {close or 'none'}")

    overlay = {"file": str(spec.pretrained_file)} if pretrained and spec.pretrained_file else None
    try:
        model = timm.create_model(
            spec.name,
            pretrained=pretrained,
            pretrained_cfg_overlay=overlay,
            num_classes=num_classes,
            drop_rate=spec.drop_rate,
            drop_path_rate=spec.drop_path_rate,
        )
    except (OSError, RuntimeError, ValueError) as error:
        if not pretrained:
            raise
        raise PodiumError(
            f"cannot load pretrained weights for {spec.name!r}: {error}. On a machine without internet, download "
            f"the weights elsewhere and set model.pretrained_file to the local .safetensors or .pth file, "
            f"or set model.pretrained=false to train from scratch."
        ) from error

    if spec.pretrained_file and pretrained:
        log.info("loaded pretrained weights for %s from %s", spec.name, spec.pretrained_file)
    return model


def model_with_weights(config: DictConfig, num_classes: int, state_dict: dict) -> torch.nn.Module:
    """Build `model.name` with the weights of `state_dict`, skipping the random initialisation where possible.

    A model built on the meta device allocates and initialises nothing, and the state dict's
    tensors become its weights. A model with buffers that a state dict does not store (such as
    relative position indices) is built normally, because those buffers are computed at build,
    and so is a model whose constructor fails on the meta device.
    """
    model = meta_model(config, num_classes)
    if model is not None:
        tensors = itertools.chain(model.named_parameters(), model.named_buffers())
        if all(name in state_dict for name, _ in tensors):
            model.load_state_dict(state_dict, assign=True)
            return model

    model = create_model(config, num_classes, pretrained=False)
    model.load_state_dict(state_dict)
    return model


def meta_model(config: DictConfig, num_classes: int) -> torch.nn.Module | None:
    """Build `model.name` on the meta device, or return None when its constructor fails there."""
    try:
        with torch.device("meta"):
            return create_model(config, num_classes, pretrained=False)
    except (RuntimeError, NotImplementedError):  # for example, a constructor that reads a tensor's value
        return None


def normalization(model: torch.nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Return the (mean, std) the model's pretrained weights expect, from timm's data config."""
    data_config = timm.data.resolve_data_config({}, model=model)
    return tuple(data_config["mean"]), tuple(data_config["std"])


def is_convolutional(model: torch.nn.Module) -> bool:
    return any(isinstance(module, torch.nn.Conv2d) for module in model.modules())
