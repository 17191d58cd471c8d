"""Benchmark 4: `make infer` images per second against a bare inference loop with the same TTA views.

Five fold checkpoints of resnet18 at 64 px are written first: each is podium's checkpoint of
a freshly built fold (prepare_fold, no training), since speed does not depend on the weights.
Both sides predict the demo's test images with the views identity and hflip, bf16 autocast
where the CPU has bf16 instructions, channels_last, batch infer.batch_size and the config's
loader workers:

  end to end   podium.infer.make_submission, which `make infer` runs, called in this process,
               so the interpreter start and imports are left out. The bare script loads the
               same checkpoints, predicts with one DataLoader and writes the CSV.
  prediction   podium.infer.ensemble_probs, which builds one loader for all models that take
               the same input and passes each batch through every model, against the bare
               loop. Both sides load their models beforehand. The bare loop also starts its
               loader workers beforehand, while ensemble_probs starts its own.

One more timing runs the bare loop once per model, decoding the images each time, to show
what one shared loader saves.

The sides alternate, after one warm-up round; a ratio is the median over rounds.
"""

import argparse
import sys
from pathlib import Path

import pandas as pd
import timm
import torch
from torch.utils.data import DataLoader

import bare
import common

TARGET = 0.95
VIEWS = ["identity", "hflip"]


def write_fold_checkpoints(config) -> list:
    """Write best.pt for every fold from podium's freshly built, untrained fold runs, and return the classes."""
    from podium.checkpoint import save_checkpoint
    from podium.tracking import Tracker
    from podium.train import checkpoint_state, prepare_fold

    for fold in range(config.folds.n_folds):
        folder = Path(config.output_dir) / config.name / f"fold{fold}"
        run = prepare_fold(config, fold, folder, False, Tracker(config, "train", "bench", enabled=False))
        run.state.best, run.state.best_epoch = 0.0, 1
        save_checkpoint(checkpoint_state(run.trainer, run.state, config, run.classes), folder / "best.pt")
        classes = run.classes
        del run
    return classes


def bare_models(config, classes: list) -> list:
    models = []
    for fold in range(config.folds.n_folds):
        checkpoint = torch.load(Path(config.output_dir) / config.name / f"fold{fold}" / "best.pt", map_location="cpu", weights_only=True)
        model = timm.create_model(config.model.name, pretrained=False, num_classes=len(classes))
        model.load_state_dict(checkpoint["model"])
        models.append(model.to(memory_format=torch.channels_last).eval())
    return models


def bare_test_set(config):
    """Return the test ids in template order and podium's ImageDataset over their images."""
    from podium.data import ImageDataset
    from podium.model import normalization
    from podium.transforms import build_transforms

    root = Path(config.competition.root)
    ids = pd.read_csv(root / config.competition.sample_submission, dtype=str)[config.competition.id_column]
    paths = [str(root / config.competition.test_images / config.competition.image_path.format(id=image_id)) for image_id in ids]
    mean, std = normalization(timm.create_model(config.model.name, pretrained=False))
    return ids, ImageDataset(paths, None, build_transforms(config, mean, std, train=False), config.data.image_size)


def bare_loader(dataset, config, persistent: bool) -> DataLoader:
    workers = config.data.num_workers
    options = {"worker_init_fn": bare.single_thread_opencv, "persistent_workers": persistent} if workers > 0 else {}
    return DataLoader(dataset, batch_size=config.infer.batch_size, shuffle=False, num_workers=workers, **options)


def bare_submission(config, classes: list, bf16: bool, path: Path) -> None:
    """Load the fold checkpoints, predict the test set with TTA and write id,label rows: the hand-written `make infer`."""
    models = bare_models(config, classes)
    ids, dataset = bare_test_set(config)
    probs = bare.predict(models, bare_loader(dataset, config, persistent=False), VIEWS, channels_last=True, bf16=bf16)
    labels = [classes[index] for index in probs.argmax(dim=1).tolist()]
    pd.DataFrame({config.competition.id_column: ids, config.competition.target_column: labels}).to_csv(path, index=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (default 3)")
    args = parser.parse_args()
    common.quiet_logs()

    from podium.data import load_test_table
    from podium.engine import cpu_has_bf16, pick_device
    from podium.infer import ensemble_probs, load_fold_model, make_submission

    print(f"== 4. inference throughput: {common.cpu_description()}, {common.load_note()}")
    with common.workspace("infer") as work:
        config = common.bench_config(work, f"infer.tta=[{','.join(VIEWS)}]")
        common.write_folds(config)
        classes = write_fold_checkpoints(config)
        bf16 = cpu_has_bf16()
        _, table = load_test_table(config)
        images = len(table)
        common.info(f"{images} test images, {config.folds.n_folds} fold models, views {VIEWS}, batch {config.infer.batch_size}, {config.data.num_workers} workers")

        # Prediction only: both sides load their models beforehand, and the bare loop also starts its loader workers.
        device = pick_device()
        fold_models = [load_fold_model(config, fold, device) for fold in range(config.folds.n_folds)]
        paths = table["path"].tolist()
        plain_models = bare_models(config, classes)
        plain_loader = bare_loader(bare_test_set(config)[1], config, persistent=True)

        sides = {
            "podium make_submission": lambda: make_submission(config),
            "bare script": lambda: bare_submission(config, classes, bf16, work / "bare.csv"),
            "podium ensemble_probs": lambda: ensemble_probs(config, fold_models, paths, device),
            "bare loop": lambda: bare.predict(plain_models, plain_loader, VIEWS, channels_last=True, bf16=bf16),
            # Diagnosis only: the cost of decoding the images once per model instead of once.
            "bare loop, one pass over the images per model": lambda: [bare.predict([model], plain_loader, VIEWS, channels_last=True, bf16=bf16) for model in plain_models],
        }
        names = list(sides)
        seconds = {name: [] for name in names}
        for round_index in range(args.rounds + 1):
            for name in common.rotated(names, round_index):
                with common.Stopwatch() as watch:
                    sides[name]()
                if round_index > 0:  # round 0 warms up kernels, workers and the page cache
                    seconds[name].append(watch.seconds)

        for name in names:
            rates = [images / value for value in seconds[name]]
            common.info(f"{name}: median {common.median(rates):.0f} img/s (per round {', '.join(f'{rate:.0f}' for rate in rates)})")
        for ours, theirs, label in [("podium make_submission", "bare script", "end to end"), ("podium ensemble_probs", "bare loop", "prediction only")]:
            ratios = [their_seconds / our_seconds for our_seconds, their_seconds in zip(seconds[ours], seconds[theirs])]
            common.result(
                f"infer: podium / bare, {label}", common.median(ratios), ">=", TARGET, "x",
                detail="per round " + ", ".join(f"{ratio:.3f}" for ratio in ratios),
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
