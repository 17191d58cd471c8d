"""A training process killed with SIGKILL at a random moment resumes to the same final weights."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import REPO, TINY_MODEL
from podium.checkpoint import load_checkpoint


def train_command(demo_root, out, *extra):
    return [
        sys.executable, "-m", "podium.cli", "train", "--config", str(REPO / "configs" / "default.yaml"), "--fold", "0", *extra,
        "name=crash", f"competition.root={demo_root}", f"output_dir={out}", f"folds.file={out / 'folds.csv'}",
        f"model.name={TINY_MODEL}", "model.drop_rate=0.2", "data.image_size=32", "data.num_workers=0", "data.batch_size=32",
        "folds.n_folds=2", "train.epochs=3", "train.precision=fp32", "train.deterministic=true", "tracking.wandb=false",
    ]


def make_folds_file(demo_root, out):
    command = train_command(demo_root, out)
    command[3] = "folds"
    del command[6:8]  # folds takes no --fold
    subprocess.run(command, check=True, capture_output=True, cwd=out)


@pytest.mark.slow
def test_sigkill_then_resume_matches(demo_root, tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    for out in (straight, killed):
        out.mkdir()
        make_folds_file(demo_root, out)
    subprocess.run(train_command(demo_root, straight), check=True, capture_output=True, cwd=straight)

    last = killed / "crash" / "fold0" / "last.pt"
    process = subprocess.Popen(train_command(demo_root, killed), cwd=killed, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    while not last.exists() and process.poll() is None:
        time.sleep(0.02)
    delay = random.uniform(0.0, 1.0)
    time.sleep(delay)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()

    resumed = subprocess.run(train_command(demo_root, killed, "--resume"), capture_output=True, text=True, cwd=killed)
    assert resumed.returncode == 0, resumed.stderr

    expected = load_checkpoint(straight / "crash" / "fold0" / "last.pt")
    actual = load_checkpoint(last)
    assert actual["train_state"]["epoch"] == 3
    for name, value in expected["model"].items():
        assert torch.equal(value, actual["model"][name]), f"{name} differs after a kill {delay:.2f}s past the first checkpoint"
    assert not list(last.parent.glob(".*.tmp")), "a temporary checkpoint file was left behind"
