"""DataLoaders whose shuffling and augmentations depend only on the seed, the epoch and the sample.

Each sample's augmentation is seeded from (seed, epoch, index). A run resumed at epoch 3 gets
the same batches and augmented images as a run that never stopped, with any number of
workers, and persistent workers need no reseeding between epochs.
"""

import random

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from podium.data import ImageDataset


def epoch_batches(size: int, batch_size: int, generator: torch.Generator, world: int = 1) -> list[list[int]]:
    """Shuffle `size` indices into global batches of `batch_size` x `world` samples.

    A last batch too small to give every process two samples joins the batch before it: a
    batch of one sample cannot train a BatchNorm layer after global pooling, and dropping
    it would lose the samples.
    """
    order = torch.randperm(size, generator=generator).tolist()
    step = batch_size * world
    batches = [order[start:start + step] for start in range(0, size, step)]
    if len(batches) > 1 and len(batches[-1]) < 2 * world:
        batches[-2].extend(batches.pop())
    return batches


class EpochBatchSampler(Sampler):
    """Yield this process's share of each epoch's batches as (epoch, index) pairs.

    Every process shuffles the same global batches and takes every world-th sample of each,
    so all processes together see each sample once per epoch, with no padding. Call
    `set_epoch` before iterating.
    """

    def __init__(self, size: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world = rank, world
        self.epoch = 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def global_batches(self) -> list[list[int]]:
        generator = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
        return epoch_batches(self.size, self.batch_size, generator, self.world)

    def batches(self) -> list[list[int]]:
        return [batch[self.rank::self.world] for batch in self.global_batches()]

    def batch_sizes(self) -> list[int]:
        return [len(batch) for batch in self.batches()]

    def window_samples(self, accumulate: int) -> list[int]:
        """Return the sample count of each accumulation window over all processes."""
        sizes = [len(batch) for batch in self.global_batches()]
        return [sum(sizes[start:start + accumulate]) for start in range(0, len(sizes), accumulate)]

    def __iter__(self):
        for batch in self.batches():
            yield [(self.epoch, index) for index in batch]

    def __len__(self) -> int:
        return len(self.global_batches())


def seed_worker(worker_id: int) -> None:
    """Seed NumPy and Python in each worker, and keep OpenCV to one thread per worker."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    cv2.setNumThreads(0)


def loader_options(num_workers: int, seed: int = 0) -> dict:
    # A loader of its own generator draws its worker seeds from it, not from torch's global
    # generator, so dropout draws the same numbers whatever the worker count or persistence.
    options = {
        "num_workers": num_workers,
        "worker_init_fn": seed_worker,
        "pin_memory": torch.cuda.is_available(),
        "generator": torch.Generator().manual_seed(seed),
    }
    if num_workers > 0:
        options.update(persistent_workers=True, prefetch_factor=4)
    return options


def train_loader(dataset: ImageDataset, sampler: EpochBatchSampler, num_workers: int) -> DataLoader:
    """Return the training loader; set the sampler's epoch before each pass."""
    dataset.seed = sampler.seed
    return DataLoader(dataset, batch_sampler=sampler, **loader_options(num_workers, sampler.seed))


def eval_loader(dataset: ImageDataset, batch_size: int, num_workers: int) -> DataLoader:
    """Return a loader over every sample once, in order (no shuffle, no dropped batch)."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, drop_last=False, **loader_options(num_workers))
