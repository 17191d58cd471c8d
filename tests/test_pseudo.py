"""Pseudo-labeling: selection by threshold and cap, soft targets, and no validation leakage."""

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from conftest import tiny_config
from podium import pseudo as pseudo_module
from podium.errors import PodiumError
from podium.folds import make_folds
from podium.losses import CrossEntropy, PseudoLabelLoss, encode_targets, soft_cross_entropy
from podium.pseudo import run_pseudo, select_pseudo_labels, soft_targets
from podium.train import train_all, with_pseudo_rows

PROBS = np.array([
    [0.97, 0.02, 0.01],  # 0: class 0, confident
    [0.60, 0.30, 0.10],  # 1: below the threshold
    [0.02, 0.96, 0.02],  # 2: class 1
    [0.99, 0.00, 0.01],  # 3: class 0, most confident
    [0.01, 0.01, 0.98],  # 4: class 2
    [0.95, 0.04, 0.01],  # 5: class 0, exactly at the threshold
    [0.10, 0.85, 0.05],  # 6: below
])


def test_threshold_selects_exact_rows():
    assert select_pseudo_labels(PROBS, 0.95, None).tolist() == [0, 2, 3, 4, 5]


def test_cap_keeps_most_confident_per_class():
    selected = select_pseudo_labels(PROBS, 0.95, 2)
    counts = np.bincount(PROBS[selected].argmax(axis=1), minlength=3)
    assert selected.tolist() == [0, 2, 3, 4]
    assert counts.tolist() == [2, 1, 1]


def test_nothing_above_threshold():
    assert select_pseudo_labels(PROBS, 0.999, None).tolist() == []


def test_soft_cross_entropy_one_hot():
    logits = torch.tensor([[1.0, 2.0, 0.5], [0.1, -1.0, 3.0]])
    target = torch.tensor([1, 2])
    assert torch.allclose(soft_cross_entropy(logits, F.one_hot(target, 3).float()), F.cross_entropy(logits, target, reduction="none"))


def test_temperature_sharpens():
    sharpened = soft_targets(np.array([[0.6, 0.4]]), temperature=0.5)
    assert sharpened[0].tolist() == pytest.approx([0.36 / 0.52, 0.16 / 0.52])


def test_pseudo_loss_weights_and_soft_rows():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    packed = torch.tensor(np.concatenate([
        encode_targets(np.array([[1.0, 0.0]]), weight=1.0, soft=False),
        encode_targets(np.array([[0.0, 1.0]]), weight=0.5, soft=False),
        encode_targets(np.array([[0.3, 0.7]]), weight=0.5, soft=True),
    ]))
    loss = PseudoLabelLoss(CrossEntropy(), 2)(logits, packed)
    expected = [
        F.cross_entropy(logits[:1], torch.tensor([0])).item(),
        0.5 * F.cross_entropy(logits[1:2], torch.tensor([1])).item(),
        0.5 * soft_cross_entropy(logits[2:], torch.tensor([[0.3, 0.7]])).item(),
    ]
    assert loss.tolist() == pytest.approx(expected, rel=1e-6)


def test_validation_image_as_pseudo_row_rejected():
    train = pd.DataFrame({"path": ["a.png"], "target": [0]})
    valid = pd.DataFrame({"path": ["v.png"], "target": [1]})
    rows = pd.DataFrame({"path": ["v.png"], "target_probs": [np.array([0.0, 1.0])], "weight": [0.5], "soft": [False]})
    with pytest.raises(PodiumError, match="1 pseudo-labeled images are validation images of this fold"):
        with_pseudo_rows(train, valid, rows, 2)


@pytest.mark.slow
def test_pseudo_round_on_demo(demo_root, tmp_path, monkeypatch):
    settings = ["competition.train_csv=train_small.csv", "folds.n_folds=2", "train.epochs=2", "optim.lr=3e-3", "pseudo.threshold=0.0", "pseudo.max_per_class=20"]
    config = tiny_config(demo_root, tmp_path, *settings)
    make_folds(config)
    train_all(config)

    calls = []
    train_fold = pseudo_module.train_fold

    def record(target, fold, pseudo_rows):
        calls.append((fold, pseudo_rows))
        return train_fold(target, fold, pseudo_rows=pseudo_rows)

    monkeypatch.setattr(pseudo_module, "train_fold", record)
    final = run_pseudo(config)

    experiment = tmp_path / "outputs" / "test-pseudo"
    folds = pd.read_csv(config.folds.file, dtype={"id": str})
    oof = pd.read_csv(experiment / "oof.csv", dtype={"id": str})
    test_ids = set(pd.read_csv(demo_root / "sample_submission.csv", dtype=str)["image_id"])
    assert final.name == "test-pseudo"
    assert [fold for fold, _ in calls] == [0, 1]
    for fold, rows in calls:
        assert set(rows["source_model"]) == {f"test/fold{fold}"}
        assert set(rows["id"]) <= test_ids
        assert 0 < len(rows) <= 20 * 10
        assert rows["label"].value_counts().max() <= 20
        logged = pd.read_csv(experiment / f"pseudo_labels_fold{fold}.csv", dtype={"id": str})
        assert logged["id"].tolist() == rows["id"].tolist()
    assert sorted(oof["id"]) == sorted(folds["id"])
    assert not set(oof["id"]) & test_ids
    assert (tmp_path / "submissions" / "test-pseudo.csv").is_file()


def test_no_pseudo_rows_trains_labeled_only():
    train = pd.DataFrame({"path": ["a.png", "b.png"], "target": [0, 1]})
    rows = pd.DataFrame(columns=["path", "target_probs", "weight", "soft"])
    paths, targets = with_pseudo_rows(train, train.iloc[:0], rows, 2)
    assert paths == ["a.png", "b.png"]
    assert targets.shape == (2, 4)
