"""Training images per second with 1 and 2 processes under torchrun, on one fold of the demo.

On a CPU machine the processes use the gloo backend and split the cores; on a GPU machine,
pass --processes with the GPU count. Prints each throughput and its ratio to one process.

    python bench/ddp_scaling.py                 # about 3 minutes on two CPU cores
    python bench/ddp_scaling.py --processes 1 2 4 --model resnet50 --image-size 224 --epochs 1
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def train(out: Path, processes: int, args) -> dict:
    launcher = [sys.executable, "-m", "podium.cli"]
    if processes > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}", "-m", "podium.cli"]
    overrides = [
        "name=ddp", f"output_dir={out}", f"folds.file={out / 'folds.csv'}", f"model.name={args.model}",
        f"data.image_size={args.image_size}", f"data.batch_size={args.global_batch // processes}",
        f"train.epochs={args.epochs}", "tracking.wandb=false", "data.num_workers=0",
    ]
    config = str(REPO / "configs" / "demo.yaml")
    subprocess.run([sys.executable, "-m", "podium.cli", "folds", "--config", config, *overrides], check=True, capture_output=True)
    started = time.perf_counter()
    subprocess.run([*launcher, "train", "--config", config, *overrides], check=True, capture_output=True)
    history = json.loads((out / "ddp" / "fold0" / "metrics.json").read_text())["history"]
    # The first epoch pays for start-up and warm-up; later epochs show the steady state.
    steady = history[1:] or history
    return {"images_per_second": sum(r["images_per_second"] for r in steady) / len(steady), "wall_seconds": time.perf_counter() - started, "valid_f1_macro": history[-1]["valid_f1_macro"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--global-batch", type=int, default=64, help="samples per optimizer update over all processes")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()

    results = {}
    for processes in args.processes:
        with tempfile.TemporaryDirectory() as out:
            results[processes] = train(Path(out), processes, args)
        figures = results[processes]
        print(
            f"{processes} process(es): {figures['images_per_second']:.0f} train img/s (epochs 2+), "
            f"{figures['images_per_second'] / results[args.processes[0]]['images_per_second']:.2f}x of {args.processes[0]}, "
            f"wall {figures['wall_seconds']:.0f} s, valid macro-F1 {figures['valid_f1_macro']:.4f}"
        )


if __name__ == "__main__":
    main()
