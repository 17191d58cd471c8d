"""The pseudo-labeling stage: confident predictions on unlabeled images retrain every fold.

By default fold k's pseudo-labels come only from fold k's own model, which never saw fold k's
validation rows, so the CV score of the new experiment stays honest. Pseudo rows join the
training part of each fold and never its validation, its out-of-fold file or the CV score.
"""

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from podium import config as configs
from podium.data import check_images, image_paths, list_images, load_test_table
from podium.engine import pick_device
from podium.errors import PodiumError
from podium.infer import ensemble_probs, load_fold_model, make_submission
from podium.report import oof_report
from podium.train import train_fold
from podium.transforms import check_tta

log = logging.getLogger(__name__)


def unlabeled_table(config: DictConfig) -> pd.DataFrame:
    """Return id and path of every unlabeled image: the test set and, if set, pseudo.unlabeled_images."""
    frames = []
    if config.pseudo.include_test:
        frames.append(load_test_table(config)[1])
    if config.pseudo.unlabeled_images is not None:
        base = Path(config.competition.root) / config.pseudo.unlabeled_images
        files = [path.relative_to(base) for path in list_images(base, recursive=True)]
        frames.append(pd.DataFrame({"id": [f"unlabeled/{path.with_suffix('')}" for path in files], "path": image_paths([str(path) for path in files], base)}))
    if not frames:
        raise PodiumError("no unlabeled images: set pseudo.include_test=true or pseudo.unlabeled_images to a folder")

    table = pd.concat(frames, ignore_index=True)
    check_images(table["path"].tolist(), "unlabeled")
    return table


def predict_fold(config: DictConfig, fold: int, table: pd.DataFrame) -> tuple[np.ndarray, list]:
    """Return fold `fold`'s TTA-averaged probabilities on the unlabeled images, and its classes."""
    device = pick_device()
    loaded = load_fold_model(config, fold, device)
    probs = ensemble_probs(config, [loaded], table["path"].tolist(), device, description=f"pseudo fold {fold}")
    return probs, loaded.classes


def select_pseudo_labels(probs: np.ndarray, threshold: float, max_per_class: int | None) -> np.ndarray:
    """Return the indices of rows whose top probability reaches `threshold`, at most `max_per_class` per class.

    Within a class, the most confident rows are kept first. The result is sorted.
    """
    confidence = probs.max(axis=1)
    predicted = probs.argmax(axis=1)
    keep = np.flatnonzero(confidence >= threshold)
    if max_per_class is not None:
        capped = []
        for target in np.unique(predicted[keep]):
            members = keep[predicted[keep] == target]
            capped.extend(members[np.argsort(-confidence[members], kind="stable")][:max_per_class])
        keep = np.array(capped, dtype=int)
    return np.sort(keep)


def soft_targets(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Sharpen (temperature < 1) or flatten probabilities: p ** (1 / T), renormalized."""
    scaled = probs ** (1.0 / temperature)
    return scaled / scaled.sum(axis=1, keepdims=True)


def pseudo_rows(table: pd.DataFrame, probs: np.ndarray, selected: np.ndarray, classes: list, spec: DictConfig, source_model: str) -> pd.DataFrame:
    """Build the rows that join training: path, label, confidence, target probabilities, weight and source."""
    chosen = probs[selected]
    predicted = chosen.argmax(axis=1)
    targets = soft_targets(chosen, spec.temperature) if spec.soft else np.eye(len(classes))[predicted]
    return pd.DataFrame({
        "id": table["id"].to_numpy()[selected],
        "path": table["path"].to_numpy()[selected],
        "label": [classes[i] for i in predicted],
        "confidence": chosen.max(axis=1),
        "target_probs": list(targets),
        "weight": float(spec.weight),
        "soft": bool(spec.soft),
        "source_model": source_model,
    })


def log_selection(rows: pd.DataFrame, classes: list, threshold: float, fold: int, total: int, path: Path) -> None:
    counts = rows["label"].value_counts().reindex(classes, fill_value=0)
    per_class = ", ".join(f"{name}: {count}" for name, count in counts.items())
    log.info("fold %d: kept %d of %d unlabeled images at threshold %.2f (%s); written to %s", fold, len(rows), total, threshold, per_class, path)


def round_name(config: DictConfig, round_index: int) -> str:
    base = config.pseudo.name or f"{config.name}-pseudo"
    return base if round_index == config.pseudo.rounds else f"{base}-r{round_index}"


def run_pseudo(config: DictConfig) -> DictConfig:
    """Run every round: label with the previous experiment's models, retrain all folds, report and infer.

    Returns the config of the final pseudo experiment.
    """
    spec = config.pseudo
    check_tta(list(config.infer.tta))
    if spec.source not in ("fold", "ensemble"):
        raise PodiumError(f"pseudo.source must be fold or ensemble, not {spec.source!r}")
    if spec.source == "ensemble":
        log.warning("pseudo.source=ensemble: every fold's pseudo-labels come from models that saw its validation rows, so the CV score of the new experiment is optimistic")

    table = unlabeled_table(config)
    source = config
    for round_index in range(1, spec.rounds + 1):
        target = OmegaConf.merge(config, {"name": round_name(config, round_index)})
        log.info("pseudo round %d of %d: labeling %d images with %s, training %s", round_index, spec.rounds, len(table), source.name, target.name)
        train_round(source, target, table)
        oof_report(target)
        make_submission(target)
        source = target
    return source


def train_round(source: DictConfig, target: DictConfig, table: pd.DataFrame) -> None:
    """Label the unlabeled table with `source`'s fold models and train every fold of `target`."""
    spec = target.pseudo
    n_folds = source.folds.n_folds
    fold_probs = {}
    for fold in range(n_folds):
        fold_probs[fold], classes = predict_fold(source, fold, table)
    if spec.source == "ensemble":
        mean = sum(fold_probs.values()) / n_folds
        fold_probs = {fold: mean for fold in range(n_folds)}

    for fold in range(n_folds):
        source_model = f"{source.name}/fold{fold}" if spec.source == "fold" else f"{source.name}/ensemble"
        selected = select_pseudo_labels(fold_probs[fold], spec.threshold, spec.max_per_class)
        rows = pseudo_rows(table, fold_probs[fold], selected, classes, spec, source_model)

        path = configs.experiment_dir(target) / f"pseudo_labels_fold{fold}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        rows.drop(columns=["target_probs"]).to_csv(path, index=False)
        log_selection(rows, classes, spec.threshold, fold, len(table), path)
        if rows.empty:
            log.warning("fold %d: no unlabeled image reached pseudo.threshold %.2f; the fold trains on labeled rows only", fold, spec.threshold)
        train_fold(target, fold, pseudo_rows=rows)
