"""The out-of-fold join rejects overlaps and missing folds."""

import pandas as pd
import pytest

from conftest import tiny_config
from podium.errors import PodiumError
from podium.report import join_oof

CLASSES = ["a", "b"]


def write_oof(folder, fold, ids):
    folder = folder / f"fold{fold}"
    folder.mkdir(parents=True)
    pd.DataFrame({"id": ids, "fold": fold, "label": "a", "pred": "a", "prob_a": 0.9, "prob_b": 0.1}).to_csv(folder / "oof.csv", index=False)


def test_join_rejects_duplicate_id(tmp_path):
    config = tiny_config(tmp_path, tmp_path, "folds.n_folds=2")
    write_oof(tmp_path / "outputs" / "test", 0, ["x", "y"])
    write_oof(tmp_path / "outputs" / "test", 1, ["y", "z"])
    with pytest.raises(PodiumError, match=r"1 ids appear in more than one fold's oof.csv, e.g. \['y'\]"):
        join_oof(config, [0, 1], CLASSES)


def test_join_names_missing_fold(tmp_path):
    config = tiny_config(tmp_path, tmp_path, "folds.n_folds=2")
    write_oof(tmp_path / "outputs" / "test", 0, ["x"])
    with pytest.raises(PodiumError, match="fold 1 has no out-of-fold file"):
        join_oof(config, [0, 1], CLASSES)


def test_join_subset_of_folds(tmp_path):
    config = tiny_config(tmp_path, tmp_path, "folds.n_folds=2")
    write_oof(tmp_path / "outputs" / "test", 0, ["x", "y"])
    assert join_oof(config, [0], CLASSES)["id"].tolist() == ["x", "y"]


def test_join_rejects_other_classes(tmp_path):
    config = tiny_config(tmp_path, tmp_path, "folds.n_folds=2")
    write_oof(tmp_path / "outputs" / "test", 0, ["x"])
    with pytest.raises(PodiumError, match="do not match the classes"):
        join_oof(config, [0], ["a", "b", "c"])
