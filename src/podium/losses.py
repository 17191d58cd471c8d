"""Classification losses that return one value per sample, so the trainer can weight and sum them.

Summing per-sample losses and dividing by the samples of the whole accumulation window is
what makes gradient accumulation match one large batch (see engine.train_one_epoch).
"""

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from sklearn.utils.class_weight import compute_class_weight

from podium.errors import PodiumError


class CrossEntropy(torch.nn.Module):
    """Cross-entropy with optional label smoothing and per-class weights."""

    def __init__(self, weight: torch.Tensor | None = None, label_smoothing: float = 0.0):
        super().__init__()
        self.register_buffer("weight", weight)
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), target, weight=self.weight, label_smoothing=self.label_smoothing, reduction="none")


class FocalLoss(torch.nn.Module):
    """Focal loss, alpha_t * (1 - p_t)^gamma * -log(p_t) (Lin et al., 2017), with optional per-class alpha."""

    def __init__(self, gamma: float = 2.0, alpha: torch.Tensor | None = None):
        super().__init__()
        self.gamma = gamma
        self.register_buffer("alpha", alpha)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_prob = F.log_softmax(logits.float(), dim=1).gather(1, target[:, None]).squeeze(1)
        loss = -((1.0 - log_prob.exp()) ** self.gamma) * log_prob
        if self.alpha is not None:
            loss = loss * self.alpha[target]
        return loss


class SoftF1Loss(torch.nn.Module):
    """1 - macro-F1 computed on softmax probabilities, averaged over every class.

    The score belongs to the whole batch, so each sample carries the batch's value. A class with
    no sample and no probability mass in the batch scores 0, as in the validation metric.
    """

    def __init__(self, num_classes: int, eps: float = 1e-7):
        super().__init__()
        self.num_classes = num_classes
        self.eps = eps

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        prob = logits.float().softmax(dim=1)
        truth = F.one_hot(target, self.num_classes).float()
        true_positive = (prob * truth).sum(0)
        false_positive = (prob * (1 - truth)).sum(0)
        false_negative = ((1 - prob) * truth).sum(0)
        f1 = 2 * true_positive / (2 * true_positive + false_positive + false_negative + self.eps)
        # NOTE: soft-F1 over a window is not a sum over samples, so with gradient accumulation each
        # micro-batch's F1 is weighted by its size. That approximates the large-batch loss.
        return (1.0 - f1.mean()).expand(len(target))


def soft_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against a probability vector per sample; equals cross-entropy for one-hot targets."""
    return -(target_probs * F.log_softmax(logits.float(), dim=1)).sum(dim=1)


def encode_targets(probs: np.ndarray, weight, soft) -> np.ndarray:
    """Pack per-class target probabilities, a loss weight and a soft flag into one float row per sample."""
    rows = len(probs)
    return np.column_stack([probs, np.broadcast_to(weight, rows), np.broadcast_to(soft, rows)]).astype(np.float32)


class PseudoLabelLoss(torch.nn.Module):
    """Train on labeled and pseudo-labeled rows together; targets come packed by `encode_targets`.

    Hard rows use the configured loss on the argmax class, soft rows the soft-target
    cross-entropy, and each row's loss is multiplied by its weight (1 for labeled rows).
    """

    def __init__(self, base: torch.nn.Module, num_classes: int):
        super().__init__()
        self.base = base
        self.num_classes = num_classes

    def forward(self, logits: torch.Tensor, packed: torch.Tensor) -> torch.Tensor:
        probs = packed[:, :self.num_classes]
        weight = packed[:, self.num_classes]
        soft = packed[:, self.num_classes + 1] > 0.5
        hard_loss = self.base(logits, probs.argmax(dim=1))
        loss = torch.where(soft, soft_cross_entropy(logits, probs), hard_loss)
        return loss * weight


def class_weights(config: DictConfig, targets: np.ndarray, num_classes: int) -> torch.Tensor | None:
    """Return per-class weights: none, sklearn's "balanced" weights on the training rows, or the config's list."""
    setting = config.loss.class_weights
    if setting is None:
        return None
    if setting == "balanced":
        present = np.unique(targets)
        weights = np.ones(num_classes)
        weights[present] = compute_class_weight("balanced", classes=present, y=targets)
        return torch.tensor(weights, dtype=torch.float32)
    return per_class_list(setting, num_classes, "loss.class_weights")


def per_class_list(values, num_classes: int, key: str) -> torch.Tensor:
    values = list(values)
    if len(values) != num_classes:
        raise PodiumError(f"{key} has {len(values)} values but there are {num_classes} classes; give one per class")
    return torch.tensor(values, dtype=torch.float32)


def build_loss(config: DictConfig, train_targets: np.ndarray, num_classes: int) -> torch.nn.Module:
    """Create the loss named by `loss.name`."""
    spec = config.loss
    if spec.name == "cross_entropy":
        return CrossEntropy(class_weights(config, train_targets, num_classes), spec.label_smoothing or 0.0)
    if spec.name == "label_smoothing":
        smoothing = 0.1 if spec.label_smoothing is None else spec.label_smoothing
        return CrossEntropy(class_weights(config, train_targets, num_classes), smoothing)
    if spec.name == "focal":
        alpha = None if spec.alpha is None else per_class_list(spec.alpha, num_classes, "loss.alpha")
        return FocalLoss(spec.gamma, alpha)
    if spec.name == "soft_f1":
        return SoftF1Loss(num_classes)
    raise PodiumError(f"unknown loss.name {spec.name!r}; choose cross_entropy, focal, label_smoothing or soft_f1")
