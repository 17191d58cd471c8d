"""Benchmark 2: podium's per-update training losses equal a bare PyTorch loop's for the first 50 updates.

Both sides train resnet18 (configs/demo.yaml, dropout 0.1 included) at 64 px in fp32 and NCHW,
without augmentation and from the same seed. They see the same batches in the same order and
use AdamW with the same weight-decay groups and the same kernel, the fused one of podium's
default config: the rounding differences between two AdamW kernels grow to 0.02 in the loss
by update 10 here. The learning rate rises linearly over 10 updates and then stays constant. podium's losses come from Trainer's `on_updates` callback, the bare
loop's from `loss.item()` after each step.
"""

import argparse
import math
import sys

import torch

import bare
import common

UPDATES = 50
DECIMALS = 5
WARMUP = 10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=UPDATES, help=f"updates compared (default {UPDATES})")
    args = parser.parse_args()
    common.quiet_logs()

    from podium.tracking import Tracker
    from podium.train import prepare_fold

    print(f"== 2. parity of per-update losses, fp32: {common.cpu_description()}, torch {torch.__version__}")
    with common.workspace("parity") as work:
        config = common.bench_config(
            work,
            "train.precision=fp32",
            "model.channels_last=false",
            "data.augment=[]",
            "data.num_workers=0",
            "schedule.name=constant",
            f"schedule.warmup_updates={WARMUP}",
        )
        common.write_folds(config)
        run = prepare_fold(config, 0, work / "outputs" / "bench" / "fold0", False, Tracker(config, "train", "bench", enabled=False))
        initial_weights = {name: value.clone() for name, value in run.trainer.model.state_dict().items()}
        epochs = math.ceil(args.updates / len(run.sampler))

        podium_losses = []
        run.trainer.on_updates = lambda records: podium_losses.extend(record["train_loss"] for record in records)
        epoch_batches = []
        for epoch in range(1, epochs + 1):
            run.sampler.set_epoch(epoch)
            epoch_batches.append([[(epoch, index) for index in batch] for batch in run.sampler.batches()])
            run.trainer.train_one_epoch(run.train_batches, run.sampler.batch_sizes(), run.state)

        model = bare.make_model(config, len(run.classes), channels_last=False)
        same_init = all(torch.equal(value, initial_weights[name]) for name, value in model.state_dict().items())
        optimizer = bare.make_optimizer(config, model, fused=config.optim.fused)
        base_lr = config.optim.lr

        def warmup_lr(update: int) -> float:
            return base_lr * update / WARMUP if update <= WARMUP else base_lr

        bare_losses = []
        for batches in epoch_batches:
            loader = bare.make_loader(run.train_batches.dataset, batches, num_workers=0)
            bare.train_epoch(model, optimizer, loader, channels_last=False, bf16=False, updates_done=len(bare_losses), lr_at_update=warmup_lr, losses=bare_losses)

    compared = list(zip(podium_losses, bare_losses))[: args.updates]
    differences = [abs(ours - theirs) for ours, theirs in compared]
    equal_rounded = sum(round(ours, DECIMALS) == round(theirs, DECIMALS) for ours, theirs in compared)
    common.info(f"identical initial weights from seed {config.seed}: {same_init}")
    common.info(f"{epochs} epochs of {len(run.sampler)} updates; compared updates 1 to {len(compared)}")
    for update in (1, 2, WARMUP, len(compared)):
        ours, theirs = compared[update - 1]
        common.info(f"update {update}: podium {ours:.7f}  bare {theirs:.7f}")
    common.info(f"updates equal when rounded to {DECIMALS} decimals: {equal_rounded} of {len(compared)}")
    complete = same_init and len(compared) == args.updates
    common.result(
        f"parity: max |podium - bare| loss over {args.updates} updates", max(differences) if complete else math.inf, "<=", 0.5 * 10**-DECIMALS,
        detail=f"{equal_rounded}/{len(compared)} equal to {DECIMALS} decimals" + ("" if complete else "; initial weights differ or too few updates"),
        fmt=".1e",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
