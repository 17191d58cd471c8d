"""Optimizer and learning-rate schedule, both counted in optimizer updates, not micro-batches."""

import math

import torch
from omegaconf import DictConfig
from timm.optim import create_optimizer_v2
from timm.scheduler import CosineLRScheduler

from podium.errors import PodiumError


def create_optimizer(config: DictConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    """AdamW or SGD from timm's factory, which exempts biases and norm weights from weight decay."""
    spec = config.optim
    if spec.name not in ("adamw", "sgd"):
        raise PodiumError(f"unknown optim.name {spec.name!r}; choose adamw or sgd")
    extra = {"momentum": spec.momentum} if spec.name == "sgd" else {}
    # With fused, one torch operator computes the whole AdamW or SGD update, on a CPU or a GPU.
    return create_optimizer_v2(model, opt=spec.name, lr=spec.lr, weight_decay=spec.weight_decay, filter_bias_and_bn=True, fused=bool(spec.fused), **extra)


def updates_per_epoch(micro_batches: int, accumulate: int) -> int:
    """Count the updates of one epoch; a last, shorter accumulation window still makes one."""
    return math.ceil(micro_batches / accumulate)


def warmup_updates(config: DictConfig, per_epoch: int) -> int:
    spec = config.schedule
    if spec.warmup_updates is not None:
        return int(spec.warmup_updates)
    return round(spec.warmup_epochs * per_epoch)


class LRSchedule:
    """Set the learning rate of each optimizer update from a schedule of `total` updates.

    Call `before_update(n)` before the n-th update (1-based) and `after_epoch(metric)` after
    validation. With a warmup of W updates the rate rises linearly and reaches its peak at
    update W. `cosine` then decays to `min_lr` at the last update (timm's CosineLRScheduler),
    `onecycle` uses torch's OneCycleLR over all updates, `plateau` scales the rate by
    `plateau_factor` after `plateau_patience` epochs without improvement, and `constant` keeps it.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, config: DictConfig, per_epoch: int, mode: str):
        spec = config.schedule
        self.optimizer = optimizer
        self.name = spec.name
        self.total = per_epoch * config.train.epochs
        self.warmup = min(warmup_updates(config, per_epoch), self.total)
        self.base_lr = [group["lr"] for group in optimizer.param_groups]

        if self.name == "cosine":
            self.scheduler = CosineLRScheduler(
                optimizer, t_initial=max(self.total - self.warmup, 1), lr_min=spec.min_lr,
                warmup_t=self.warmup, warmup_lr_init=0.0, warmup_prefix=True, t_in_epochs=False,
            )
        elif self.name == "onecycle":
            pct_start = max(self.warmup, 1) / self.total
            self.scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=self.base_lr, total_steps=self.total, pct_start=min(pct_start, 0.99))
        elif self.name == "plateau":
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=spec.plateau_factor, patience=spec.plateau_patience)
        elif self.name == "constant":
            self.scheduler = None
        else:
            raise PodiumError(f"unknown schedule.name {self.name!r}; choose cosine, onecycle, plateau or constant")

    def before_update(self, update: int) -> None:
        if self.name == "cosine":
            self.scheduler.step_update(num_updates=update)
        elif self.name == "onecycle":
            # OneCycleLR's rate for the n-th update is the one after n - 1 steps.
            while self.scheduler.last_epoch < min(update, self.total) - 1:
                self.scheduler.step()
        elif update <= self.warmup:
            for group, base in zip(self.optimizer.param_groups, self.base_lr):
                group["lr"] = base * update / self.warmup

    def after_epoch(self, metric: float, updates_done: int) -> None:
        if self.name == "plateau" and updates_done >= self.warmup and not math.isnan(metric):
            self.scheduler.step(metric)

    def current_lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict:
        return {} if self.scheduler is None else self.scheduler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state)
