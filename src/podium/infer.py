"""The inference stage: average every fold's model over TTA views and write a validated submission."""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from podium import config as configs
from podium.checkpoint import load_checkpoint, unwrap_state_dict
from podium.data import ImageDataset, check_images, load_test_table, train_classes
from podium.engine import autocast_dtype, pick_device, predict
from podium.errors import PodiumError
from podium.loaders import eval_loader
from podium.model import is_convolutional, model_with_weights, normalization
from podium.submission import fill_template, validate_submission
from podium.tracking import Tracker
from podium.transforms import build_transforms, check_tta

log = logging.getLogger(__name__)


@dataclass
class FoldModel:
    """A fold's best model, loaded for prediction, with the config and classes it was trained with."""

    fold: int
    model: torch.nn.Module
    trained_with: DictConfig
    classes: list

    @property
    def channels_last(self) -> bool:
        return bool(self.trained_with.model.channels_last) and is_convolutional(self.model)

    def input_key(self) -> tuple:
        """Return what the model's input depends on: image size, normalization and memory format."""
        mean, std = normalization(self.model)
        return self.trained_with.data.image_size, tuple(mean), tuple(std), self.channels_last


def load_fold_model(config: DictConfig, fold: int, device: torch.device) -> FoldModel:
    """Load fold `fold`'s best.pt into a fresh model on `device`."""
    path = configs.fold_dir(config, fold) / "best.pt"
    checkpoint = load_checkpoint(path)
    trained_with = OmegaConf.create(checkpoint["config"])
    classes = checkpoint["classes"]
    if checkpoint.get("experiment") != config.name:
        raise PodiumError(f"{path} was trained for experiment {checkpoint.get('experiment')!r}, not {config.name!r}. Copy the right fold folders or set name: in the config")

    model = model_with_weights(trained_with, len(classes), unwrap_state_dict(checkpoint["model"]))
    loaded = FoldModel(fold, model, trained_with, classes)
    model = model.to(device, memory_format=torch.channels_last if loaded.channels_last else torch.contiguous_format).eval()
    if config.model.compile:
        model.compile()
    log.info("loaded fold %d from %s (epoch %s, %s %.4f)", fold, path, checkpoint["train_state"]["best_epoch"], trained_with.train.monitor, checkpoint["train_state"]["best"])
    return loaded


def ensemble_probs(config: DictConfig, fold_models: Sequence[FoldModel], paths: Sequence[str], device: torch.device, description: str = "predict") -> np.ndarray:
    """Return the mean over the fold models of each model's softmax, itself averaged over the TTA views.

    Models that take the same input share one loader, so each image is decoded once per group,
    not once per model.
    """
    groups: dict[tuple, list[FoldModel]] = {}
    for loaded in fold_models:
        groups.setdefault(loaded.input_key(), []).append(loaded)

    dtype = autocast_dtype(config.train.precision, device)
    total = 0.0
    for (size, mean, std, channels_last), members in groups.items():
        dataset = ImageDataset(paths, None, build_transforms(members[0].trained_with, mean, std, train=False), size)
        loader = eval_loader(dataset, config.infer.batch_size, config.data.num_workers)
        models = [loaded.model for loaded in members]
        total = total + len(models) * predict(models, loader, device, dtype, list(config.infer.tta), channels_last, description)
    return total / len(fold_models)


def check_classes(config: DictConfig, fold_models: Sequence[FoldModel]) -> list:
    """Return the classes that every fold was trained with, after checking them against the training table."""
    classes = train_classes(config)
    for loaded in fold_models:
        if loaded.classes != classes:
            raise PodiumError(f"fold {loaded.fold} was trained with classes {loaded.classes}, but the training table now has {classes}. Retrain the fold with the current data")
    return classes


def make_submission(config: DictConfig, folds: list[int] | None = None) -> Path:
    """Predict the test set with the chosen folds' best models and write submissions/<name>.csv."""
    check_tta(list(config.infer.tta))
    folds = list(range(config.folds.n_folds)) if folds is None else folds
    missing = [fold for fold in folds if not (configs.fold_dir(config, fold) / "best.pt").is_file()]
    if missing:
        raise PodiumError(f"no best.pt for folds {missing} of {config.name!r} in {configs.experiment_dir(config)}. Train them (make train FOLD=k) or pick folds with FOLDS=0,1")

    template, table = load_test_table(config)
    check_images(table["path"].tolist(), "test")

    device = pick_device()
    fold_models = [load_fold_model(config, fold, device) for fold in folds]
    classes = check_classes(config, fold_models)

    probs = ensemble_probs(config, fold_models, table["path"].tolist(), device)
    path = write_submission(config, template, table, probs, classes, folds)

    tracker = Tracker(config, job_type="infer", name=f"{config.name}-infer")
    tracker.summary(submission=str(path), rows=len(table), folds=folds, tta=list(config.infer.tta), mean_top_probability=float(probs.max(axis=1).mean()))
    tracker.finish()
    return path


def write_submission(config: DictConfig, template: pd.DataFrame, table: pd.DataFrame, probs: np.ndarray, classes: list, folds: list[int]) -> Path:
    """Fill and validate the template, then write the submission and the per-class probabilities."""
    id_column = config.competition.id_column
    keep = tuple(column for column in [config.competition.path_column] if column is not None)
    submission = fill_template(template, id_column, table["id"].tolist(), probs, classes, keep)
    validate_submission(submission, template, id_column, classes, keep)

    folder = Path(config.submission_dir)
    folder.mkdir(exist_ok=True)
    path = folder / f"{config.name}.csv"
    submission.to_csv(path, index=False)

    probabilities = pd.DataFrame(probs, columns=[str(name) for name in classes])
    probabilities.insert(0, id_column, template[id_column])
    probabilities.to_csv(folder / f"{config.name}_probs.csv", index=False)

    log.info("wrote %s: %d rows from folds %s with TTA %s; probabilities in %s", path, len(submission), folds, list(config.infer.tta), folder / f"{config.name}_probs.csv")
    return path
