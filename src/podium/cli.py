"""The `podium` command: parse arguments and call a stage. The Makefile calls this."""

import argparse
import logging
import sys

from podium.errors import PodiumError

log = logging.getLogger("podium")


def parse_folds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        folds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        folds = []
    if not folds:
        raise PodiumError(f"invalid FOLDS={text!r}: give fold numbers separated by commas, e.g. FOLDS=0,1")
    return folds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="podium", description="Kaggle-style image-classification pipeline.")
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        command = commands.add_parser(name, help=help_text, description=help_text)
        command.add_argument("--config", default="configs/demo.yaml", help="experiment YAML, merged over configs/default.yaml")
        command.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. optim.lr=1e-3")
        return command

    add("folds", "split the training table into folds (outputs/folds.csv)")
    train = add("train", "train one fold")
    train.add_argument("--fold", type=int, default=0, help="fold to validate on; the others train")
    train.add_argument("--resume", action="store_true", help="continue from the fold's last.pt")
    train_all = add("train-all", "train every fold in turn")
    train_all.add_argument("--resume", action="store_true", help="continue each fold from its last.pt, if any")
    train_all.add_argument("--parallel-folds", action="store_true", help="under torchrun: each process trains its own folds (rank, rank + world, ...) on its own GPU")
    add("lr-plot", "save the learning-rate schedule as a PNG without training")
    oof = add("oof", "out-of-fold report: CV score, per-class metrics, PNGs")
    oof.add_argument("--folds", help="comma-separated folds to report on (default: all)")
    infer = add("infer", "fold-ensemble + TTA predictions on the test set, written as a submission")
    infer.add_argument("--folds", help="comma-separated folds to ensemble (default: all)")
    score = add("score", "score a submission against the solution file")
    score.add_argument("--submission", help="submission CSV (default: submissions/<name>.csv)")
    add("baseline", "train scikit-learn's SVC on the same folds and print its CV macro-F1")
    add("leaderboard", "print every experiment under output_dir, sorted by CV macro-F1")
    pseudo = add("pseudo", "pseudo-label unlabeled images with a finished experiment and retrain every fold")
    pseudo.add_argument("--experiment", help="finished experiment under output_dir to start from (default: the config's name)")
    return parser


def run(args: argparse.Namespace) -> None:
    """Load the config and call the stage; stages import torch and timm, so each loads on demand."""
    from omegaconf import OmegaConf

    from podium import config as configs
    from podium.config import load_config

    config = load_config(args.config, args.overrides)
    if args.command == "pseudo" and args.experiment:
        saved = configs.fold_dir(OmegaConf.merge(config, {"name": args.experiment}), 0) / "config.yaml"
        if not saved.is_file():
            raise PodiumError(f"experiment {args.experiment!r} has no {saved}; train it first (make train-all)")
        config = load_config(saved, args.overrides)
    if args.command == "folds":
        from podium.folds import make_folds
        make_folds(config)
    elif args.command == "train":
        from podium.train import train_fold
        train_fold(config, args.fold, resume_run=args.resume)
    elif args.command == "train-all":
        from podium.train import train_all
        train_all(config, resume_run=args.resume, parallel_folds=args.parallel_folds)
    elif args.command == "lr-plot":
        from podium.plots import save_lr_plot
        save_lr_plot(config)
    elif args.command == "oof":
        from podium.report import oof_report
        oof_report(config, parse_folds(args.folds))
    elif args.command == "infer":
        from podium.infer import make_submission
        make_submission(config, parse_folds(args.folds))
    elif args.command == "score":
        from podium.report import score_submission
        score_submission(config, args.submission)
    elif args.command == "baseline":
        from podium.baseline import svc_baseline
        svc_baseline(config)
    elif args.command == "pseudo":
        from podium.pseudo import run_pseudo
        run_pseudo(config)
    elif args.command == "leaderboard":
        from podium.leaderboard import leaderboard
        leaderboard(config.output_dir)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    try:
        run(args)
    except PodiumError as error:
        log.error("%s", error)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
