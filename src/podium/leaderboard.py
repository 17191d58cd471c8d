"""The leaderboard stage: one row per experiment under outputs/, sorted by CV macro-F1."""

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

log = logging.getLogger(__name__)


def experiment_row(folder: Path) -> dict | None:
    """Summarise an experiment folder from its folds' metrics.json and config.yaml; None if no fold trained."""
    folds = sorted(folder.glob("fold*/metrics.json"))
    if not folds:
        return None
    config = OmegaConf.load(folds[0].parent / "config.yaml")
    scores = []
    for path in folds:
        history = json.loads(path.read_text())["history"]
        scores.append(max((record["valid_f1_macro"] for record in history), default=np.nan))

    test_path = folder / "test_score.json"
    report_path = folder / "report.json"
    return {
        "experiment": folder.name,
        "model": config.model.name,
        "image_size": config.data.image_size,
        "loss": config.loss.name,
        "epochs": config.train.epochs,
        "folds": len(folds),
        "cv_f1_macro": json.loads(report_path.read_text())["cv"]["f1_macro"] if report_path.is_file() else np.nan,
        "fold_f1_mean": float(np.mean(scores)),
        "fold_f1_std": float(np.std(scores)),
        "test_f1_macro": json.loads(test_path.read_text())["f1_macro"] if test_path.is_file() else np.nan,
    }


def leaderboard(output_dir: str | Path) -> pd.DataFrame:
    """Print and write outputs/leaderboard.md: every experiment, best fold-mean macro-F1 first."""
    output_dir = Path(output_dir)
    rows = [row for folder in sorted(output_dir.iterdir()) if folder.is_dir() and (row := experiment_row(folder))] if output_dir.is_dir() else []
    table = pd.DataFrame(rows)
    if table.empty:
        log.info("no trained experiments under %s yet; run make train-all first", output_dir)
        return table

    table = table.sort_values(["fold_f1_mean", "cv_f1_macro"], ascending=False, ignore_index=True)
    table.insert(table.columns.get_loc("fold_f1_mean"), "fold_f1", [f"{mean:.4f} ± {std:.4f}" for mean, std in zip(table["fold_f1_mean"], table["fold_f1_std"])])
    display = table.drop(columns=["fold_f1_mean", "fold_f1_std"])
    markdown = display.to_markdown(index=False, floatfmt=".4f")
    (output_dir / "leaderboard.md").write_text(f"# Leaderboard\n\n{markdown}\n")
    log.info("leaderboard of %d experiments, written to %s:\n%s", len(table), output_dir / "leaderboard.md", markdown)
    return table
