"""Folds: group-aware, stratified, reproducible, with clear warnings and errors."""

import logging

import numpy as np
import pandas as pd
import pytest

from conftest import tiny_config
from podium.errors import PodiumError
from podium.folds import assign_folds, make_folds


def test_group_folds_keep_groups_together(demo_root, tmp_path):
    path = make_folds(tiny_config(demo_root, tmp_path))
    folds = pd.read_csv(path)
    assert folds.groupby("group")["fold"].nunique().max() == 1
    assert folds["id"].is_unique
    assert len(folds) == len(pd.read_csv(demo_root / "train.csv"))
    assert sorted(folds["fold"].unique()) == [0, 1, 2, 3, 4]


def test_stratified_counts_within_one(demo_root, tmp_path):
    config = tiny_config(demo_root, tmp_path, "competition.group_column=null")
    folds = pd.read_csv(make_folds(config))
    counts = pd.crosstab(folds["label"], folds["fold"])
    ideal = counts.sum(axis=1).to_numpy()[:, None] / 5
    assert np.abs(counts.to_numpy() - ideal).max() < 1.0


def test_same_seed_same_bytes(demo_root, tmp_path):
    first = make_folds(tiny_config(demo_root, tmp_path / "a")).read_bytes()
    second = make_folds(tiny_config(demo_root, tmp_path / "b")).read_bytes()
    other_seed = make_folds(tiny_config(demo_root, tmp_path / "c", "seed=7")).read_bytes()
    assert first == second
    assert first != other_seed


def test_rare_class_warns_with_folds(caplog):
    table = pd.DataFrame({"id": [str(i) for i in range(12)], "target": [0] * 10 + [1] * 2, "label": ["a"] * 10 + ["b"] * 2})
    from podium.folds import warn_rare_classes

    table["fold"] = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 0, 1]
    with caplog.at_level(logging.WARNING):
        warn_rare_classes(table, ["a", "b"], 3)
    assert "class 'b' has 2 ids, fewer than 3 folds: folds [2]" in caplog.text


def test_too_few_groups_is_error():
    table = pd.DataFrame({"target": [0, 1, 0, 1], "group": ["g1", "g1", "g2", "g2"]})
    with pytest.raises(PodiumError, match="cannot split 2 groups into 5 folds; lower folds.n_folds to at most 2"):
        assign_folds(table, 5, seed=0)


def test_one_fold_is_error():
    with pytest.raises(PodiumError, match="at least 2"):
        assign_folds(pd.DataFrame({"target": [0, 1]}), 1, seed=0)
