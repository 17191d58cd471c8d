"""Gradient accumulation must give the same update as one large batch of the same samples."""

import pandas as pd
import pytest
import torch

from conftest import tiny_config
from podium.data import ImageDataset, load_train_table
from podium.engine import TrainState
from podium.loaders import EpochBatchSampler, train_loader
from podium.plots import schedule_curve
from podium.train import build_trainer, micro_batches_per_epoch
from podium.optim import updates_per_epoch
from podium.transforms import build_transforms


def train_one_epoch(config, rows: pd.DataFrame, classes: list):
    """Train one epoch from a fixed initialisation; return the trainer, its state and the epoch figures."""
    torch.manual_seed(0)
    per_epoch = updates_per_epoch(micro_batches_per_epoch(len(rows), config.data.batch_size), config.train.accumulate)
    trainer, (mean, std) = build_trainer(config, rows, classes, per_epoch)
    dataset = ImageDataset(rows["path"], rows["target"], build_transforms(config, mean, std, train=False))
    sampler = EpochBatchSampler(len(dataset), config.data.batch_size, config.seed)
    loader = train_loader(dataset, sampler, 0)
    batch_sizes = sampler.batch_sizes()

    state = TrainState()
    figures = trainer.train_one_epoch(loader, batch_sizes, state)
    return trainer, state, figures, batch_sizes


@pytest.mark.parametrize(
    "samples, micro_batch, accumulate, large_batch, expected_windows",
    [
        (40, 8, 4, 32, [32, 8]),         # 5 micro-batches: a full window, then a short one
        (20, 2, 4, 8, [8, 8, 4]),        # 10 micro-batches of 2: updates of 4, 4 and 2 micro-batches
        (21, 4, 2, 8, [8, 8, 5]),        # a last micro-batch of 5 (the single leftover joins it)
    ],
)
def test_accumulation_equals_large_batch(demo_root, tmp_path, samples, micro_batch, accumulate, large_batch, expected_windows):
    # test_convnext has no BatchNorm, and dropout is off, so only the batching can differ. SGD with a
    # constant rate makes each update proportional to its gradient, so a wrongly scaled window shows.
    base = ["model.name=test_convnext", "model.channels_last=false", "optim.name=sgd", "optim.lr=0.1", "schedule.name=constant", "schedule.warmup_updates=0"]
    small = tiny_config(demo_root, tmp_path, *base, f"data.batch_size={micro_batch}", f"train.accumulate={accumulate}")
    large = tiny_config(demo_root, tmp_path, *base, f"data.batch_size={large_batch}", "train.accumulate=1")
    table, classes = load_train_table(small)
    rows = table.head(samples).reset_index(drop=True)

    accumulated, accumulated_state, accumulated_figures, micro_sizes = train_one_epoch(small, rows, classes)
    single, single_state, single_figures, large_sizes = train_one_epoch(large, rows, classes)

    assert large_sizes == expected_windows
    assert accumulated_state.updates == len(expected_windows)
    assert single_state.updates == len(expected_windows)
    assert sum(micro_sizes) == samples
    for (name, value), reference in zip(accumulated.model.state_dict().items(), single.model.state_dict().values()):
        assert torch.allclose(value, reference, atol=1e-5), f"parameter {name} differs"
    assert accumulated_figures["train_loss"] == pytest.approx(single_figures["train_loss"], rel=1e-5)


def test_warmup_peaks_at_fourth_update(tmp_path):
    config = tiny_config(tmp_path, tmp_path, "train.accumulate=4", "schedule.warmup_updates=4", "train.epochs=3", "optim.lr=0.01")
    rates = schedule_curve(config, micro_batches=16)

    assert len(rates) == 12
    assert rates[:4] == pytest.approx([0.0025, 0.005, 0.0075, 0.01])
    assert max(rates) == pytest.approx(0.01)
    assert rates[4] < 0.01


def test_scheduler_steps_per_update(demo_root, tmp_path):
    # 16 micro-batches of 2 with accumulate 4: 4 updates, the 4th at the peak of a 4-update warmup.
    config = tiny_config(demo_root, tmp_path, "data.batch_size=2", "train.accumulate=4", "schedule.warmup_updates=4", "train.epochs=2", "optim.lr=0.01")
    table, classes = load_train_table(config)
    trainer, state, _, batch_sizes = train_one_epoch(config, table.head(32).reset_index(drop=True), classes)

    assert len(batch_sizes) == 16
    assert state.updates == 4
    assert trainer.schedule.current_lr() == pytest.approx(0.01)
