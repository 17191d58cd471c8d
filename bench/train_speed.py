"""Benchmark 1: training throughput of podium's fold loop against a bare loop and Lightning.

All sides train resnet18 (configs/demo.yaml) at 64 px on the training rows of fold 0, on
the same dataset object, the same augmentations and the same 64-image batches of epoch 1:

  podium  prepare_fold's Trainer.train_one_epoch with its own loader (bf16 autocast where
          the CPU has bf16 instructions, and channels_last, as `make train` runs)
  (a)     a bare PyTorch loop, fp32, NCHW, torch's default AdamW
  (b)     the bare loop with channels_last, bf16 autocast and the fused AdamW that podium uses
  (c)     Lightning's Trainer on the same model and optimizer as (b), channels_last, precision "bf16-mixed"

(a) and (b) run step by step inside podium's epoch: each bare model trains on every batch
too, before podium's step on even batches and after it on odd ones, and each side's time is
its steps plus the batch's loading.
Lightning runs whole epochs, so (c) is compared with an epoch that podium trains alone.
Each round runs the interleaved epoch, podium's own epoch and Lightning's epoch in a
rotating order, after one warm-up round. A ratio is the median over rounds of podium's
images per second over the other side's.
"""

import argparse
import itertools
import logging
import sys
import time
import warnings

import torch

import bare
import common

TARGETS = {"a": 1.5, "b": 0.97, "c": 1.0}


def lightning_side(config, num_classes: int, loader):
    """Return a function that trains one epoch with Lightning and returns its seconds, and a note.

    The function is None when Lightning cannot be imported, and the note then gives the reason.
    """
    try:
        import lightning as L
    except ImportError as error:
        return None, f"lightning is not installed ({error}); `make bench` installs it"

    import torch.nn.functional as F

    # Lightning sets its loggers to INFO on import, and its banners would bury the results.
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="lightning")

    class Classifier(L.LightningModule):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def training_step(self, batch, batch_index):
            images, targets = batch
            logits = self.model(images.contiguous(memory_format=torch.channels_last))
            loss = F.cross_entropy(logits.float(), targets)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self):
            return bare.make_optimizer(config, self.model, fused=config.optim.fused)

    class EpochTimer(L.Callback):
        """Seconds from the start of the epoch (before the loader's first batch) to its end."""

        def on_train_epoch_start(self, trainer, module):
            self.start = time.perf_counter()

        def on_train_epoch_end(self, trainer, module):
            self.seconds = time.perf_counter() - self.start

    module = Classifier(bare.make_model(config, num_classes, channels_last=True))

    def run_epoch() -> float:
        timer = EpochTimer()
        trainer = L.Trainer(
            accelerator="cpu", devices=1, precision="bf16-mixed", max_epochs=1, logger=False,
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
            num_sanity_val_steps=0, callbacks=[timer],
        )
        trainer.fit(module, train_dataloaders=loader)
        return timer.seconds

    return run_epoch, f"lightning {L.__version__}"


class InterleavedBatches:
    """podium's training loader, with the bare loops' steps run on each batch next to podium's own step.

    Alternating step by step makes the sides share every change in machine load. The bare steps
    run before podium's step on even batches and after it on odd ones, so that no side always
    follows the same other model. Each side's time includes the batch's loading time, which the
    loader pays once for all of them.
    """

    def __init__(self, loader, steps: dict):
        self.loader, self.steps = loader, steps
        self.load_seconds = 0.0
        self.step_seconds = dict.fromkeys(steps, 0.0)

    def __len__(self) -> int:
        return len(self.loader)

    def run_steps(self, images, targets) -> None:
        for name, step in self.steps.items():
            start = time.perf_counter()
            step(images, targets)
            self.step_seconds[name] += time.perf_counter() - start

    def __iter__(self):
        self.load_seconds = 0.0
        self.step_seconds = dict.fromkeys(self.steps, 0.0)
        batches = iter(self.loader)
        for index in itertools.count():
            start = time.perf_counter()
            try:
                images, targets = next(batches)
            except StopIteration:
                return
            self.load_seconds += time.perf_counter() - start

            if index % 2 == 0:
                self.run_steps(images, targets)
                yield images, targets
            else:
                yield images, targets
                self.run_steps(images, targets)  # runs when podium requests the next batch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="timed rounds (default 4)")
    args = parser.parse_args()
    common.quiet_logs()

    from podium.engine import cpu_has_bf16
    from podium.tracking import Tracker
    from podium.train import prepare_fold

    print(f"== 1. training throughput: {common.cpu_description()}, torch {torch.__version__}, {torch.get_num_threads()} threads, {common.load_note()}")
    with common.workspace("train") as work:
        config = common.bench_config(work)
        common.write_folds(config)
        run = prepare_fold(config, 0, work / "outputs" / "bench" / "fold0", False, Tracker(config, "train", "bench", enabled=False))
        run.sampler.set_epoch(1)
        batch_sizes = run.sampler.batch_sizes()
        images = sum(batch_sizes)
        batches = [[(1, index) for index in batch] for batch in run.sampler.batches()]
        loader = bare.make_loader(run.train_batches.dataset, batches, config.data.num_workers)
        num_classes = len(run.classes)
        bf16 = cpu_has_bf16()
        common.info(
            f"fold 0: {images} training images in {len(batches)} batches of {config.data.batch_size}, {config.data.num_workers} loader workers, "
            f"data.cache {config.data.cache}; podium trains with autocast dtype {run.trainer.dtype}, channels_last {run.trainer.channels_last}"
        )

        def bare_step(channels_last: bool, use_bf16: bool, fused: bool):
            model = bare.make_model(config, num_classes, channels_last)
            optimizer = bare.make_optimizer(config, model, fused)
            return lambda images, targets: bare.train_step(model, optimizer, images, targets, channels_last, use_bf16)

        sides = {"a": bare_step(False, False, fused=False), "b": bare_step(True, bf16, fused=config.optim.fused)}
        interleaved = InterleavedBatches(run.train_batches, sides)
        lightning_epoch, lightning_note = lightning_side(config, num_classes, loader)
        common.info(f"(c): {lightning_note}")

        def interleaved_epoch() -> dict:
            with common.Stopwatch() as watch:
                run.trainer.train_one_epoch(interleaved, batch_sizes, run.state)
            steps, load = interleaved.step_seconds, interleaved.load_seconds
            return {"podium": watch.seconds - sum(steps.values()), **{name: seconds + load for name, seconds in steps.items()}}

        def podium_epoch() -> dict:
            with common.Stopwatch() as watch:
                run.trainer.train_one_epoch(run.train_batches, batch_sizes, run.state)
            return {"podium alone": watch.seconds}

        measurements = {"interleaved": interleaved_epoch, "podium alone": podium_epoch}
        if lightning_epoch is not None:
            measurements["c"] = lambda: {"c": lightning_epoch()}

        seconds = {}
        for round_index in range(args.rounds + 1):
            for name in common.rotated(list(measurements), round_index):
                figures = measurements[name]()
                if round_index > 0:  # round 0 warms up oneDNN kernels, the allocator and any workers
                    for side, value in figures.items():
                        seconds.setdefault(side, []).append(value)

        labels = {
            "podium": "podium, interleaved with (a) and (b)", "a": "(a) bare fp32 NCHW", "b": "(b) bare channels_last + bf16 + fused AdamW",
            "podium alone": "podium, epoch of its own", "c": "(c) Lightning bf16-mixed",
        }
        for side in [side for side in labels if side in seconds]:
            rates = [images / value for value in seconds[side]]
            common.info(f"{labels[side]}: median {common.median(rates):.1f} img/s (per round {', '.join(f'{rate:.1f}' for rate in rates)})")
        tuned = [slow / fast for slow, fast in zip(seconds["a"], seconds["b"])]
        common.info(f"(b) / (a), the speed-up of channels_last, bf16 and the fused AdamW in the bare loop itself: {common.median(tuned):.3f}x")

        if not bf16:
            common.info("this CPU has no bf16 instructions, so podium and (b) train in fp32, and (a) gets the target of (b)")
        comparisons = [("a", "podium", TARGETS["a"] if bf16 else TARGETS["b"]), ("b", "podium", TARGETS["b"]), ("c", "podium alone", TARGETS["c"])]
        for other, ours, target in comparisons:
            if other not in seconds:
                common.skipped(f"train: podium / {labels[other]}", lightning_note)
                continue
            ratios = [theirs / mine for mine, theirs in zip(seconds[ours], seconds[other])]
            met = common.result(
                f"train: podium / {labels[other]}", common.median(ratios), ">=", target, "x",
                detail="per round " + ", ".join(f"{ratio:.3f}" for ratio in ratios),
            )
            if other == "a" and not met:
                batch = next(iter(loader))
                for name, channels_last, use_bf16, fused in [("a", False, False, False), ("b", True, bf16, config.optim.fused)]:
                    profile_steps(labels[name], bare_step(channels_last, use_bf16, fused), batch)
    return 0


def profile_steps(label: str, step, batch, steps: int = 3, rows: int = 6) -> None:
    """Print the operators that take the most CPU time in a few training steps of one bare side."""
    images, targets = batch
    step(images, targets)  # warm-up, so oneDNN's kernel creation stays out of the profile
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        for _ in range(steps):
            step(images, targets)
    events = sorted(profiler.key_averages(), key=lambda event: event.self_cpu_time_total, reverse=True)
    total = sum(event.self_cpu_time_total for event in events)
    top = ", ".join(f"{event.key} {100 * event.self_cpu_time_total / total:.0f}%" for event in events[:rows])
    common.info(f"profile of {label}, {total / steps / 1e3:.0f} ms CPU per step: {top}")


if __name__ == "__main__":
    sys.exit(main())
