"""Write the demo competition, built from scikit-learn's bundled digits, into a folder.

The layout is the one Kaggle image-classification competitions use:

    train.csv               image_id, label, group
    train_images/<id>.png   RGB, 32x32
    test_images/<id>.png
    sample_submission.csv   image_id, label (ids in a shuffled order)
    demo_solution.csv       the test answers; only `podium score` reads them

Each source digit becomes 1 to 3 slightly shifted variants that share a `group` id, as
photos of one person do in a face data set. Classes are kept at different rates so that
the rarest has at most a quarter of the most common one's rows. The output is the same,
byte for byte, on every run.
"""

import argparse
import hashlib
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from sklearn.datasets import load_digits

CLASS_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

# Share of each digit's source images that is kept; "three" is the rarest class.
KEEP_FRACTION = [1.0, 0.85, 0.7, 0.2, 0.9, 0.6, 0.5, 0.4, 0.75, 0.3]

TEST_SHARE = 0.25
IMAGE_SIZE = 32
MARKER = ".demo-competition"


def make_id(kind: str, index: int) -> str:
    """Return a short, stable hexadecimal id, as Kaggle competitions use."""
    return hashlib.sha1(f"{kind}-{index}".encode()).hexdigest()[:12]


def render_variant(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Upscale an 8x8 digit to a 32x32 RGB image, shifted by up to 2 pixels and tinted."""
    gray = cv2.resize((digit * (255.0 / 16.0)).astype(np.float32), (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_CUBIC)

    dx, dy = rng.integers(-2, 3, size=2)
    shift = np.float32([[1, 0, dx], [0, 1, dy]])
    gray = cv2.warpAffine(gray, shift, (IMAGE_SIZE, IMAGE_SIZE), borderValue=0)

    tint = rng.uniform(0.8, 1.0, size=3).astype(np.float32)
    rgb = np.clip(gray[..., None] * tint, 0, 255)
    return rgb.round().astype(np.uint8)


def write_png(path: Path, rgb: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"failed to write {path}")


def prepare_folder(out: Path, force: bool) -> None:
    """Empty the image folders, refusing to overwrite a competition that is not the demo."""
    if (out / "train.csv").exists() and not (out / MARKER).exists() and not force:
        raise SystemExit(
            f"{out / 'train.csv'} exists and is not the demo competition. "
            f"Move your competition's files elsewhere, or pass --force to overwrite them."
        )
    out.mkdir(parents=True, exist_ok=True)
    for folder in ("train_images", "test_images"):
        shutil.rmtree(out / folder, ignore_errors=True)
        (out / folder).mkdir()
    (out / MARKER).write_text("written by scripts/make_demo_competition.py\n")


def build(out: Path, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    digits = load_digits()
    rng = np.random.default_rng(seed)
    train_rows, test_rows = [], []

    for index in rng.permutation(len(digits.target)):
        target = int(digits.target[index])
        if rng.random() >= KEEP_FRACTION[target]:
            continue
        label = CLASS_NAMES[target]

        if rng.random() < TEST_SHARE:
            image_id = make_id("test", index)
            write_png(out / "test_images" / f"{image_id}.png", render_variant(digits.images[index], rng))
            test_rows.append((image_id, label))
            continue

        group = f"g{index:04d}"
        for variant in range(rng.integers(1, 4)):
            image_id = make_id(f"train-{variant}", index)
            write_png(out / "train_images" / f"{image_id}.png", render_variant(digits.images[index], rng))
            train_rows.append((image_id, label, group))

    train = pd.DataFrame(train_rows, columns=["image_id", "label", "group"])
    solution = pd.DataFrame(test_rows, columns=["image_id", "label"])
    return train, solution


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("input"), help="folder to write the competition into")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the split and the variants")
    parser.add_argument("--force", action="store_true", help="overwrite a train.csv that is not the demo's")
    args = parser.parse_args()

    prepare_folder(args.out, args.force)
    train, solution = build(args.out, args.seed)

    train.to_csv(args.out / "train.csv", index=False)
    solution.to_csv(args.out / "demo_solution.csv", index=False)
    sample = solution.assign(label=CLASS_NAMES[0])
    sample.to_csv(args.out / "sample_submission.csv", index=False)

    counts = train["label"].value_counts()
    print(
        f"demo competition written to {args.out}: {len(train)} train images in {train['group'].nunique()} groups, "
        f"{len(solution)} test images, {len(counts)} classes "
        f"(largest {counts.idxmax()}: {counts.max()}, smallest {counts.idxmin()}: {counts.min()})"
    )


if __name__ == "__main__":
    main()
