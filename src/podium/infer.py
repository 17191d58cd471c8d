"""The inference stage: average every fold's model over TTA views and write a validated submission."""

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from podium import config as configs
from podium.checkpoint import load_checkpoint, unwrap_state_dict
from podium.data import ImageDataset, check_images, load_test_table, load_train_table
from podium.engine import autocast_dtype, pick_device, predict
from podium.errors import PodiumError
from podium.loaders import eval_loader
from podium.model import create_model, is_convolutional, normalization
from podium.submission import fill_template, validate_submission
from podium.tracking import Tracker
from podium.transforms import build_transforms, check_tta

log = logging.getLogger(__name__)


def load_fold_model(config: DictConfig, fold: int, device: torch.device) -> tuple[torch.nn.Module, DictConfig, list]:
    """Load fold `fold`'s best.pt into a fresh model; return it with the config it was trained with and its classes."""
    path = configs.fold_dir(config, fold) / "best.pt"
    checkpoint = load_checkpoint(path)
    trained_with = OmegaConf.create(checkpoint["config"])
    classes = checkpoint["classes"]
    if checkpoint.get("experiment") != config.name:
        raise PodiumError(f"{path} was trained for experiment {checkpoint.get('experiment')!r}, not {config.name!r}. Copy the right fold folders or set name: in the config")

    model = create_model(trained_with, len(classes), pretrained=False)
    model.load_state_dict(unwrap_state_dict(checkpoint["model"]))
    channels_last = trained_with.model.channels_last and is_convolutional(model)
    model = model.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format).eval()
    if config.model.compile:
        model.compile()
    log.info("loaded fold %d from %s (epoch %s, %s %.4f)", fold, path, checkpoint["train_state"]["best_epoch"], trained_with.train.monitor, checkpoint["train_state"]["best"])
    return model, trained_with, classes


def ensemble_probs(models: Sequence[torch.nn.Module], loaders: Sequence, device: torch.device, dtype, views: Sequence[str], channels_last: Sequence[bool]) -> np.ndarray:
    """Return the mean over models of each model's softmax, itself averaged over the TTA views."""
    total = None
    for index, (model, loader) in enumerate(zip(models, loaders)):
        probs = predict(model, loader, device, dtype, views, channels_last[index], description=f"model {index + 1}/{len(models)}")
        total = probs if total is None else total + probs
    return total / len(models)


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
    dtype = autocast_dtype(config.train.precision, device)
    models, loaders, channels_last, class_lists = [], [], [], []
    for fold in folds:
        model, trained_with, classes = load_fold_model(config, fold, device)
        mean, std = normalization(model)
        dataset = ImageDataset(table["path"], None, build_transforms(trained_with, mean, std, train=False), trained_with.data.image_size)
        models.append(model)
        loaders.append(eval_loader(dataset, config.infer.batch_size, config.data.num_workers))
        channels_last.append(trained_with.model.channels_last and is_convolutional(model))
        class_lists.append(classes)
    classes = load_train_table(config)[1]
    for fold, trained_classes in zip(folds, class_lists):
        if trained_classes != classes:
            raise PodiumError(f"fold {fold} was trained with classes {trained_classes}, but the training table now has {classes}. Retrain the fold with the current data")

    probs = ensemble_probs(models, loaders, device, dtype, list(config.infer.tta), channels_last)
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
