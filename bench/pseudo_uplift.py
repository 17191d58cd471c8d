"""Does pseudo-labeling help when labels are scarce? A low-label version of the demo competition.

About 15% of the demo's training groups keep their labels; the other training images become an
unlabeled folder. The script trains the base experiment, runs one pseudo-label round over the
unlabeled folder and the test set, and prints the hidden-test macro-F1 before and after, the CV
scores, and how accurate the pseudo-labels were.

    python bench/pseudo_uplift.py            # from the repository root, after `make demo-data`
"""

import argparse
import logging
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
from sklearn.model_selection import GroupShuffleSplit

from podium.config import load_config
from podium.folds import make_folds
from podium.infer import make_submission
from podium.pseudo import run_pseudo
from podium.report import oof_report, score_submission
from podium.train import train_all

REPO = Path(__file__).resolve().parents[1]


def build_low_label_competition(source: Path, target: Path, labeled_share: float, seed: int) -> pd.DataFrame:
    """Copy the demo into `target`, keeping labels for `labeled_share` of the groups; return the hidden labels."""
    train = pd.read_csv(source / "train.csv")
    split = GroupShuffleSplit(n_splits=1, train_size=labeled_share, random_state=seed)
    labeled_index, unlabeled_index = next(split.split(train, groups=train["group"]))
    labeled, unlabeled = train.iloc[labeled_index], train.iloc[unlabeled_index]

    for folder in ("test_images",):
        shutil.copytree(source / folder, target / folder)
    (target / "train_images").mkdir()
    (target / "unlabeled").mkdir()
    for image_id in labeled["image_id"]:
        shutil.copy(source / "train_images" / f"{image_id}.png", target / "train_images")
    for image_id in unlabeled["image_id"]:
        shutil.copy(source / "train_images" / f"{image_id}.png", target / "unlabeled")
    labeled.to_csv(target / "train.csv", index=False)
    for name in ("sample_submission.csv", "demo_solution.csv"):
        shutil.copy(source / name, target / name)
    return unlabeled


def pseudo_label_accuracy(experiment: Path, hidden: pd.DataFrame, solution: pd.DataFrame) -> str:
    truth = {f"unlabeled/{row.image_id}": row.label for row in hidden.itertuples()}
    truth.update(dict(zip(solution["image_id"], solution["label"])))
    lines = []
    for path in sorted(experiment.glob("pseudo_labels_fold*.csv")):
        rows = pd.read_csv(path, dtype={"id": str})
        correct = (rows["label"] == rows["id"].map(truth)).mean() if len(rows) else float("nan")
        lines.append(f"{path.stem}: {len(rows)} rows, {correct:.1%} correct")
    return "; ".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labeled-share", type=float, default=0.15, help="share of training groups that keep their labels")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=0.9, help="pseudo.threshold")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        root = work / "input"
        root.mkdir()
        hidden = build_low_label_competition(REPO / "input", root, args.labeled_share, seed=0)
        overrides = [
            f"competition.root={root}", f"output_dir={work / 'outputs'}", f"folds.file={work / 'outputs' / 'folds.csv'}",
            f"submission_dir={work / 'submissions'}", f"folds.n_folds={args.folds}", f"train.epochs={args.epochs}",
            "tracking.wandb=false", "name=lowlabel", f"pseudo.threshold={args.threshold}", "pseudo.unlabeled_images=unlabeled",
        ]
        config = load_config(REPO / "configs" / "demo.yaml", overrides)

        make_folds(config)
        train_all(config)
        base_cv = oof_report(config)["cv"]["f1_macro"]
        make_submission(config)
        base_test = score_submission(config)["f1_macro"]

        final = run_pseudo(config)
        pseudo_cv = oof_report(final)["cv"]["f1_macro"]
        pseudo_test = score_submission(final)["f1_macro"]
        accuracy = pseudo_label_accuracy(work / "outputs" / final.name, hidden, pd.read_csv(root / "demo_solution.csv"))

        labeled = len(pd.read_csv(root / "train.csv"))
        print(f"labeled rows: {labeled}, unlabeled training images: {len(hidden)}, test images: {len(pd.read_csv(root / 'sample_submission.csv'))}")
        print(f"base   : CV macro-F1 {base_cv:.4f} | hidden-test macro-F1 {base_test:.4f}")
        print(f"pseudo : CV macro-F1 {pseudo_cv:.4f} | hidden-test macro-F1 {pseudo_test:.4f} (threshold {args.threshold})")
        print(f"test macro-F1 change: {pseudo_test - base_test:+.4f}")
        print(f"pseudo-labels: {accuracy}")
        print(f"wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
