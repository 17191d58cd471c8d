"""Validation metrics use the full class list and never crash on a fold that lacks classes."""

import math

import numpy as np
import pytest

from podium.metrics import classification_metrics, is_improvement, monitor_mode


def one_hot_probs(predictions, num_classes):
    probs = np.full((len(predictions), num_classes), 0.01)
    probs[np.arange(len(predictions)), predictions] = 1.0
    return probs / probs.sum(axis=1, keepdims=True)


def test_absent_class_counts_in_macro_f1():
    metrics = classification_metrics(np.array([0, 0, 1, 1]), one_hot_probs([0, 0, 1, 1], 3))
    assert metrics["f1_macro"] == pytest.approx(2 / 3, abs=1e-4)
    assert metrics["accuracy"] == 1.0


def test_auc_undefined_is_nan():
    metrics = classification_metrics(np.array([1, 1, 1]), one_hot_probs([1, 1, 0], 3))
    assert math.isnan(metrics["auc_macro"])


def test_auc_perfect_ranking():
    metrics = classification_metrics(np.array([0, 1, 2, 0]), one_hot_probs([0, 1, 2, 0], 3))
    assert metrics["auc_macro"] == pytest.approx(1.0)


def test_log_loss_by_hand():
    probs = np.array([[0.8, 0.2], [0.4, 0.6]])
    expected = -(math.log(0.8) + math.log(0.6)) / 2
    assert classification_metrics(np.array([0, 1]), probs)["log_loss"] == pytest.approx(expected)


def test_nan_never_improves():
    assert not is_improvement(float("nan"), 0.5, "max")
    assert not is_improvement(float("nan"), None, "max")


def test_improvement_is_strict():
    assert not is_improvement(0.5, 0.5, "max")
    assert is_improvement(0.6, 0.5, "max")
    assert is_improvement(0.4, 0.5, "min")
    assert is_improvement(0.1, None, "min")


def test_loss_metrics_default_to_min():
    assert monitor_mode("valid_loss", None) == "min"
    assert monitor_mode("valid_log_loss", None) == "min"
    assert monitor_mode("valid_f1_macro", None) == "max"
    assert monitor_mode("valid_loss", "max") == "max"
