"""Shared pieces of the benchmarks: a private copy of the demo competition, configs, timing and result lines.

Every benchmark writes the demo competition into a temporary folder and keeps its outputs
there, so it never reads or overwrites input/, outputs/ or submissions/ of the checkout.
"""

import contextlib
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # keeps the profiler from logging that it found no GPU

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO / "configs" / "demo.yaml"

# Every benchmark trains and predicts configs/demo.yaml's resnet18 at 64 px instead of the demo's 32 px.
IMAGE_SIZE = 64


@contextlib.contextmanager
def workspace(prefix: str):
    """Yield a temporary folder that contains the demo competition in `input/`, and delete it afterwards."""
    folder = Path(tempfile.mkdtemp(prefix=f"podium-bench-{prefix}-"))
    try:
        subprocess.run(
            [sys.executable, str(REPO / "scripts" / "make_demo_competition.py"), "--out", str(folder / "input")],
            check=True, capture_output=True,
        )
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bench_config(work: Path, *overrides: str):
    """Return configs/demo.yaml at 64 px with every input and output inside `work` and W&B off."""
    from podium.config import load_config

    return load_config(
        DEMO_CONFIG,
        [
            "name=bench",
            f"competition.root={work / 'input'}",
            f"output_dir={work / 'outputs'}",
            f"folds.file={work / 'outputs' / 'folds.csv'}",
            f"submission_dir={work / 'submissions'}",
            f"data.image_size={IMAGE_SIZE}",
            "tracking.wandb=false",
            *overrides,
        ],
    )


def write_folds(config) -> None:
    """Write folds.csv for `config` unless it exists."""
    from podium.folds import make_folds

    if not Path(config.folds.file).is_file():
        make_folds(config)


def quiet_logs() -> None:
    """Show podium's warnings and errors only, so the result lines stand out."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("podium", "lightning", "lightning.pytorch", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)


class Stopwatch:
    """Wall-clock seconds of a `with` block, in `seconds`."""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc_info):
        self.seconds = time.perf_counter() - self.start


def median(values) -> float:
    return statistics.median(values)


def rotated(items: list, round_index: int) -> list:
    """Return `items` rotated by `round_index`, so each side runs first, middle and last in turn."""
    shift = round_index % len(items)
    return items[shift:] + items[:shift]


def result(name: str, value: float, op: str, target: float, unit: str = "", detail: str = "", fmt: str = ".3f") -> bool:
    """Print one `RESULT` line with the measured value, its target and whether it is met, and return whether it is met.

    `op` is ">=" or "<=". bench/run_all.py collects these lines into the closing summary.
    """
    met = value >= target if op == ">=" else value <= target
    verdict = "met" if met else "MISSED"
    extra = f"  ({detail})" if detail else ""
    print(f"RESULT | {name} | {value:{fmt}}{unit} | target {op} {target:g}{unit} | {verdict}{extra}", flush=True)
    return met


def skipped(name: str, reason: str) -> None:
    """Print a `RESULT` line for a comparison that could not run, with the reason."""
    print(f"RESULT | {name} | - | - | skipped  ({reason})", flush=True)


def info(text: str) -> None:
    print(f"  {text}", flush=True)


def load_note() -> str:
    """Return the 1-minute load average against the core count, to show whether other work shared the CPU."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return "load average unknown"
    return f"load average {load:.2f} on {os.cpu_count()} cores"


def cpu_description() -> str:
    """Return the CPU model, the core count and whether the CPU has bf16 instructions."""
    from podium.engine import cpu_has_bf16

    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    bf16 = "bf16 instructions" if cpu_has_bf16() else "no bf16 instructions"
    return f"{model}, {os.cpu_count()} cores, {bf16}"
