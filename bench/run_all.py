"""Run every podium benchmark in its own process and print each ratio against its target.

`make bench` runs this file. The exit status is 1 when a benchmark script fails. It is 0
otherwise, also when a target is missed, and the summary marks each missed target.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import common

SCRIPTS = ["train_speed.py", "parity.py", "loader_speed.py", "infer_speed.py", "memory_scaling.py"]


def run_script(script: Path) -> tuple[int, list[str]]:
    """Run one benchmark, echo its output as it comes and return its exit status and RESULT lines."""
    results = []
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, bufsize=1)
    for line in process.stdout:
        print(line, end="", flush=True)
        if line.startswith("RESULT |"):
            results.append(line.rstrip("\n"))
    return process.wait(), results


def main() -> int:
    import torch

    folder = Path(__file__).resolve().parent
    print(f"podium benchmarks: {common.cpu_description()}, torch {torch.__version__}, {common.load_note()}", flush=True)
    if os.getloadavg()[0] > 0.5 * os.cpu_count():
        print(
            "WARNING: the load average is high before any benchmark runs, so other processes may share the CPU. "
            "Each ratio compares sides measured in turn, but run times and images per second will be lower.",
            flush=True,
        )

    started = time.perf_counter()
    results, failed = [], []
    for name in SCRIPTS:
        with common.Stopwatch() as watch:
            status, lines = run_script(folder / name)
        print(f"   ({name}: {watch.seconds:.0f} s)\n", flush=True)
        results += lines
        if status != 0:
            failed.append(f"{name} (exit status {status})")

    print("== summary: measured | target | verdict")
    for line in results:
        print("  " + line.removeprefix("RESULT | "))
    print(f"total wall time {time.perf_counter() - started:.0f} s, {common.load_note()} at the end")
    if failed:
        print(f"FAILED to run: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
