"""Benchmark 5: peak memory across the folds of `make train-all`, and epoch time at 1x and 4x the data.

Memory: a child process runs `podium train-all` (the command `make train-all` calls) on the
demo at 64 px for one epoch per fold, with W&B in offline mode as the default config has it.
After each fold it records its own peak RSS (getrusage ru_maxrss), its current RSS, glibc
malloc's bytes in use and freed bytes it keeps (mallinfo2), and its live child processes.
The peak after the last fold may exceed the one after the first by at most 10%.

Scaling: the 4x table repeats every training row four times under new ids, pointing at the
same images, and keeps each row's group, so the copies stay in one fold. Fold 0 trains at
1x and 4x in this process, alternating epochs after a warm-up epoch. The time per image of
Trainer.train_one_epoch at 4x may exceed that at 1x by at most 10%.
"""

import argparse
import ctypes
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pandas as pd

import common

GROWTH_LIMIT = 1.10
PER_IMAGE_LIMIT = 1.10
MARKER = "FOLD_MEMORY "


class MallInfo2(ctypes.Structure):
    """glibc's struct mallinfo2 (glibc 2.33 and later), totals over all malloc arenas in bytes."""

    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def malloc_figures() -> dict:
    """Return the MiB that malloc has allocated and not freed, and the freed MiB it keeps.

    The dict is empty where the C library has no mallinfo2 (glibc before 2.33, or not glibc).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = MallInfo2
        info = libc.mallinfo2()
    except (OSError, AttributeError):
        return {}
    return {"malloc_in_use_mib": (info.uordblks + info.hblkhd) / 2**20, "malloc_free_kept_mib": info.fordblks / 2**20}


def rss_figures() -> dict:
    """Return this process's peak and current RSS in MiB, malloc's figures and the live child processes."""
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # ru_maxrss is in KiB on Linux
    current_mib = float("nan")
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            current_mib = int(line.split()[1]) / 1024
    children = set()
    for task in Path("/proc/self/task").iterdir():
        children.update((task / "children").read_text().split())
    return {"peak_mib": peak_mib, "current_mib": current_mib, **malloc_figures(), "children": len(children)}


def child_train_all(arguments: list[str]) -> int:
    """Run `podium train-all` in this process, printing memory figures after each fold."""
    import podium.train
    from podium.cli import main as podium_main

    train_fold = podium.train.train_fold

    def measured_train_fold(config, fold, *args, **kwargs):
        result = train_fold(config, fold, *args, **kwargs)
        print(MARKER + json.dumps({"fold": fold, **rss_figures()}), flush=True)
        return result

    podium.train.train_fold = measured_train_fold  # train_all looks the name up in its module on each call
    return podium_main(["train-all", *arguments])


def run_train_all(work: Path) -> tuple[list[dict], float]:
    """Run `podium train-all` in a child process, and return its per-fold memory figures and its seconds."""
    config = common.bench_config(work, "tracking.wandb=true", "train.epochs=1")
    common.write_folds(config)
    overrides = [
        "name=bench", f"competition.root={config.competition.root}", f"output_dir={config.output_dir}",
        f"folds.file={config.folds.file}", f"submission_dir={config.submission_dir}",
        f"data.image_size={common.IMAGE_SIZE}", "train.epochs=1", "tracking.wandb=true",
    ]
    environment = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    command = [sys.executable, __file__, "--child-train-all", "--", "--config", str(common.DEMO_CONFIG), *overrides]
    with common.Stopwatch() as watch:
        completed = subprocess.run(command, capture_output=True, text=True, env=environment)
    if completed.returncode != 0:
        print(completed.stdout[-3000:], completed.stderr[-3000:], sep="\n")
        raise SystemExit(f"podium train-all failed with exit status {completed.returncode}")
    folds = [json.loads(line[len(MARKER):]) for line in completed.stdout.splitlines() if line.startswith(MARKER)]
    return folds, watch.seconds


def train_all_memory(work: Path) -> None:
    folds, seconds = run_train_all(work)
    common.info(f"train-all: {len(folds)} folds of 1 epoch at {common.IMAGE_SIZE} px in {seconds:.0f} s, W&B offline")
    for figures in folds:
        malloc = ""
        if "malloc_in_use_mib" in figures:
            malloc = f", malloc in use {figures['malloc_in_use_mib']:.0f} MiB, freed but kept by malloc {figures['malloc_free_kept_mib']:.0f} MiB"
        common.info(
            f"after fold {figures['fold']}: peak RSS {figures['peak_mib']:.0f} MiB, current RSS {figures['current_mib']:.0f} MiB"
            f"{malloc}, {figures['children']} live child processes"
        )
    growth = folds[-1]["peak_mib"] / folds[0]["peak_mib"]
    common.result(
        "memory: train-all peak RSS, last fold / first fold", growth, "<=", GROWTH_LIMIT, "x",
        detail=f"{folds[0]['peak_mib']:.0f} -> {folds[-1]['peak_mib']:.0f} MiB",
    )


def write_repeated_table(work: Path, copies: int) -> str:
    """Write input/train_<copies>x.csv with every row `copies` times under new ids, and return its name.

    The copies keep their row's image and group.
    """
    table = pd.read_csv(work / "input" / "train.csv", dtype=str)
    table["file"] = table["image_id"] + ".png"
    repeated = pd.concat([table.assign(image_id=table["image_id"] + f"-copy{copy}") for copy in range(copies)], ignore_index=True)
    name = f"train_{copies}x.csv"
    repeated.to_csv(work / "input" / name, index=False)
    return name


def epoch_scaling(work: Path, rounds: int) -> None:
    from podium.tracking import Tracker
    from podium.train import prepare_fold

    runs = {}
    for copies in (1, 4):
        overrides = [f"name=bench{copies}x", f"folds.file={work / 'outputs' / f'folds_{copies}x.csv'}"]
        if copies > 1:
            overrides += [f"competition.train_csv={write_repeated_table(work, copies)}", "competition.path_column=file"]
        config = common.bench_config(work, *overrides)
        common.write_folds(config)
        folder = Path(config.output_dir) / config.name / "fold0"
        runs[copies] = prepare_fold(config, 0, folder, False, Tracker(config, "train", "bench", enabled=False))

    images = {copies: sum(run.sampler.batch_sizes()) for copies, run in runs.items()}
    train_seconds = {1: [], 4: []}
    epoch_seconds = {1: [], 4: []}
    runs[1].run_epoch()  # warm-up
    for round_index in range(rounds):
        for copies in common.rotated([1, 4], round_index):
            with common.Stopwatch() as watch:
                runs[copies].run_epoch()
            train_seconds[copies].append(runs[copies].state.history[-1]["seconds"])
            epoch_seconds[copies].append(watch.seconds)

    for copies in (1, 4):
        common.info(
            f"{copies}x: {images[copies]} training images, train part {common.median(train_seconds[copies]):.1f} s, "
            f"whole epoch with validation and checkpoints {common.median(epoch_seconds[copies]):.1f} s"
        )
    per_image = [(four / images[4]) / (one / images[1]) for one, four in zip(train_seconds[1], train_seconds[4])]
    whole = common.median(epoch_seconds[4]) / common.median(epoch_seconds[1])
    common.info(f"whole-epoch time, 4x / 1x: {whole:.2f} (4 would be exactly linear)")
    common.result(
        "scaling: train time per image, 4x data / 1x data", common.median(per_image), "<=", PER_IMAGE_LIMIT, "x",
        detail="per round " + ", ".join(f"{ratio:.3f}" for ratio in per_image),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="timed epochs at each size (default 2)")
    parser.add_argument("--child-train-all", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("podium_arguments", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_train_all:
        return child_train_all(args.podium_arguments)
    common.quiet_logs()

    print(f"== 5. memory and scaling: {common.cpu_description()}, {common.load_note()}")
    with common.workspace("memory") as work:
        train_all_memory(work)
        epoch_scaling(work, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
