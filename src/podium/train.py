"""The training stage: train one fold, keep the best checkpoint, write its out-of-fold predictions."""

import contextlib
import ctypes
import gc
import json
import logging
import os
import sys
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig

from podium import config as configs
from podium import distributed
from podium.checkpoint import load_checkpoint, remove_partial_writes, rng_state, save_checkpoint, set_rng_state, unwrap_state_dict
from podium.data import ImageDataset, check_images, load_train_table, read_folds
from podium.engine import Trainer, TrainState, autocast_dtype, pick_device, predict
from podium.errors import PodiumError
from podium.loaders import EpochBatchSampler, eval_loader, train_loader
from podium.losses import PseudoLabelLoss, build_loss, encode_targets
from podium.metrics import classification_metrics, is_improvement, monitor_mode
from podium.model import create_model, is_convolutional, normalization
from podium.optim import LRSchedule, create_optimizer, updates_per_epoch
from podium.plots import save_training_curves
from podium.tracking import Tracker
from podium.transforms import build_transforms

log = logging.getLogger(__name__)


@contextmanager
def log_to_file(path: Path):
    """Copy podium's log records to `path` while the block runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("podium")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()


def split_fold(config: DictConfig, fold: int) -> tuple[pd.DataFrame, pd.DataFrame, list]:
    """Return the training rows (every other fold), the validation rows (this fold) and the classes."""
    table, classes = load_train_table(config)
    folds = read_folds(config, table)
    n_folds = config.folds.n_folds
    if not 0 <= fold < n_folds:
        raise PodiumError(f"FOLD={fold} is out of range: folds.csv has folds 0 to {n_folds - 1}")

    train_rows = table[folds != fold].reset_index(drop=True)
    valid_rows = table[folds == fold].reset_index(drop=True)
    assert not set(train_rows["id"]) & set(valid_rows["id"]), "a validation id is in the training rows"
    return train_rows, valid_rows, classes


def checkpoint_state(trainer: Trainer, state: TrainState, config: DictConfig, classes: list) -> dict:
    return {
        "model": unwrap_state_dict(distributed.bare_model(trainer.model).state_dict()),
        "optimizer": trainer.optimizer.state_dict(),
        "schedule": trainer.schedule.state_dict(),
        "scaler": trainer.scaler.state_dict(),
        "train_state": asdict(state),
        "rng": rng_state(),
        "classes": list(classes),
        "experiment": config.name,
        "config": configs.to_plain(config),
    }


def resume(trainer: Trainer, path: Path, config: DictConfig, classes: list) -> TrainState:
    """Restore model, optimizer, schedule, scaler, counters and random states from last.pt."""
    checkpoint = load_checkpoint(path)
    if checkpoint.get("classes") != list(classes) or checkpoint.get("experiment") != config.name:
        raise PodiumError(
            f"{path} belongs to experiment {checkpoint.get('experiment')!r} with classes {checkpoint.get('classes')}, "
            f"not {config.name!r} with {classes}. Resume with the config it was trained with, or delete the file."
        )
    distributed.bare_model(trainer.model).load_state_dict(unwrap_state_dict(checkpoint["model"]))
    trainer.optimizer.load_state_dict(checkpoint["optimizer"])
    trainer.schedule.load_state_dict(checkpoint["schedule"])
    trainer.scaler.load_state_dict(checkpoint["scaler"])
    set_rng_state(checkpoint["rng"])
    state = TrainState(**checkpoint["train_state"])
    log.info("resumed from %s at epoch %d, update %d, best %s %.4f", path, state.epoch, state.updates, config.train.monitor, state.best if state.best is not None else float("nan"))
    return state


def write_oof(path: Path, rows: pd.DataFrame, probs: np.ndarray, classes: list, fold: int) -> None:
    """Write id, fold, true label, predicted label and one probability column per class."""
    oof = pd.DataFrame({"id": rows["id"], "fold": fold, "label": rows["label"], "pred": [classes[i] for i in probs.argmax(1)]})
    probabilities = pd.DataFrame(probs, columns=[f"prob_{name}" for name in classes])
    pd.concat([oof, probabilities], axis=1).to_csv(path, index=False)


def build_trainer(config: DictConfig, train_rows: pd.DataFrame, classes: list, per_epoch: int) -> tuple[Trainer, tuple]:
    device = pick_device()
    model = create_model(config, len(classes))
    if config.train.sync_batchnorm and distributed.active():
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    channels_last = config.model.channels_last and is_convolutional(model)
    model = model.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    if config.model.compile:
        model.compile()  # in place, so state_dict keys keep their names
    mean_std = normalization(model)

    dtype = autocast_dtype(config.train.precision, device)
    mode = monitor_mode(config.train.monitor, config.train.mode)
    optimizer = create_optimizer(config, model)
    trainer = Trainer(
        model=distributed.wrap_model(model),
        loss_fn=build_loss(config, train_rows["target"].to_numpy(), len(classes)).to(device),
        optimizer=optimizer,
        schedule=LRSchedule(optimizer, config, per_epoch, mode),
        scaler=torch.amp.GradScaler(device.type, enabled=dtype is torch.float16),
        device=device,
        dtype=dtype,
        accumulate=config.train.accumulate,
        grad_clip=config.train.grad_clip,
        channels_last=channels_last,
        skip_nonfinite=config.train.skip_nonfinite,
        world_size=distributed.world_size(),
    )
    return trainer, mean_std


def with_pseudo_rows(train_rows: pd.DataFrame, valid_rows: pd.DataFrame, pseudo_rows: pd.DataFrame, num_classes: int) -> tuple[list[str], np.ndarray]:
    """Return the paths and encoded targets of the labeled training rows followed by the pseudo rows.

    A pseudo row whose image is one of the fold's validation images is rejected, so validation
    data never enters training.
    """
    leaked = sorted(set(pseudo_rows["path"]) & set(valid_rows["path"]))
    if leaked:
        raise PodiumError(f"{len(leaked)} pseudo-labeled images are validation images of this fold, e.g. {leaked[:10]}. Remove them from pseudo.unlabeled_images")

    labeled = encode_targets(np.eye(num_classes)[train_rows["target"].to_numpy()], weight=1.0, soft=False)
    if pseudo_rows.empty:
        return train_rows["path"].tolist(), labeled
    pseudo = encode_targets(np.stack(pseudo_rows["target_probs"].to_numpy()), weight=pseudo_rows["weight"].to_numpy(), soft=pseudo_rows["soft"].to_numpy())
    return train_rows["path"].tolist() + pseudo_rows["path"].tolist(), np.concatenate([labeled, pseudo])


def micro_batches_per_epoch(samples: int, batch_size: int, world: int = 1) -> int:
    """Count batches as loaders.epoch_batches makes them: a last batch under two samples per process joins the one before."""
    step = batch_size * world
    count = -(-samples // step)
    last = samples - (count - 1) * step
    return count - 1 if count > 1 and last < 2 * world else count


def train_fold(config, fold: int = 0, resume_run: bool = False, overrides=(), pseudo_rows: pd.DataFrame | None = None) -> dict:
    """Train fold `fold` of an experiment and return its best validation metrics.

    `config` is a YAML path, a dict of overrides or a loaded config. The same function runs
    behind `make train`, so a notebook gets the identical run. `pseudo_rows` (from the pseudo
    stage) join the training part of the fold only, never its validation.
    """
    config = configs.from_any(config, overrides)
    n_folds = config.folds.n_folds
    if not 0 <= fold < n_folds:
        raise PodiumError(f"FOLD={fold} is out of range: folds.n_folds is {n_folds}, so folds are 0 to {n_folds - 1}")
    distributed.setup()
    folder = configs.fold_dir(config, fold)
    job_type = "train" if pseudo_rows is None else "pseudo"
    with log_to_file(folder / "train.log") if distributed.is_main() else contextlib.nullcontext():
        tracker = Tracker(config, job_type=job_type, name=f"{config.name}-fold{fold}", enabled=distributed.is_main())
        try:
            return prepare_fold(config, fold, folder, resume_run, tracker, pseudo_rows).train()
        finally:
            tracker.finish()
            release_memory()


def release_memory() -> None:
    """Collect the finished fold's reference cycles and return the heap memory that glibc keeps to the system.

    glibc's malloc keeps freed blocks for reuse, and over the folds of one process the kept
    memory grows, with each fold's peak on top of it.
    """
    gc.collect()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # a C library other than glibc may lack both
            ctypes.CDLL("libc.so.6").malloc_trim(0)


@dataclass
class FoldRun:
    """One fold's training run: its data, trainer, counters and tracker."""

    config: DictConfig
    fold: int
    folder: Path
    trainer: Trainer
    state: TrainState
    train_batches: torch.utils.data.DataLoader
    sampler: EpochBatchSampler
    valid_batches: torch.utils.data.DataLoader
    valid_rows: pd.DataFrame
    classes: list
    mode: str
    tracker: Tracker

    def run_epoch(self) -> bool:
        """Train and validate one epoch, write checkpoints, OOF and pictures; return True to stop early."""
        config, state, trainer = self.config, self.state, self.trainer
        epoch = state.epoch + 1
        self.sampler.set_epoch(epoch)
        windows = self.sampler.window_samples(config.train.accumulate)
        train_figures = trainer.train_one_epoch(self.train_batches, self.sampler.batch_sizes(), state, f"fold {self.fold} epoch {epoch}", windows)

        shard = predict(distributed.bare_model(trainer.model), self.valid_batches, trainer.device, trainer.dtype, channels_last=trainer.channels_last, description="valid")
        probs = distributed.gather_shards(shard, len(self.valid_rows))
        metrics = {f"valid_{name}": value for name, value in classification_metrics(self.valid_rows["target"].to_numpy(), probs).items()}
        metrics["valid_loss"] = metrics["valid_log_loss"]
        record = {"epoch": epoch, **train_figures, **metrics, "lr": trainer.schedule.current_lr(), "updates": state.updates}

        if config.train.monitor not in record:
            raise PodiumError(f"train.monitor {config.train.monitor!r} is not a metric; choose one of {sorted(metrics)}")
        value = record[config.train.monitor]
        trainer.schedule.after_epoch(value, state.updates)

        improved = is_improvement(value, state.best, self.mode)
        state.epoch = epoch
        state.history.append(record)
        if improved:
            state.best, state.best_epoch, state.epochs_without_improvement = value, epoch, 0
        else:
            state.epochs_without_improvement += 1
        if distributed.is_main():
            self.write_epoch_outputs(record, improved, probs)
        distributed.barrier()

        patience = config.train.patience
        if patience is not None and state.epochs_without_improvement >= patience:
            log.info("fold %d: early stopping after epoch %d, no improvement of %s for %d epochs", self.fold, epoch, config.train.monitor, patience)
            return True
        return False

    def write_epoch_outputs(self, record: dict, improved: bool, probs: np.ndarray) -> None:
        """Write checkpoints, OOF, metrics.json and the training curves; log the epoch line and send it to W&B."""
        state, trainer = self.state, self.trainer
        if improved:
            write_oof(self.folder / "oof.csv", self.valid_rows, probs, self.classes, self.fold)
            save_checkpoint(checkpoint_state(trainer, state, self.config, self.classes), self.folder / "best.pt")
        save_checkpoint(checkpoint_state(trainer, state, self.config, self.classes), self.folder / "last.pt")

        summary = {"fold": self.fold, "monitor": self.config.train.monitor, "best": state.best, "best_epoch": state.best_epoch, "history": state.history}
        (self.folder / "metrics.json").write_text(json.dumps(summary, indent=2))
        save_training_curves(state.history, self.folder / "curves.png", f"{self.config.name} fold {self.fold}")
        self.tracker.log({f"epoch/{key}": value for key, value in record.items()}, step=state.updates)

        log.info(
            "fold %d epoch %d/%d: train_loss %.4f valid_loss %.4f valid_f1_macro %.4f accuracy %.4f lr %.2e %.1fs %.0f img/s data %.0f%%%s",
            self.fold, record["epoch"], self.config.train.epochs, record["train_loss"], record["valid_loss"], record["valid_f1_macro"],
            record["valid_accuracy"], record["lr"], record["seconds"], record["images_per_second"],
            100 * record["data_wait_share"], " *" if improved else "",
        )

    def train(self) -> dict:
        """Run the remaining epochs; return the metrics of the best epoch."""
        state = self.state
        try:
            while state.epoch < self.config.train.epochs:
                if self.run_epoch():
                    break
        except KeyboardInterrupt:
            if state.epoch == 0:
                log.error("fold %d interrupted during epoch 1, before any checkpoint; run make train FOLD=%d again", self.fold, self.fold)
            else:
                log.error(
                    "fold %d interrupted during epoch %d; %s holds epoch %d. Continue with: make train FOLD=%d RESUME=1",
                    self.fold, state.epoch + 1, self.folder / "last.pt", state.epoch, self.fold,
                )
            raise

        best = state.history[state.best_epoch - 1] if state.best_epoch else {}
        self.tracker.summary(best=state.best, best_epoch=state.best_epoch, monitor=self.config.train.monitor, **{f"best/{key}": value for key, value in best.items()})
        if self.config.tracking.log_checkpoints and state.best_epoch:
            self.tracker.log_checkpoint(f"{self.config.name}-fold{self.fold}", self.folder / "best.pt")
        log.info("fold %d finished: best %s %.4f at epoch %s; %s", self.fold, self.config.train.monitor, state.best or float("nan"), state.best_epoch, self.folder / "best.pt")
        return best


def prepare_fold(config: DictConfig, fold: int, folder: Path, resume_run: bool, tracker: Tracker, pseudo_rows: pd.DataFrame | None = None) -> FoldRun:
    """Check the data, build the model, optimizer and loaders, and restore last.pt when resuming."""
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    if config.train.deterministic:
        torch.use_deterministic_algorithms(True)

    train_rows, valid_rows, classes = split_fold(config, fold)
    if config.data.scan_images:
        check_images(pd.concat([train_rows, valid_rows])["path"].tolist(), "training")
    if distributed.is_main():
        configs.save_config(config, folder)

    train_paths, train_targets = train_rows["path"].tolist(), train_rows["target"].to_numpy()
    if pseudo_rows is not None:
        train_paths, train_targets = with_pseudo_rows(train_rows, valid_rows, pseudo_rows, len(classes))
        log.info("fold %d: %d pseudo-labeled rows join %d labeled training rows", fold, len(pseudo_rows), len(train_rows))

    rank, world = distributed.rank(), distributed.world_size()
    sampler = EpochBatchSampler(len(train_paths), config.data.batch_size, config.seed, rank, world)
    per_epoch = updates_per_epoch(len(sampler), config.train.accumulate)
    trainer, (mean, std) = build_trainer(config, train_rows, classes, per_epoch)
    trainer.on_updates = tracker.log_updates
    if pseudo_rows is not None:
        trainer.loss_fn = PseudoLabelLoss(trainer.loss_fn, len(classes))

    # Each process validates every world-th row; FoldRun gathers the shards back in order.
    size = config.data.image_size
    valid_shard = valid_rows.iloc[rank::world]
    train_set = ImageDataset(train_paths, train_targets, build_transforms(config, mean, std, train=True), size)
    valid_set = ImageDataset(valid_shard["path"], valid_shard["target"], build_transforms(config, mean, std, train=False), size)
    if config.data.cache == "ram":
        cached = train_set.fill_cache() + valid_set.fill_cache()
        log.info("fold %d: cached %d decoded %dx%d images in RAM (%.1f MB)", fold, len(train_set) + len(valid_set), size, size, cached / 2**20)
    train_batches = train_loader(train_set, sampler, config.data.num_workers)
    valid_batches = eval_loader(valid_set, config.infer.batch_size, config.data.num_workers)

    state = resume(trainer, folder / "last.pt", config, classes) if resume_run else TrainState()
    if distributed.is_main():
        clean_fold_folder(folder, resume_run)
    distributed.barrier()

    log.info(
        "fold %d: %d train and %d valid images, %s, %d updates per epoch (global batch %d = %d x %d processes, accumulate %d), precision %s, device %s",
        fold, len(train_paths), len(valid_rows), config.model.name, per_epoch, config.data.batch_size * world, config.data.batch_size, world,
        config.train.accumulate, str(trainer.dtype).removeprefix("torch.") if trainer.dtype else "fp32", trainer.device,
    )
    mode = monitor_mode(config.train.monitor, config.train.mode)
    return FoldRun(config, fold, folder, trainer, state, train_batches, sampler, valid_batches, valid_rows, classes, mode, tracker)


def clean_fold_folder(folder: Path, resume_run: bool) -> None:
    """Remove unfinished checkpoint writes, and a fresh run's outputs of an earlier run."""
    for leftover in remove_partial_writes(folder):
        log.warning("removed %s, a checkpoint write that a killed run left unfinished", leftover)
    if not resume_run:
        for stale in ("best.pt", "last.pt", "oof.csv", "metrics.json", "curves.png"):
            (folder / stale).unlink(missing_ok=True)


def train_all(config, resume_run: bool = False, overrides=(), parallel_folds: bool = False) -> list[dict]:
    """Train every fold in turn; with `resume_run`, folds that have a last.pt continue from it.

    With `parallel_folds` under torchrun, each process trains folds rank, rank + world, ...
    on its own device, with no process group: the faster choice for small models.
    """
    config = configs.from_any(config, overrides)
    folds = list(range(config.folds.n_folds))
    if parallel_folds:
        os.environ["PODIUM_PARALLEL_FOLDS"] = "1"
        process, processes = int(os.environ.get("RANK", "0")), distributed.launched_world_size()
        folds = folds[process::processes]
        log.info("process %d of %d trains folds %s", process, processes, folds)

    results = []
    for fold in folds:
        resume_fold = resume_run and (configs.fold_dir(config, fold) / "last.pt").is_file()
        results.append(train_fold(config, fold, resume_run=resume_fold))

    scores = [result.get(config.train.monitor, float("nan")) for result in results]
    if distributed.is_main():
        log.info("%s: %s of folds %s: %s, mean %.4f", config.name, config.train.monitor, folds, [round(score, 4) for score in scores], float(np.mean(scores)))
    return results
