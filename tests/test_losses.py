"""Losses against hand-computed values on a small logits matrix."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import tiny_config
from podium.errors import PodiumError
from podium.losses import CrossEntropy, FocalLoss, SoftF1Loss, build_loss

LOGITS = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 2.0]])
TARGET = torch.tensor([0, 2, 2])


def softmax_row(row):
    exps = [math.exp(value) for value in row]
    return [value / sum(exps) for value in exps]


def test_cross_entropy_by_hand():
    expected = [-math.log(softmax_row(row)[t]) for row, t in zip(LOGITS.tolist(), TARGET.tolist())]
    assert CrossEntropy()(LOGITS, TARGET).tolist() == pytest.approx(expected, rel=1e-6)


def test_label_smoothing_by_hand():
    # With smoothing s over K classes the target is (1 - s) one-hot + s / K everywhere.
    s, k = 0.1, 3
    probs = softmax_row(LOGITS[0].tolist())
    expected = -sum(((1 - s) * (j == 0) + s / k) * math.log(p) for j, p in enumerate(probs))
    assert CrossEntropy(label_smoothing=s)(LOGITS, TARGET)[0].item() == pytest.approx(expected, rel=1e-6)


def test_focal_by_hand():
    p = softmax_row(LOGITS[1].tolist())[2]
    expected = -((1 - p) ** 2) * math.log(p) * 0.5
    alpha = torch.tensor([1.0, 1.0, 0.5])
    assert FocalLoss(gamma=2.0, alpha=alpha)(LOGITS, TARGET)[1].item() == pytest.approx(expected, rel=1e-6)


def test_focal_gamma_zero_is_cross_entropy():
    assert torch.allclose(FocalLoss(gamma=0.0)(LOGITS, TARGET), F.cross_entropy(LOGITS, TARGET, reduction="none"))


def test_zero_smoothing_is_cross_entropy(tmp_path):
    config = tiny_config(tmp_path, tmp_path, "loss.name=label_smoothing", "loss.label_smoothing=0.0")
    loss = build_loss(config, np.array([0, 1, 2]), 3)
    assert torch.allclose(loss(LOGITS, TARGET), F.cross_entropy(LOGITS, TARGET, reduction="none"))


def test_label_smoothing_default_is_0_1(tmp_path):
    config = tiny_config(tmp_path, tmp_path, "loss.name=label_smoothing")
    assert build_loss(config, np.array([0, 1, 2]), 3).label_smoothing == pytest.approx(0.1)


def test_soft_f1_by_hand():
    probs = torch.tensor([softmax_row(row) for row in LOGITS.tolist()])
    truth = F.one_hot(TARGET, 3).float()
    f1 = []
    for c in range(3):
        tp = float((probs[:, c] * truth[:, c]).sum())
        fp = float((probs[:, c] * (1 - truth[:, c])).sum())
        fn = float(((1 - probs[:, c]) * truth[:, c]).sum())
        f1.append(2 * tp / (2 * tp + fp + fn))
    per_sample = SoftF1Loss(3)(LOGITS, TARGET)
    assert per_sample.shape == (3,)
    assert per_sample[0].item() == pytest.approx(1 - sum(f1) / 3, rel=1e-5)


def test_perfect_soft_f1_is_near_zero():
    logits = torch.tensor([[20.0, 0.0], [0.0, 20.0]])
    assert SoftF1Loss(2)(logits, torch.tensor([0, 1]))[0].item() == pytest.approx(0.0, abs=1e-6)


def test_balanced_class_weights(tmp_path):
    config = tiny_config(tmp_path, tmp_path, "loss.class_weights=balanced")
    loss = build_loss(config, np.array([0, 0, 0, 1]), 2)
    # sklearn's balanced weight: n_samples / (n_classes * count) = 4/6 and 4/2.
    assert loss.weight.tolist() == pytest.approx([4 / 6, 2.0])


def test_unknown_loss_name(tmp_path):
    config = tiny_config(tmp_path, tmp_path, "loss.name=dice")
    with pytest.raises(PodiumError, match="unknown loss.name 'dice'"):
        build_loss(config, np.array([0, 1]), 2)


def test_alpha_length_must_match_classes(tmp_path):
    config = tiny_config(tmp_path, tmp_path, "loss.name=focal", "loss.alpha=[1,2]")
    with pytest.raises(PodiumError, match="loss.alpha has 2 values but there are 3 classes"):
        build_loss(config, np.array([0, 1, 2]), 3)
