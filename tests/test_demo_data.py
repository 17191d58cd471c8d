"""The demo competition: Kaggle layout, string labels, groups, imbalance, deterministic bytes."""

import subprocess
import sys
from pathlib import Path

import cv2
import pandas as pd

from conftest import REPO


def test_layout_and_labels(demo_root):
    train = pd.read_csv(demo_root / "train.csv")
    sample = pd.read_csv(demo_root / "sample_submission.csv")
    solution = pd.read_csv(demo_root / "demo_solution.csv")

    assert list(train.columns) == ["image_id", "label", "group"]
    assert list(sample.columns) == ["image_id", "label"]
    assert train["label"].map(type).eq(str).all()
    assert train["label"].nunique() == 10
    assert set(sample["image_id"]) == set(solution["image_id"])
    assert list(sample["image_id"]) != sorted(sample["image_id"])
    assert not set(train["image_id"]) & set(sample["image_id"])


def test_images_are_rgb_32px(demo_root):
    train = pd.read_csv(demo_root / "train.csv")
    image = cv2.imread(str(demo_root / "train_images" / f"{train['image_id'][0]}.png"), cv2.IMREAD_UNCHANGED)
    assert image.shape == (32, 32, 3)
    assert len(list((demo_root / "test_images").iterdir())) == len(pd.read_csv(demo_root / "sample_submission.csv"))


def test_groups_and_imbalance(demo_root):
    train = pd.read_csv(demo_root / "train.csv")
    sizes = train.groupby("group").size()
    counts = train["label"].value_counts()
    assert sizes.min() == 1
    assert sizes.max() == 3
    assert counts.min() <= counts.max() / 4


def test_rerun_is_byte_identical(demo_root, tmp_path):
    out = tmp_path / "again"
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_demo_competition.py"), "--out", str(out)], check=True, capture_output=True)
    for name in ["train.csv", "sample_submission.csv", "demo_solution.csv"]:
        assert (out / name).read_bytes() == (demo_root / name).read_bytes()
    first = sorted(Path(demo_root / "train_images").iterdir())[:20]
    for path in first:
        assert (out / "train_images" / path.name).read_bytes() == path.read_bytes()


def test_refuses_to_overwrite_other_competition(tmp_path):
    (tmp_path / "train.csv").write_text("id,label\n1,a\n")
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "make_demo_competition.py"), "--out", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "is not the demo competition" in result.stderr
