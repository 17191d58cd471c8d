"""The hand-written side of the comparisons: a plain timm model, AdamW, a DataLoader and the textbook loop.

Nothing here calls podium's training or prediction code. The loops take podium's dataset
objects, so both sides decode and transform the same images in the same batches.
"""

import cv2
import timm
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader


def make_model(config, num_classes: int, channels_last: bool) -> torch.nn.Module:
    """Build the config's timm model after seeding torch with `config.seed`, as podium's prepare_fold does."""
    torch.manual_seed(config.seed)
    model = timm.create_model(
        config.model.name,
        pretrained=False,
        num_classes=num_classes,
        drop_rate=config.model.drop_rate,
        drop_path_rate=config.model.drop_path_rate,
    )
    return model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Split parameters into a group without weight decay (biases, norm weights) and one with it."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if parameter.ndim <= 1 or name.endswith(".bias"):
            no_decay.append(parameter)
        else:
            decay.append(parameter)
    return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]


def make_optimizer(config, model: torch.nn.Module, fused: bool = False) -> torch.optim.AdamW:
    """Return torch's AdamW: its default implementation, or with `fused` the fused kernel that podium's default config uses."""
    return torch.optim.AdamW(param_groups(model, config.optim.weight_decay), lr=config.optim.lr, fused=fused)


def single_thread_opencv(worker_id: int) -> None:
    """Keep OpenCV to one thread in each DataLoader worker, the usual setting with several workers."""
    cv2.setNumThreads(0)


def make_loader(dataset, batches: list[list], num_workers: int) -> DataLoader:
    """Return a DataLoader that yields exactly `batches` (lists of dataset keys), in order, every pass.

    The loader has a generator of its own, as podium's loaders do, so starting a pass draws
    nothing from torch's global generator and dropout draws the same random numbers.
    """
    options = {"num_workers": num_workers, "generator": torch.Generator().manual_seed(0)}
    if num_workers > 0:
        options.update(persistent_workers=True, worker_init_fn=single_thread_opencv)
    return DataLoader(dataset, batch_sampler=batches, **options)


def train_epoch(model, optimizer, loader, channels_last: bool, bf16: bool, updates_done: int = 0, lr_at_update=None, losses: list | None = None) -> int:
    """Train one pass over `loader` with mean cross-entropy and return the number of images.

    When given, `lr_at_update(n)` returns the learning rate of the n-th update (1-based, counted
    on from `updates_done`), and `losses` receives each update's loss as a float, which costs
    one host synchronisation per update.
    """
    model.train()
    images_seen = 0
    for step, (images, targets) in enumerate(loader):
        lr = None if lr_at_update is None else lr_at_update(updates_done + step + 1)
        loss = train_step(model, optimizer, images, targets, channels_last, bf16, lr)
        if losses is not None:
            losses.append(loss.item())
        images_seen += len(targets)
    return images_seen


def train_step(model, optimizer, images, targets, channels_last: bool, bf16: bool, lr: float | None = None) -> torch.Tensor:
    """Run one forward, backward and optimizer update of a model in train mode, and return the detached loss.

    `lr`, when given, is set on every parameter group before the update.
    """
    images = images.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = model(images)
    loss = F.cross_entropy(logits.float(), targets)

    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if lr is not None:
        for group in optimizer.param_groups:
            group["lr"] = lr
    optimizer.step()
    return loss.detach()


@torch.inference_mode()
def predict(models, loader, views, channels_last: bool, bf16: bool) -> torch.Tensor:
    """Return the mean over models and TTA views of the softmax, one row per image, in loader order."""
    for model in models:
        model.eval()
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    flips = {"identity": lambda x: x, "hflip": lambda x: x.flip(3), "vflip": lambda x: x.flip(2), "transpose": lambda x: x.transpose(2, 3)}
    outputs = []
    for images, _ in loader:
        images = images.to(memory_format=memory_format)
        total = torch.zeros(())
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            for model in models:
                for view in views:
                    total = total + model(flips[view](images)).float().softmax(dim=1)
        outputs.append(total / (len(models) * len(views)))
    return torch.cat(outputs)
