"""Common competition layouts work with a config change only: folds, one epoch, inference, a valid submission."""

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import tiny_config
from podium.data import load_test_table
from podium.folds import make_folds
from podium.infer import make_submission
from podium.train import train_fold

CLASS_COLORS = [(220, 40, 40), (40, 200, 60), (50, 60, 230)]
PER_CLASS = 8


def class_image(target: int, index: int, size=(40, 32)) -> np.ndarray:
    """An RGB image whose color gives its class, with a bright square that moves with the index."""
    width, height = size
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:] = CLASS_COLORS[target]
    image[index % 8:index % 8 + 8, 4:12] = 255
    return image


def save(image: np.ndarray, path, kind: str = "png") -> None:
    """Write an RGB image as one of several real-world file variants."""
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = Image.fromarray(image)
    if kind == "png":
        picture.save(path)
    elif kind == "jpeg":
        picture.save(path, quality=95)
    elif kind == "gray":
        picture.convert("L").save(path)
    elif kind == "rgba":
        picture.convert("RGBA").save(path)
    elif kind == "palette":
        picture.convert("P").save(path)
    elif kind == "png16":
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257)
    elif kind == "cmyk":
        picture.convert("CMYK").save(path, quality=95)
    elif kind == "progressive":
        picture.save(path, quality=95, progressive=True)
    elif kind == "exif":
        exif = Image.Exif()
        exif[0x0112] = 6  # stored rotated; readers must turn it upright
        picture.transpose(Image.Transpose.ROTATE_90).save(path, exif=exif, quality=95)
    else:
        raise ValueError(kind)


def run_pipeline(root, tmp_path, *overrides):
    config = tiny_config(root, tmp_path, "folds.n_folds=2", "data.batch_size=8", "competition.group_column=null", "competition.solution_csv=none.csv", *overrides)
    make_folds(config)
    for fold in range(2):
        train_fold(config, fold)
    path = make_submission(config)
    return config, pd.read_csv(path, dtype=str)


def test_id_without_extension_jpg(tmp_path):
    root = tmp_path / "input"
    rows = [(f"img{target}{i}", f"c{target}") for target in range(3) for i in range(PER_CLASS)]
    for image_id, label in rows:
        save(class_image(int(label[1]), int(image_id[-1])), root / "train_images" / f"{image_id}.jpg", "jpeg")
        save(class_image(int(label[1]), 1), root / "test_images" / f"{image_id}.jpg", "jpeg")
    pd.DataFrame(rows, columns=["id", "label"]).to_csv(root / "train.csv", index=False)
    pd.DataFrame({"id": [r[0] for r in rows][::-1], "label": "c0"}).to_csv(root / "sample_submission.csv", index=False)

    _, submission = run_pipeline(root, tmp_path, "competition.id_column=id", "competition.image_path='{id}.jpg'")
    assert submission["id"].tolist() == [r[0] for r in rows][::-1]
    assert set(submission["label"]) <= {"c0", "c1", "c2"}


def test_path_column_with_subfolders(tmp_path):
    root = tmp_path / "input"
    rows = []
    for target in range(3):
        for i in range(PER_CLASS):
            relative = f"site{i % 2}/batch{target}/{target}_{i}.png"
            save(class_image(target, i), root / "train_images" / relative)
            rows.append((f"{target}_{i}", f"class{target}", relative))
    pd.DataFrame(rows, columns=["image_id", "label", "file"]).to_csv(root / "train.csv", index=False)
    for i in range(4):
        save(class_image(i % 3, i), root / "test_images" / "nested" / f"t{i}.png")
    pd.DataFrame({"image_id": [f"t{i}" for i in range(4)], "file": [f"nested/t{i}.png" for i in range(4)], "label": ""}).to_csv(root / "sample_submission.csv", index=False)

    _, submission = run_pipeline(root, tmp_path, "competition.path_column=file")
    # The template's extra path column stays, as the competition shipped it.
    assert list(submission.columns) == ["image_id", "file", "label"]
    assert submission["label"].notna().all()


def test_image_folder_without_csv(tmp_path):
    root = tmp_path / "input"
    names = ["cat", "dog", "eel"]
    for target, name in enumerate(names):
        for i in range(PER_CLASS):
            save(class_image(target, i), root / "train_images" / name / f"{i:03d}.png")
    for i in range(5):
        save(class_image(i % 3, i), root / "test_images" / f"test_{i}.jpg", "jpeg")

    config, submission = run_pipeline(root, tmp_path, "competition.train_csv=null", "competition.sample_submission=null")
    assert list(submission.columns) == ["image_id", "label"]
    assert submission["image_id"].tolist() == [f"test_{i}" for i in range(5)]
    assert set(submission["label"]) <= set(names)
    assert len(load_test_table(config)[1]) == 5


def test_one_hot_columns_give_probabilities(tmp_path):
    root = tmp_path / "input"
    names = ["healthy", "rust", "scab"]
    rows = []
    for target in range(3):
        for i in range(PER_CLASS):
            save(class_image(target, i), root / "train_images" / f"Train_{target}{i}.png")
            rows.append({"image_id": f"Train_{target}{i}", **{name: int(k == target) for k, name in enumerate(names)}})
    pd.DataFrame(rows).to_csv(root / "train.csv", index=False)
    for i in range(4):
        save(class_image(i % 3, i), root / "test_images" / f"Test_{i}.png")
    pd.DataFrame({"image_id": [f"Test_{i}" for i in range(4)], "healthy": 0.25, "rust": 0.25, "scab": 0.5}).to_csv(root / "sample_submission.csv", index=False)

    _, submission = run_pipeline(root, tmp_path, "competition.target_columns=[healthy,rust,scab]")
    probabilities = submission[names].astype(float)
    assert list(submission.columns) == ["image_id", *names]
    assert np.allclose(probabilities.sum(axis=1), 1.0)


def test_integer_labels_keep_values(tmp_path):
    root = tmp_path / "input"
    values = [3, 7, 9]
    rows = [(f"{target}-{i}", values[target]) for target in range(3) for i in range(PER_CLASS)]
    for image_id, label in rows:
        save(class_image(values.index(label), int(image_id[-1])), root / "train_images" / f"{image_id}.png")
    pd.DataFrame(rows, columns=["image_id", "label"]).to_csv(root / "train.csv", index=False)
    for i in range(4):
        save(class_image(i % 3, i), root / "test_images" / f"q{i}.png")
    pd.DataFrame({"image_id": [f"q{i}" for i in range(4)], "label": 0}).to_csv(root / "sample_submission.csv", index=False)

    _, submission = run_pipeline(root, tmp_path)
    assert set(submission["label"]) <= {"3", "7", "9"}


def test_group_column(tmp_path):
    root = tmp_path / "input"
    rows = [(f"p{target}{i}", f"c{target}", f"patient{target}{i // 2}") for target in range(3) for i in range(PER_CLASS)]
    for image_id, label, _ in rows:
        save(class_image(int(label[1]), int(image_id[-1])), root / "train_images" / f"{image_id}.png")
        save(class_image(int(label[1]), 0), root / "test_images" / f"{image_id}.png")
    pd.DataFrame(rows, columns=["image_id", "label", "patient"]).to_csv(root / "train.csv", index=False)
    pd.DataFrame({"image_id": [r[0] for r in rows], "label": "c0"}).to_csv(root / "sample_submission.csv", index=False)

    config, submission = run_pipeline(root, tmp_path, "competition.group_column=patient")
    folds = pd.read_csv(config.folds.file)
    assert folds.groupby("group")["fold"].nunique().max() == 1
    assert len(submission) == len(rows)


def test_mixed_file_formats_and_sizes(tmp_path):
    root = tmp_path / "input"
    kinds = [("png", ".png"), ("gray", ".png"), ("rgba", ".png"), ("palette", ".png"), ("png16", ".png"), ("cmyk", ".jpg"), ("progressive", ".jpg"), ("exif", ".jpg")]
    rows = []
    for target in range(3):
        for i, (kind, suffix) in enumerate(kinds):
            size = (40 + 8 * i, 32 + 4 * target)
            save(class_image(target, i, size), root / "train_images" / f"{kind}{target}{suffix}", kind)
            rows.append((f"{kind}{target}", f"c{target}", f"{kind}{target}{suffix}"))
            save(class_image(target, i, size), root / "test_images" / f"{kind}{target}{suffix}", kind)
    pd.DataFrame(rows, columns=["image_id", "label", "path"]).to_csv(root / "train.csv", index=False)
    pd.DataFrame({"image_id": [r[0] for r in rows], "label": "c0", "path": [r[2] for r in rows]}).to_csv(root / "sample_submission.csv", index=False)

    _, submission = run_pipeline(root, tmp_path, "competition.path_column=path")
    assert len(submission) == len(rows)
    assert submission["label"].isin(["c0", "c1", "c2"]).all()
