"""Loaders: reproducible shuffling and augmentations, and no batch of one sample."""

import pandas as pd
import torch

from conftest import tiny_config
from podium.data import ImageDataset, load_train_table
from podium.engine import autocast_dtype, cpu_has_bf16
from podium.folds import make_folds
from podium.loaders import EpochBatchSampler, epoch_batches, train_loader
from podium.train import train_fold
from podium.transforms import build_transforms

AUGMENT = "data.augment=[{name: Affine, rotate: [-30, 30], p: 1.0}, {name: RandomBrightnessContrast, p: 1.0}]"


def first_batches(config, rows, workers: int, epoch: int):
    dataset = ImageDataset(rows["path"], rows["target"], build_transforms(config, (0.5,) * 3, (0.5,) * 3, train=True))
    sampler = EpochBatchSampler(len(dataset), 8, config.seed)
    loader = train_loader(dataset, sampler, workers)
    sampler.set_epoch(epoch)
    return [images for images, _ in loader][:3]


def test_same_seed_same_augmented_batches(demo_root, tmp_path):
    config = tiny_config(demo_root, tmp_path, AUGMENT)
    rows = load_train_table(config)[0].head(40)
    first = first_batches(config, rows, workers=2, epoch=1)
    again = first_batches(config, rows, workers=2, epoch=1)
    for a, b in zip(first, again):
        assert torch.equal(a, b)


def test_epochs_draw_different_augmentations(demo_root, tmp_path):
    config = tiny_config(demo_root, tmp_path, AUGMENT)
    rows = load_train_table(config)[0].head(40)
    assert not torch.equal(first_batches(config, rows, 0, epoch=1)[0], first_batches(config, rows, 0, epoch=2)[0])


def test_samples_draw_different_augmentations(demo_root, tmp_path):
    # One image repeated: each sample's own seed must give it its own augmentation.
    config = tiny_config(demo_root, tmp_path, AUGMENT)
    rows = load_train_table(config)[0].head(1).sample(n=16, replace=True, random_state=0)
    batches = first_batches(config, rows, workers=2, epoch=1)
    assert not torch.equal(batches[0], batches[1])


def test_single_leftover_joins_previous_batch():
    sizes = [len(batch) for batch in epoch_batches(33, 8, torch.Generator().manual_seed(0))]
    assert sizes == [8, 8, 8, 9]
    assert [len(batch) for batch in epoch_batches(1, 8, torch.Generator())] == [1]


def test_batchnorm_model_with_leftover_of_one(demo_root, tmp_path):
    # Pick a batch size that leaves one training sample over; test_resnet has BatchNorm layers.
    settings = ["competition.train_csv=train_small.csv", "folds.n_folds=2"]
    folds = pd.read_csv(make_folds(tiny_config(demo_root, tmp_path, *settings)))
    train_rows = int((folds["fold"] != 0).sum())
    batch_size = max(size for size in range(2, train_rows) if train_rows % size == 1)

    best = train_fold(tiny_config(demo_root, tmp_path, *settings, f"data.batch_size={batch_size}"), fold=0)
    assert best["epoch"] == 1


def test_bf16_training_runs_on_cpu(demo_root, tmp_path):
    config = tiny_config(demo_root, tmp_path, "competition.train_csv=train_small.csv", "folds.n_folds=2", "train.precision=bf16")
    make_folds(config)
    best = train_fold(config, fold=0)
    assert best["valid_loss"] == best["valid_loss"]  # not NaN


def test_auto_precision_on_cpu():
    expected = torch.bfloat16 if cpu_has_bf16() else None
    assert autocast_dtype("auto", torch.device("cpu")) is expected


def test_worker_count_does_not_change_batches(demo_root, tmp_path):
    config = tiny_config(demo_root, tmp_path, AUGMENT)
    rows = load_train_table(config)[0].head(40)
    for a, b in zip(first_batches(config, rows, workers=0, epoch=3), first_batches(config, rows, workers=2, epoch=3)):
        assert torch.equal(a, b)


def test_persistent_workers_follow_epochs(demo_root, tmp_path):
    config = tiny_config(demo_root, tmp_path, AUGMENT)
    rows = load_train_table(config)[0].head(16)
    dataset = ImageDataset(rows["path"], rows["target"], build_transforms(config, (0.5,) * 3, (0.5,) * 3, train=True))
    sampler = EpochBatchSampler(len(dataset), 8, config.seed)
    loader = train_loader(dataset, sampler, 2)
    passes = []
    for epoch in (1, 2, 1):
        sampler.set_epoch(epoch)
        passes.append(torch.cat([images for images, _ in loader]))
    assert torch.equal(passes[0], passes[2])
    assert not torch.equal(passes[0], passes[1])


def test_ram_cache_gives_same_images(demo_root, tmp_path):
    config = tiny_config(demo_root, tmp_path, "data.image_size=24")
    rows = load_train_table(config)[0].head(12)
    transform = build_transforms(config, (0.5,) * 3, (0.5,) * 3, train=False)
    from_disk = ImageDataset(rows["path"], rows["target"], transform, 24)
    cached = ImageDataset(rows["path"], rows["target"], transform, 24)
    assert cached.fill_cache() == 12 * 24 * 24 * 3
    for index in range(12):
        assert torch.allclose(from_disk[index][0], cached[index][0], atol=1e-6)


def test_worker_count_does_not_change_training(demo_root, tmp_path):
    # Dropout draws from torch's global generator; loaders must not consume it differently.
    settings = ["competition.train_csv=train_small.csv", "folds.n_folds=2", "train.epochs=2", "model.drop_rate=0.3", AUGMENT]
    weights = []
    for workers in (0, 2):
        config = tiny_config(demo_root, tmp_path / str(workers), *settings, f"data.num_workers={workers}")
        make_folds(config)
        train_fold(config, fold=0)
        weights.append(torch.load(tmp_path / str(workers) / "outputs" / "test" / "fold0" / "last.pt", weights_only=True)["model"])
    for name, value in weights[0].items():
        assert torch.equal(value, weights[1][name]), name
