"""DataLoaders whose shuffling and augmentations depend only on the seed and the epoch.

A run resumed at epoch 3 therefore sees the same batches and the same augmented images
as a run that never stopped.
"""

import random

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader

from podium.data import ImageDataset


def epoch_batches(size: int, batch_size: int, generator: torch.Generator) -> list[list[int]]:
    """Shuffle `size` indices into batches; a last batch of one sample joins the batch before it.

    A batch of one sample cannot train a BatchNorm layer after global pooling, and dropping it
    would lose the sample, so it is merged instead.
    """
    order = torch.randperm(size, generator=generator).tolist()
    batches = [order[start:start + batch_size] for start in range(0, size, batch_size)]
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2].extend(batches.pop())
    return batches


def seed_worker(worker_id: int) -> None:
    """Give each worker its own, reproducible random streams, including albumentations'."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    cv2.setNumThreads(0)
    info = torch.utils.data.get_worker_info()
    info.dataset.transform.set_random_seed(seed)


def train_loader(dataset: ImageDataset, batch_size: int, num_workers: int, seed: int, epoch: int) -> tuple[DataLoader, list[int]]:
    """Return the loader for one training epoch and the size of each of its micro-batches."""
    generator = torch.Generator().manual_seed(seed * 1000 + epoch)
    batches = epoch_batches(len(dataset), batch_size, generator)
    if num_workers == 0:
        dataset.transform.set_random_seed(seed * 1000 + epoch)

    loader = DataLoader(
        dataset,
        batch_sampler=batches,
        num_workers=num_workers,
        worker_init_fn=seed_worker,
        generator=generator,
        pin_memory=torch.cuda.is_available(),
    )
    return loader, [len(batch) for batch in batches]


def eval_loader(dataset: ImageDataset, batch_size: int, num_workers: int) -> DataLoader:
    """Return a loader over every sample once, in order (no shuffle, no dropped batch)."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        drop_last=False,
        num_workers=num_workers,
        worker_init_fn=seed_worker,
        pin_memory=torch.cuda.is_available(),
    )
