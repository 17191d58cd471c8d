"""torch.distributed helpers: podium runs under `torchrun` as is, and as a single process without it.

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; `setup` joins the process group from them.
Rank 0 alone writes files, logs and W&B runs; the other ranks wait at barriers.
"""

import logging
import os

import numpy as np
import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


def launched_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def setup() -> None:
    """Join the process group that torchrun describes: NCCL on GPUs, gloo on CPUs. A no-op for one process."""
    if launched_world_size() == 1 or dist.is_initialized() or os.environ.get("PODIUM_PARALLEL_FOLDS") == "1":
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank())
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")
    if not is_main():
        logging.getLogger("podium").setLevel(logging.WARNING)
    log.info("joined a process group of %d processes (backend %s)", world_size(), dist.get_backend())


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if active():
        dist.barrier()


def gather_shards(local: np.ndarray, size: int) -> np.ndarray:
    """Reassemble a per-row array whose rows were sharded as rows[rank::world] on every rank."""
    if not active():
        return local
    shards = [None] * world_size()
    dist.all_gather_object(shards, local)
    merged = np.empty((size, *shards[0].shape[1:]), dtype=shards[0].dtype)
    for index, shard in enumerate(shards):
        merged[index::len(shards)] = shard
    return merged


def all_reduce_sum(value: torch.Tensor) -> torch.Tensor:
    if active():
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def wrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """Wrap the model in DistributedDataParallel when a process group is active."""
    if not active():
        return model
    device_ids = [local_rank()] if torch.cuda.is_available() else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def bare_model(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
