"""Validation metrics over a whole epoch, always on the full class list."""

import math
import warnings

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import accuracy_score, f1_score, log_loss, precision_score, recall_score, roc_auc_score

from podium.errors import PodiumError

# Metrics where lower is better; best.pt selection uses min mode for these by default.
LOSS_LIKE = ("loss",)


def macro_auc(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Return the one-vs-rest ROC-AUC averaged over the classes where it is defined, or NaN if none is.

    A class is skipped when the rows hold only positives or only negatives of it.
    """
    scores = []
    for k in range(probs.shape[1]):
        positives = y_true == k
        if positives.all() or not positives.any():
            continue
        scores.append(roc_auc_score(positives, probs[:, k]))
    return float(np.mean(scores)) if scores else math.nan


def classification_metrics(y_true: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """Compute accuracy, macro-F1, macro precision and recall, ROC-AUC and log loss.

    `probs` has one column per class. Every metric uses all of those classes, so a class that
    is absent from `y_true` and never predicted counts as an F1 of 0 in the macro average.
    """
    probs = probs / probs.sum(axis=1, keepdims=True)  # rows read back from CSV carry rounding
    num_classes = probs.shape[1]
    labels = list(range(num_classes))
    y_pred = probs.argmax(axis=1)
    macro = dict(labels=labels, average="macro", zero_division=0)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return {
            "accuracy": float(accuracy_score(y_true, y_pred)),
            "f1_macro": float(f1_score(y_true, y_pred, **macro)),
            "precision_macro": float(precision_score(y_true, y_pred, **macro)),
            "recall_macro": float(recall_score(y_true, y_pred, **macro)),
            "auc_macro": macro_auc(y_true, probs),
            "log_loss": float(log_loss(y_true, probs.astype(np.float64), labels=labels)),
        }


def per_class_f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    return f1_score(y_true, y_pred, labels=list(range(num_classes)), average=None, zero_division=0)


def is_improvement(value: float, best: float | None, mode: str) -> bool:
    """Return True when `value` strictly beats `best`; NaN never does."""
    if value is None or math.isnan(value):
        return False
    if best is None or math.isnan(best):
        return True
    return value > best if mode == "max" else value < best


def monitor_mode(metric: str, mode: str | None) -> str:
    if mode is not None:
        if mode not in ("max", "min"):
            raise PodiumError(f"train.mode must be max, min or null, not {mode!r}")
        return mode
    return "min" if any(word in metric for word in LOSS_LIKE) else "max"
