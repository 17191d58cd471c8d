"""The folds stage: split the training table into K stratified (and group-aware) folds."""

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from podium.data import check_images, load_train_table
from podium.errors import PodiumError

log = logging.getLogger(__name__)


def assign_folds(table: pd.DataFrame, n_folds: int, seed: int) -> np.ndarray:
    """Return the fold of each row: StratifiedGroupKFold when the table has groups, else StratifiedKFold."""
    if n_folds < 2:
        raise PodiumError(f"folds.n_folds is {n_folds}; it must be at least 2")
    has_groups = "group" in table.columns
    units = table["group"].nunique() if has_groups else len(table)
    if units < n_folds:
        raise PodiumError(
            f"cannot split {units} {'groups' if has_groups else 'rows'} into {n_folds} folds; "
            f"lower folds.n_folds to at most {units}"
        )

    folds = np.full(len(table), -1, dtype=int)
    if has_groups:
        splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        splits = splitter.split(table, table["target"], groups=table["group"])
    else:
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        splits = splitter.split(table, table["target"])
    for fold, (_, valid_index) in enumerate(splits):
        folds[valid_index] = fold
    return folds


def warn_rare_classes(table: pd.DataFrame, classes: list, n_folds: int) -> None:
    """Log a warning for each class with fewer rows (or groups) than folds, naming the folds that lack it."""
    unit = "group" if "group" in table.columns else "id"
    for target, name in enumerate(classes):
        rows = table[table["target"] == target]
        count = rows[unit].nunique()
        if count >= n_folds:
            continue
        lacking = sorted(set(range(n_folds)) - set(rows["fold"]))
        log.warning(
            "class %r has %d %ss, fewer than %d folds: folds %s have no validation sample of it",
            name, count, unit, n_folds, lacking,
        )


def fold_table(table: pd.DataFrame, classes: list) -> str:
    counts = pd.crosstab(table["fold"], table["label"]).reindex(columns=classes, fill_value=0)
    counts["total"] = counts.sum(axis=1)
    return counts.to_string()


def make_folds(config: DictConfig) -> Path:
    """Write folds.csv (id, label, group, fold) and print each fold's class counts."""
    table, classes = load_train_table(config)
    if config.data.scan_images:
        check_images(table["path"].tolist(), "training")

    n_folds = config.folds.n_folds
    table["fold"] = assign_folds(table, n_folds, config.seed)
    warn_rare_classes(table, classes, n_folds)

    path = Path(config.folds.file)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = ["id", "label"] + (["group"] if "group" in table.columns else []) + ["fold"]
    table[columns].to_csv(path, index=False)

    splitter = "StratifiedGroupKFold" if "group" in table.columns else "StratifiedKFold"
    log.info("class counts per fold:\n%s", fold_table(table, classes))
    log.info("wrote %s: %d rows in %d folds (%s, seed %d)", path, len(table), n_folds, splitter, config.seed)
    return path
