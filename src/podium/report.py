"""The report stage: the out-of-fold CV score of an experiment, and the score of a submission."""

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from podium import config as configs
from podium.data import load_train_table, read_table
from podium.errors import PodiumError
from podium.metrics import classification_metrics
from podium.plots import save_confident_errors, save_confusion_matrices, save_per_class_f1
from podium.tracking import Tracker

log = logging.getLogger(__name__)


def join_oof(config: DictConfig, folds: list[int], classes: list) -> pd.DataFrame:
    """Concatenate the folds' oof.csv files, rejecting an id that appears in two folds."""
    frames = []
    for fold in folds:
        path = configs.fold_dir(config, fold) / "oof.csv"
        if not path.is_file():
            raise PodiumError(f"fold {fold} has no out-of-fold file {path}. Train it (make train FOLD={fold}) or report on a subset (FOLDS=0,1)")
        frames.append(pd.read_csv(path, dtype={"id": str}))
    oof = pd.concat(frames, ignore_index=True)

    duplicated = oof["id"][oof["id"].duplicated()].unique().tolist()
    if duplicated:
        raise PodiumError(f"{len(duplicated)} ids appear in more than one fold's oof.csv, e.g. {duplicated[:10]}. Run `make folds` and retrain: the folds overlap")

    expected = [f"prob_{name}" for name in classes]
    if [column for column in oof.columns if column.startswith("prob_")] != expected:
        raise PodiumError(f"oof.csv probability columns do not match the classes {classes}; retrain the folds with the current config")
    return oof


def check_coverage(oof: pd.DataFrame, table: pd.DataFrame, folds: list[int], n_folds: int) -> None:
    """With every fold reported, each training id must have exactly one out-of-fold prediction."""
    unknown = sorted(set(oof["id"]) - set(table["id"]))
    if unknown:
        raise PodiumError(f"{len(unknown)} out-of-fold ids are not in the training table, e.g. {unknown[:10]}. The folds were trained on other data; retrain them")
    if sorted(folds) == list(range(n_folds)):
        missing = sorted(set(table["id"]) - set(oof["id"]))
        if missing:
            raise PodiumError(f"{len(missing)} training ids have no out-of-fold prediction, e.g. {missing[:10]}. Run `make folds` and retrain every fold")


def per_class_table(y_true: np.ndarray, y_pred: np.ndarray, classes: list) -> pd.DataFrame:
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=list(range(len(classes))), zero_division=0)
    return pd.DataFrame({"class": classes, "precision": precision, "recall": recall, "f1": f1, "support": support})


def oof_report(config: DictConfig, folds: list[int] | None = None) -> dict:
    """Compute the CV score and per-fold and per-class metrics; write oof.csv, report.json, report.md and PNGs."""
    table, classes = load_train_table(config)
    folds = list(range(config.folds.n_folds)) if folds is None else folds
    oof = join_oof(config, folds, classes)
    check_coverage(oof, table, folds, config.folds.n_folds)

    index = {str(name): i for i, name in enumerate(classes)}
    y_true = oof["label"].astype(str).map(index).to_numpy()
    probs = oof[[f"prob_{name}" for name in classes]].to_numpy(dtype=np.float64)
    overall = classification_metrics(y_true, probs)

    per_fold = {}
    for fold in folds:
        rows = (oof["fold"] == fold).to_numpy()
        per_fold[fold] = classification_metrics(y_true[rows], probs[rows])
    fold_f1 = np.array([metrics["f1_macro"] for metrics in per_fold.values()])

    y_pred = probs.argmax(axis=1)
    classes_table = per_class_table(y_true, y_pred, classes)
    report = {
        "experiment": config.name,
        "folds": folds,
        "rows": len(oof),
        "cv": overall,
        "fold_f1_macro_mean": float(fold_f1.mean()),
        "fold_f1_macro_std": float(fold_f1.std()),
        "per_fold": {str(fold): metrics for fold, metrics in per_fold.items()},
        "per_class": classes_table.to_dict(orient="records"),
    }
    # A report on a subset of folds goes to its own folder, so the full CV report stays intact.
    folder = configs.experiment_dir(config)
    if sorted(folds) != list(range(config.folds.n_folds)):
        folder = folder / f"oof_folds{'-'.join(map(str, folds))}"
    write_report(folder, oof, report, classes_table, confusion_matrix(y_true, y_pred, labels=list(range(len(classes)))), classes)
    save_confident_errors(oof, table, classes, folder / "confident_errors.png")
    log.info("wrote the out-of-fold report to %s (report.md, report.json, oof.csv, confusion_matrix.png, per_class_f1.png, confident_errors.png)", folder)
    print_summary(report, classes_table)
    track_report(config, report, classes_table, y_true, y_pred, classes)
    return report


def track_report(config: DictConfig, report: dict, classes_table: pd.DataFrame, y_true, y_pred, classes: list) -> None:
    """Send the CV score, the per-class table and the confusion matrix to a W&B run of job type "report"."""
    tracker = Tracker(config, job_type="report", name=f"{config.name}-oof")
    tracker.summary(cv_f1_macro=report["cv"]["f1_macro"], **{f"cv/{key}": value for key, value in report["cv"].items()},
                    fold_f1_macro_mean=report["fold_f1_macro_mean"], fold_f1_macro_std=report["fold_f1_macro_std"])
    tracker.log_table("oof/per_class", classes_table)
    tracker.log_confusion_matrix("oof/confusion_matrix", y_true, y_pred, classes)
    tracker.finish()


def write_report(folder: Path, oof, report, classes_table, matrix, classes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    oof.to_csv(folder / "oof.csv", index=False)
    (folder / "report.json").write_text(json.dumps(report, indent=2, default=str))

    fold_rows = pd.DataFrame(report["per_fold"]).T.rename_axis("fold")
    markdown = [
        f"# {report['experiment']}: out-of-fold report",
        "",
        f"CV macro-F1 **{report['cv']['f1_macro']:.4f}** on {report['rows']} rows "
        f"(per fold {report['fold_f1_macro_mean']:.4f} ± {report['fold_f1_macro_std']:.4f}), accuracy {report['cv']['accuracy']:.4f}.",
        "",
        "## Per fold",
        "",
        fold_rows.to_markdown(floatfmt=".4f"),
        "",
        "## Per class",
        "",
        classes_table.to_markdown(index=False, floatfmt=".4f"),
        "",
        "![confusion matrix](confusion_matrix.png)",
        "![per-class F1](per_class_f1.png)",
        "",
    ]
    (folder / "report.md").write_text("\n".join(markdown))
    save_confusion_matrices(matrix, classes, folder / "confusion_matrix.png")
    save_per_class_f1(classes_table["f1"].to_numpy(), classes, folder / "per_class_f1.png")


def print_summary(report: dict, classes_table: pd.DataFrame) -> None:
    folds = ", ".join(f"{fold}: {metrics['f1_macro']:.4f}" for fold, metrics in report["per_fold"].items())
    weakest = classes_table.nsmallest(3, "f1")
    weak = ", ".join(f"{row['class']} {row['f1']:.3f}" for _, row in weakest.iterrows())
    log.info(
        "%s: CV macro-F1 %.4f, accuracy %.4f, log loss %.4f; per fold %s (mean %.4f ± %.4f); weakest classes %s",
        report["experiment"], report["cv"]["f1_macro"], report["cv"]["accuracy"], report["cv"]["log_loss"],
        folds, report["fold_f1_macro_mean"], report["fold_f1_macro_std"], weak,
    )


def score_submission(config: DictConfig, submission_path: str | None = None) -> dict:
    """Score a label submission against the solution file; print it beside the experiment's CV score."""
    comp = config.competition
    submission_path = Path(submission_path or Path(config.submission_dir) / f"{config.name}.csv")
    solution_path = Path(comp.root) / comp.solution_csv
    submission = read_table(submission_path, "submission", dtype=str)
    solution = read_table(solution_path, "solution file", dtype=str)

    id_column, target = comp.id_column, comp.target_column
    merged = solution.merge(submission, on=id_column, how="left", suffixes=("_true", "_pred"))
    predicted = merged.get(f"{target}_pred")
    if predicted is None or predicted.isna().any():
        raise PodiumError(f"{submission_path} lacks a {target!r} prediction for some ids of {solution_path}; run `make infer` first")

    truth = merged[f"{target}_true"]
    scores = {"f1_macro": float(f1_score(truth, predicted, labels=sorted(truth.unique()), average="macro", zero_division=0)), "accuracy": float(accuracy_score(truth, predicted))}

    report_path = configs.experiment_dir(config) / "report.json"
    cv = json.loads(report_path.read_text())["cv"]["f1_macro"] if report_path.is_file() else float("nan")
    (configs.experiment_dir(config) / "test_score.json").write_text(json.dumps({"submission": str(submission_path), **scores}, indent=2))
    log.info("%s: CV macro-F1 %.4f | test macro-F1 %.4f, accuracy %.4f | %s", config.name, cv, scores["f1_macro"], scores["accuracy"], submission_path)
    return scores
