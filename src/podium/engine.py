"""The training epoch and the prediction loop, shared by training, inference and pseudo-labeling."""

import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from podium import distributed
from podium.errors import PodiumError
from podium.optim import LRSchedule
from podium.transforms import tta_views

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- device and precision

def pick_device() -> torch.device:
    """Return the GPU of this process (LOCAL_RANK under torchrun), or the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", distributed.local_rank())
    return torch.device("cpu")


def cpu_has_bf16() -> bool:
    """Return True when the CPU has native bfloat16 instructions (AVX512-BF16 or AMX)."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        return False
    flags = cpuinfo.read_text()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """Map train.precision to an autocast dtype, or None for full fp32."""
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_has_bf16() else None
    choices = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}
    if precision not in choices:
        raise PodiumError(f"unknown train.precision {precision!r}; choose auto, bf16, fp16 or fp32")
    if choices[precision] is torch.float16 and device.type != "cuda":
        raise PodiumError("train.precision fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
    return choices[precision]


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


# ---------------------------------------------------------------- training

@dataclass
class TrainState:
    """Counters that a checkpoint stores and a resumed run continues from."""

    epoch: int = 0            # completed epochs
    updates: int = 0          # completed optimizer updates
    best: float | None = None
    best_epoch: int | None = None
    epochs_without_improvement: int = 0
    skipped_updates: int = 0  # windows skipped for a non-finite loss (train.skip_nonfinite)
    history: list = field(default_factory=list)


def window_sample_counts(batch_sizes: Sequence[int], accumulate: int) -> list[int]:
    """Return the number of samples in each accumulation window; the last window may be shorter."""
    return [sum(batch_sizes[start:start + accumulate]) for start in range(0, len(batch_sizes), accumulate)]


@dataclass
class Trainer:
    """Everything one training step needs; built once per fold."""

    model: torch.nn.Module
    loss_fn: torch.nn.Module
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    scaler: torch.amp.GradScaler
    device: torch.device
    dtype: torch.dtype | None
    accumulate: int = 1
    grad_clip: float | None = None
    channels_last: bool = False
    skip_nonfinite: bool = False
    log_every: int = 10
    world_size: int = 1
    on_updates: Callable[[list[dict]], None] | None = None  # receives {update, train_loss, lr} records
    pending_updates: list = field(default_factory=list)

    def to_device(self, images: torch.Tensor) -> torch.Tensor:
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        return images.to(self.device, non_blocking=True, memory_format=memory_format)

    def train_one_epoch(self, loader, batch_sizes: Sequence[int], state: TrainState, description: str = "", window_samples: Sequence[int] | None = None) -> dict:
        """Run one epoch of micro-batches, stepping the optimizer once per accumulation window.

        Each micro-batch's summed per-sample loss is divided by the sample count of its whole
        window, so a window's gradient equals that of one batch of the same samples, the last
        and shorter window included. Under DDP, `window_samples` contains the windows' sample counts
        over all processes, and `batch_sizes` gives this process's micro-batches. Returns the mean
        per-sample loss over all processes and timing figures.
        """
        self.model.train()
        windows = window_samples or window_sample_counts(batch_sizes, self.accumulate)
        loss_sum = torch.zeros((), device=self.device)
        window_loss = torch.zeros((), device=self.device)
        samples = 0
        data_seconds = 0.0
        started = tick = time.perf_counter()

        progress = tqdm(loader, total=len(batch_sizes), desc=description, leave=False, dynamic_ncols=True, disable=None if distributed.is_main() else True)
        for step, (images, targets) in enumerate(progress):
            data_seconds += time.perf_counter() - tick
            images, targets = self.to_device(images), targets.to(self.device, non_blocking=True)
            window = step // self.accumulate
            window_ends = (step + 1) % self.accumulate == 0 or step + 1 == len(batch_sizes)

            # Under DDP only the window's last backward all-reduces the gradients.
            skip_sync = not window_ends and hasattr(self.model, "no_sync")
            with self.model.no_sync() if skip_sync else contextlib.nullcontext():
                with autocast(self.device, self.dtype):
                    logits = self.model(images)
                per_sample = self.loss_fn(logits, targets)
                # DDP averages gradients over processes, so each scales its sum by the world size.
                loss = per_sample.sum() * self.world_size / windows[window]
                self.scaler.scale(loss).backward()
            window_loss += per_sample.detach().sum()

            if window_ends:
                window_loss = distributed.all_reduce_sum(window_loss)
                if self.skip_nonfinite and not torch.isfinite(window_loss).item():
                    self.skip_update(state, step, description)
                else:
                    self.optimizer_step(state)
                    self.pending_updates.append((state.updates, step, window_loss / windows[window], self.schedule.current_lr()))
                    loss_sum += window_loss
                    samples += windows[window]
                window_loss = torch.zeros((), device=self.device)

            if step % self.log_every == 0 or step + 1 == len(batch_sizes):
                self.flush_updates(description)
                if samples:
                    progress.set_postfix(loss=f"{loss_sum.item() / samples:.4f}", lr=f"{self.schedule.current_lr():.2e}")
            tick = time.perf_counter()

        seconds = time.perf_counter() - started
        return {
            "train_loss": loss_sum.item() / samples if samples else math.nan,
            "seconds": seconds,
            "images_per_second": sum(windows) / seconds,
            "data_wait_share": data_seconds / seconds,
            "skipped_updates": state.skipped_updates,
        }

    def skip_update(self, state: "TrainState", step: int, description: str) -> None:
        """Drop the window's gradients after a non-finite loss (train.skip_nonfinite) and count the skip.

        Deciding before the update costs one host synchronisation per update, as GradScaler's fp16 check does.
        """
        self.optimizer.zero_grad(set_to_none=True)
        state.skipped_updates += 1
        log.warning("skipped a non-finite loss at %s, micro-batch %d (%d skipped so far)", description or "training", step + 1, state.skipped_updates)

    def flush_updates(self, description: str = "") -> None:
        """Hand the buffered per-update losses to the callback, one host synchronisation per log interval.

        A non-finite loss raises here, at most `log_every` micro-batches after its update and
        before the epoch ends, so no checkpoint of the diverged weights is written.
        """
        if not self.pending_updates:
            return
        losses = torch.stack([loss for _, _, loss, _ in self.pending_updates]).float().tolist()
        for (update, step, _, _), value in zip(self.pending_updates, losses):
            if not math.isfinite(value):
                raise PodiumError(
                    f"non-finite training loss ({value}) at {description or 'training'}, micro-batch {step + 1}, "
                    f"after {update - 1} updates. Lower optim.lr, set train.grad_clip, or set train.skip_nonfinite=true to skip such batches."
                )
        records = [{"update": update, "train_loss": value, "lr": lr} for (update, _, _, lr), value in zip(self.pending_updates, losses)]
        self.pending_updates.clear()
        if self.on_updates is not None:
            self.on_updates(records)

    def optimizer_step(self, state: TrainState) -> None:
        state.updates += 1
        self.schedule.before_update(state.updates)

        if self.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)


# ---------------------------------------------------------------- prediction

@torch.no_grad()
def predict(
    models: torch.nn.Module | Sequence[torch.nn.Module],
    loader,
    device: torch.device,
    dtype: torch.dtype | None = None,
    views: Sequence[str] = ("identity",),
    channels_last: bool = False,
    description: str = "predict",
) -> np.ndarray:
    """Return softmax probabilities (N, classes) for every sample, averaged over the models and the TTA views.

    Each batch is read once and passed through every model, so an ensemble costs one pass over the data.
    """
    models = [models] if isinstance(models, torch.nn.Module) else list(models)
    for model in models:
        model.eval()
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    batches = []
    for images, _ in tqdm(loader, desc=description, leave=False, dynamic_ncols=True, disable=None):
        images = images.to(device, non_blocking=True, memory_format=memory_format)
        inputs = tta_views(images, views)
        probs = torch.zeros((), device=device)
        for model in models:
            for view in inputs:
                with autocast(device, dtype):
                    logits = model(view)
                probs = probs + logits.float().softmax(dim=1)
        batches.append((probs / (len(views) * len(models))).cpu())
    probs = torch.cat(batches).numpy().astype(np.float64)
    return probs / probs.sum(axis=1, keepdims=True)
