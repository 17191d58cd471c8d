"""Albumentations pipelines built from the config, and test-time augmentation views."""

import difflib
from typing import Sequence

import albumentations as A
import torch
from albumentations.pytorch import ToTensorV2
from omegaconf import DictConfig, OmegaConf

from podium.errors import PodiumError


def build_augmentation(spec: DictConfig) -> A.BasicTransform:
    """Create one albumentations transform from {name: ..., **arguments}."""
    arguments = OmegaConf.to_container(spec, resolve=True)
    name = arguments.pop("name", None)
    transform_class = getattr(A, name, None) if isinstance(name, str) else None
    if transform_class is None or not isinstance(transform_class, type):
        known = [item for item in dir(A) if item[:1].isupper()]
        close = difflib.get_close_matches(str(name), known, n=3)
        raise PodiumError(f"unknown albumentations transform {name!r} in data.augment; close matches: {close or 'none'}")
    try:
        return transform_class(**arguments)
    except (TypeError, ValueError) as error:
        raise PodiumError(f"invalid arguments for albumentations.{name} in data.augment: {error}") from error


def build_transforms(config: DictConfig, mean: Sequence[float], std: Sequence[float], train: bool) -> A.Compose:
    """Resize, then (for training) the configured augmentations, then normalize and convert to a tensor."""
    size = config.data.image_size
    steps = [A.Resize(size, size)]
    if train:
        steps += [build_augmentation(spec) for spec in config.data.augment]
    steps += [A.Normalize(mean=tuple(mean), std=tuple(std), max_pixel_value=255.0), ToTensorV2()]
    return A.Compose(steps, seed=config.seed)


TTA_VIEWS = {
    "identity": lambda images: images,
    "hflip": lambda images: images.flip(3),
    "vflip": lambda images: images.flip(2),
    "transpose": lambda images: images.transpose(2, 3),
}


def check_tta(views: Sequence[str]) -> None:
    unknown = [view for view in views if view not in TTA_VIEWS]
    if unknown or not views:
        raise PodiumError(f"infer.tta must list views from {list(TTA_VIEWS)}; got {list(views)}")


def tta_views(images: torch.Tensor, views: Sequence[str]) -> list[torch.Tensor]:
    """Return the batch (N, C, H, W) as each test-time view, in the order given."""
    return [TTA_VIEWS[view](images) for view in views]
