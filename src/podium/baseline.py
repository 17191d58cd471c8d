"""The baseline stage: scikit-learn's SVC on flattened pixels, on the same folds as the CNN.

It shows how much the trained network adds over a classic model on the same split.
"""

import json
import logging

import cv2
import numpy as np
from omegaconf import DictConfig
from sklearn.metrics import f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from podium import config as configs
from podium.data import load_train_table, read_folds, read_image

log = logging.getLogger(__name__)

# Images are shrunk to this side before flattening, so the feature count stays small on any competition.
PIXEL_SIDE = 32


def pixel_features(paths: list[str]) -> np.ndarray:
    images = [cv2.resize(read_image(path), (PIXEL_SIDE, PIXEL_SIDE), interpolation=cv2.INTER_AREA) for path in paths]
    return np.stack(images).reshape(len(paths), -1).astype(np.float32) / 255.0


def svc_baseline(config: DictConfig) -> dict:
    """Fit an RBF SVC per fold, predict that fold's rows, and log the CV macro-F1 beside podium's."""
    table, classes = load_train_table(config)
    folds = read_folds(config, table)
    features = pixel_features(table["path"].tolist())
    targets = table["target"].to_numpy()

    predictions = np.empty(len(table), dtype=int)
    fold_scores = []
    for fold in range(config.folds.n_folds):
        valid = folds == fold
        model = make_pipeline(StandardScaler(), SVC(C=10.0, gamma="scale"))
        model.fit(features[~valid], targets[~valid])
        predictions[valid] = model.predict(features[valid])
        fold_scores.append(f1_score(targets[valid], predictions[valid], labels=list(range(len(classes))), average="macro", zero_division=0))

    cv = float(f1_score(targets, predictions, labels=list(range(len(classes))), average="macro", zero_division=0))
    report_path = configs.experiment_dir(config) / "report.json"
    podium_cv = json.loads(report_path.read_text())["cv"]["f1_macro"] if report_path.is_file() else float("nan")
    log.info(
        "SVC baseline on %dx%d pixels: CV macro-F1 %.4f (per fold %s) | %s CV macro-F1 %.4f",
        PIXEL_SIDE, PIXEL_SIDE, cv, [round(score, 4) for score in fold_scores], config.name, podium_cv,
    )
    return {"cv_f1_macro": cv, "fold_f1_macro": fold_scores}
