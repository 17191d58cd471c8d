"""Shared fixtures: the demo competition written once per session, and small configs that point at it."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from podium.config import load_config  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

# A tiny timm model that trains on 32x32 images in a second per epoch on two CPU cores.
TINY_MODEL = "test_resnet"


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory) -> Path:
    """The demo competition, written by the real script; also a 200-row subset as train_small.csv."""
    root = tmp_path_factory.mktemp("demo") / "input"
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_demo_competition.py"), "--out", str(root)], check=True, capture_output=True)

    train = pd.read_csv(root / "train.csv")
    groups = train["group"].drop_duplicates().sample(n=100, random_state=0)
    train[train["group"].isin(groups)].to_csv(root / "train_small.csv", index=False)
    return root


def tiny_config(root: Path, out: Path, *overrides: str):
    """A config for fast CPU runs: a tiny model, 32x32 images, fp32, no workers, one epoch."""
    return load_config(
        None,
        [
            "name=test",
            f"competition.root={root}",
            f"output_dir={out / 'outputs'}",
            f"folds.file={out / 'outputs' / 'folds.csv'}",
            f"submission_dir={out / 'submissions'}",
            f"model.name={TINY_MODEL}",
            "data.image_size=32",
            "data.batch_size=32",
            "data.num_workers=0",
            "data.augment=[]",
            "train.epochs=1",
            "train.precision=fp32",
            "infer.tta=[identity]",
            "tracking.wandb=false",
            *overrides,
        ],
    )
