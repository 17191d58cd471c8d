"""PNG figures: the learning-rate schedule, confusion matrices and per-class F1."""

import logging
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # no display on training machines

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from podium import config as configs  # noqa: E402
from podium.optim import LRSchedule, updates_per_epoch  # noqa: E402

log = logging.getLogger(__name__)


def schedule_curve(config: DictConfig, micro_batches: int) -> list[float]:
    """Return the learning rate of every optimizer update of a run, without a model or data."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=config.optim.lr)
    per_epoch = updates_per_epoch(micro_batches, config.train.accumulate)
    schedule = LRSchedule(optimizer, config, per_epoch, mode="max")

    rates = []
    for update in range(1, per_epoch * config.train.epochs + 1):
        schedule.before_update(update)
        rates.append(schedule.current_lr())
    return rates


def save_lr_plot(config: DictConfig, micro_batches: int | None = None) -> Path:
    """Plot the schedule for the training set of one fold, before any training."""
    if micro_batches is None:
        from podium.data import load_train_table

        table, _ = load_train_table(config)
        train_rows = round(len(table) * (config.folds.n_folds - 1) / config.folds.n_folds)
        micro_batches = -(-train_rows // config.data.batch_size)

    rates = schedule_curve(config, micro_batches)
    figure, axis = plt.subplots(figsize=(7, 3.5))
    axis.plot(range(1, len(rates) + 1), rates)
    axis.set_xlabel("optimizer update")
    axis.set_ylabel("learning rate")
    title = f"{config.name}: {config.schedule.name}, {len(rates)} updates"
    if config.schedule.name == "plateau":
        title += " (warmup only; reductions depend on validation)"
    axis.set_title(title)
    axis.grid(alpha=0.3)

    path = configs.experiment_dir(config) / "lr_schedule.png"
    save_figure(figure, path)
    log.info("saved the learning-rate schedule to %s: peak %.2e, last %.2e", path, max(rates), rates[-1])
    return path


def save_confusion_matrices(matrix: np.ndarray, classes: list, path: Path) -> None:
    """Plot counts and row-normalized rates side by side."""
    normalized = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(6, 0.5 * len(classes) + 3)
    figure, axes = plt.subplots(1, 2, figsize=(2 * size, size))
    for axis, values, title, fmt in ((axes[0], matrix, "counts", "d"), (axes[1], normalized, "row-normalized (recall)", ".2f")):
        axis.imshow(values, cmap="Blues")
        axis.set_title(title)
        axis.set_xlabel("predicted")
        axis.set_ylabel("true")
        axis.set_xticks(range(len(classes)), [str(name) for name in classes], rotation=90)
        axis.set_yticks(range(len(classes)), [str(name) for name in classes])
        if len(classes) <= 30:
            threshold = values.max() / 2
            for (row, column), value in np.ndenumerate(values):
                axis.text(column, row, format(value, fmt), ha="center", va="center", fontsize=7, color="white" if value > threshold else "black")
    save_figure(figure, path)


def save_per_class_f1(f1: np.ndarray, classes: list, path: Path) -> None:
    order = np.argsort(f1)
    figure, axis = plt.subplots(figsize=(7, max(3, 0.3 * len(classes) + 1)))
    axis.barh([str(classes[i]) for i in order], f1[order])
    axis.set_xlim(0, 1)
    axis.set_xlabel("F1")
    axis.set_title("out-of-fold F1 per class")
    save_figure(figure, path)


def save_confident_errors(oof, table, classes: list, path: Path, count: int = 16) -> None:
    """Show the validation images predicted wrong with the highest confidence, with true and predicted labels."""
    from podium.data import read_image

    probabilities = oof[[f"prob_{name}" for name in classes]].to_numpy()
    wrong = oof.assign(confidence=probabilities.max(axis=1))
    wrong = wrong[wrong["label"].astype(str) != wrong["pred"].astype(str)].nlargest(count, "confidence")
    paths = dict(zip(table["id"], table["path"]))

    columns = 4
    rows = max(1, -(-len(wrong) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.9 * rows), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, (_, row) in zip(axes.flat, wrong.iterrows()):
        axis.imshow(read_image(paths[row["id"]]))
        axis.set_title(f"true {row['label']}\npred {row['pred']} ({row['confidence']:.2f})", fontsize=8)
    figure.suptitle(f"most confident out-of-fold errors ({len(wrong)} shown)" if len(wrong) else "no out-of-fold errors")
    save_figure(figure, path)


def save_training_curves(history: list[dict], path: Path, title: str) -> None:
    """Plot train and valid loss, valid macro-F1 and the learning rate per epoch."""
    epochs = [record["epoch"] for record in history]
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    axes[0].plot(epochs, [record["train_loss"] for record in history], marker="o", label="train")
    axes[0].plot(epochs, [record["valid_loss"] for record in history], marker="o", label="valid")
    axes[0].set_title("loss")
    axes[0].legend()
    axes[1].plot(epochs, [record["valid_f1_macro"] for record in history], marker="o", color="tab:green")
    axes[1].set_title("valid macro-F1")
    axes[2].plot(epochs, [record["lr"] for record in history], marker="o", color="tab:gray")
    axes[2].set_title("learning rate (end of epoch)")
    for axis in axes:
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
    figure.suptitle(title)
    save_figure(figure, path)


def save_figure(figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
