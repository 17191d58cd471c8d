"""Submissions: template order and header, fold averaging, probability templates, validation."""

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, TensorDataset

from conftest import tiny_config
from podium.errors import PodiumError
from podium import data
from podium.data import load_test_table, read_image
from podium.engine import predict
from podium.infer import FoldModel, ensemble_probs, make_submission
from podium.model import create_model
from podium.submission import fill_template, validate_submission

CLASSES = ["cat", "dog", "eel"]


def test_template_order_and_header_kept(tmp_path):
    template = pd.DataFrame({"image_id": ["c", "a", "b"], "label": ["cat", "cat", "cat"]})
    probs = np.array([[0.1, 0.8, 0.1], [0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    submission = fill_template(template, "image_id", ["c", "a", "b"], probs, CLASSES)
    validate_submission(submission, template, "image_id", CLASSES)

    path = tmp_path / "submission.csv"
    submission.to_csv(path, index=False)
    written = pd.read_csv(path)
    assert path.read_text().splitlines()[0] == "image_id,label"
    assert written["image_id"].tolist() == ["c", "a", "b"]
    assert written["label"].tolist() == ["dog", "cat", "eel"]
    assert not any(column.startswith("Unnamed") for column in written.columns)


def test_integer_labels_stay_integers():
    template = pd.DataFrame({"id": ["1", "2"], "target": ["0", "0"]})
    submission = fill_template(template, "id", ["1", "2"], np.array([[0.9, 0.1], [0.2, 0.8]]), [3, 7])
    assert submission["target"].tolist() == [3, 7]


def test_probability_template_rows_sum_to_one():
    template = pd.DataFrame({"image_id": ["a", "b"], "dog": ["0", "0"], "cat": ["0", "0"], "eel": ["0", "0"]})
    probs = np.array([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]])
    submission = fill_template(template, "image_id", ["a", "b"], probs, CLASSES)
    validate_submission(submission, template, "image_id", CLASSES)

    assert list(submission.columns) == ["image_id", "dog", "cat", "eel"]
    assert submission[["dog", "cat", "eel"]].sum(axis=1).tolist() == pytest.approx([1.0, 1.0])
    assert submission["dog"].tolist() == pytest.approx([0.5, 0.3])


class FixedLogits(torch.nn.Module):
    """A fake fold model that returns the same logits for every image."""

    def __init__(self, logits):
        super().__init__()
        self.logits = torch.tensor(logits)

    def forward(self, images):
        return self.logits.expand(len(images), -1)


def test_fold_average_is_mean_of_softmax():
    loader = DataLoader(TensorDataset(torch.zeros(4, 3, 8, 8), torch.zeros(4)), batch_size=3)
    first, second = [2.0, 0.0, 0.0], [0.0, 0.0, 3.0]
    probs = predict([FixedLogits(first), FixedLogits(second)], loader, torch.device("cpu"), None, ["identity", "hflip"])

    expected = (torch.tensor(first).softmax(0) + torch.tensor(second).softmax(0)) / 2
    assert probs.shape == (4, 3)
    assert np.allclose(probs, expected.numpy()[None, :].repeat(4, 0))


def fold_model(config, fold: int, image_size: int) -> FoldModel:
    trained_with = OmegaConf.merge(config, {"data": {"image_size": image_size}})
    torch.manual_seed(fold)
    return FoldModel(fold, create_model(trained_with, 10, pretrained=False).eval(), trained_with, list(range(10)))


def test_ensemble_reads_images_once_per_input_size(demo_root, tmp_path, monkeypatch):
    config = tiny_config(demo_root, tmp_path, "infer.tta=[identity,hflip]")
    paths = load_test_table(config)[1]["path"].tolist()[:20]
    same_input = [fold_model(config, 0, 32), fold_model(config, 1, 32)]
    other_input = fold_model(config, 2, 48)

    reads = []
    monkeypatch.setattr(data, "read_image", lambda path, size=None: reads.append(path) or read_image(path, size))
    device = torch.device("cpu")
    together = ensemble_probs(config, [*same_input, other_input], paths, device)
    assert len(reads) == 2 * len(paths)

    alone = [ensemble_probs(config, [loaded], paths, device) for loaded in [*same_input, other_input]]
    assert np.allclose(together, np.mean(alone, axis=0), atol=1e-6)
    assert not np.allclose(alone[0], alone[1], atol=1e-3)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s.iloc[[1, 0, 2]], "different order"),
        (lambda s: s.iloc[:2], "has 2 rows"),
        (lambda s: s.assign(image_id=["c", "a", "z"]), "1 missing"),
        (lambda s: s.assign(label=["cat", "cow", "dog"]), "'cow'"),
        (lambda s: s.assign(label=["cat", None, "dog"]), "missing values"),
        (lambda s: s.rename(columns={"label": "Label"}), "differ from the sample submission"),
    ],
)
def test_validation_rejects(change, message):
    template = pd.DataFrame({"image_id": ["c", "a", "b"], "label": ["cat"] * 3})
    submission = change(template.assign(label=["cat", "dog", "eel"]))
    with pytest.raises(PodiumError, match=message):
        validate_submission(submission, template, "image_id", CLASSES)


def test_missing_test_image_fails_before_models(demo_root, tmp_path):
    (tmp_path / "outputs" / "test" / "fold0").mkdir(parents=True)
    (tmp_path / "outputs" / "test" / "fold0" / "best.pt").write_bytes(b"not loaded: the image check comes first")
    root = tmp_path / "input"
    root.mkdir()
    (root / "sample_submission.csv").write_text("image_id,label\nghost,zero\n")
    (root / "test_images").mkdir()
    config = tiny_config(root, tmp_path, "folds.n_folds=2")

    with pytest.raises(PodiumError, match=r"1 of 1 test images are missing, e\.g\. \[.*ghost.png"):
        make_submission(config, folds=[0])


def test_missing_fold_checkpoint(tmp_path):
    config = tiny_config(tmp_path, tmp_path, "folds.n_folds=2")
    with pytest.raises(PodiumError, match=r"no best.pt for folds \[0, 1\]"):
        make_submission(config)


def test_unknown_tta_view(tmp_path):
    config = tiny_config(tmp_path, tmp_path, "infer.tta=[identity,rotate]")
    with pytest.raises(PodiumError, match="infer.tta must list views"):
        make_submission(config)


def test_checkpoint_of_other_experiment(demo_root, tmp_path):
    from podium.folds import make_folds
    from podium.train import train_fold

    settings = ["competition.train_csv=train_small.csv", "folds.n_folds=2"]
    make_folds(tiny_config(demo_root, tmp_path, *settings))
    train_fold(tiny_config(demo_root, tmp_path, *settings), fold=0)
    folder = tmp_path / "outputs"
    (folder / "renamed").mkdir()
    (folder / "test" / "fold0").rename(folder / "renamed" / "fold0")

    with pytest.raises(PodiumError, match="was trained for experiment 'test', not 'renamed'"):
        make_submission(tiny_config(demo_root, tmp_path, *settings, "name=renamed"), folds=[0])
