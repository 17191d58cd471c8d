"""Training one fold: checkpoints, out-of-fold predictions, resume and errors."""

import pandas as pd
import pytest
import torch

from conftest import tiny_config
from podium import train as train_module
from podium.checkpoint import load_checkpoint
from podium.errors import PodiumError
from podium.folds import make_folds
from podium.model import create_model
from podium.optim import LRSchedule
from podium.train import FoldRun, train_fold


@pytest.mark.slow
def test_demo_fold_learns(demo_root, tmp_path):
    config = tiny_config(demo_root, tmp_path, "train.epochs=3", "optim.lr=3e-3")
    make_folds(config)
    best = train_fold(config, fold=0)

    folder = tmp_path / "outputs" / "test" / "fold0"
    folds = pd.read_csv(folder.parent.parent / "folds.csv", dtype={"id": str})
    oof = pd.read_csv(folder / "oof.csv", dtype={"id": str})
    checkpoint = load_checkpoint(folder / "best.pt")

    assert best["valid_f1_macro"] > 0.5  # chance is about 0.1 for 10 classes
    assert (folder / "last.pt").is_file()
    assert sorted(oof["id"]) == sorted(folds.loc[folds["fold"] == 0, "id"])
    assert oof["id"].is_unique
    assert checkpoint["train_state"]["best"] == pytest.approx(best["valid_f1_macro"])
    assert checkpoint["classes"] == sorted(folds["label"].unique())
    assert (oof["label"] == oof["pred"]).mean() == pytest.approx(best["valid_accuracy"])


def record_learning_rates(monkeypatch) -> list[float]:
    rates = []
    original = LRSchedule.before_update

    def before_update(self, update):
        original(self, update)
        rates.append(self.current_lr())

    monkeypatch.setattr(LRSchedule, "before_update", before_update)
    return rates


@pytest.mark.slow
def test_resume_matches_uninterrupted(demo_root, tmp_path, monkeypatch):
    # Augmentations, dropout and shuffling all draw random numbers; resume must restore each stream.
    settings = [
        "competition.train_csv=train_small.csv", "folds.n_folds=2", "train.epochs=4", "train.deterministic=true",
        "model.drop_rate=0.2", "data.augment=[{name: Affine, translate_percent: [-0.1, 0.1], p: 0.8}]",
    ]
    straight = tiny_config(demo_root, tmp_path / "straight", *settings)
    resumed = tiny_config(demo_root, tmp_path / "resumed", *settings)
    make_folds(straight)
    make_folds(resumed)

    straight_rates = record_learning_rates(monkeypatch)
    train_fold(straight, fold=0)
    monkeypatch.undo()

    resumed_rates = record_learning_rates(monkeypatch)
    run_epoch = FoldRun.run_epoch

    def stop_after_two_epochs(self):
        if self.state.epoch == 2:
            raise KeyboardInterrupt
        return run_epoch(self)

    monkeypatch.setattr(FoldRun, "run_epoch", stop_after_two_epochs)
    with pytest.raises(KeyboardInterrupt):
        train_fold(resumed, fold=0)
    monkeypatch.setattr(FoldRun, "run_epoch", run_epoch)
    train_fold(resumed, fold=0, resume_run=True)

    final = load_checkpoint(tmp_path / "straight" / "outputs" / "test" / "fold0" / "last.pt")
    again = load_checkpoint(tmp_path / "resumed" / "outputs" / "test" / "fold0" / "last.pt")
    assert resumed_rates == pytest.approx(straight_rates, rel=1e-12)
    assert final["train_state"]["updates"] == again["train_state"]["updates"]
    for name, value in final["model"].items():
        assert torch.equal(value, again["model"][name]), f"{name} differs after resume"
    assert final["train_state"]["history"][-1]["valid_f1_macro"] == again["train_state"]["history"][-1]["valid_f1_macro"]


def test_interrupt_says_how_to_resume(demo_root, tmp_path, monkeypatch, caplog):
    config = tiny_config(demo_root, tmp_path, "competition.train_csv=train_small.csv", "folds.n_folds=2", "train.epochs=2")
    make_folds(config)
    run_epoch = FoldRun.run_epoch

    def interrupt_second_epoch(self):
        if self.state.epoch == 1:
            raise KeyboardInterrupt
        return run_epoch(self)

    monkeypatch.setattr(FoldRun, "run_epoch", interrupt_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_fold(config, fold=1)
    assert "interrupted during epoch 2" in caplog.text
    assert "last.pt holds epoch 1. Continue with: make train FOLD=1 RESUME=1" in caplog.text
    assert load_checkpoint(tmp_path / "outputs" / "test" / "fold1" / "last.pt")["train_state"]["epoch"] == 1


def test_fold_out_of_range(demo_root, tmp_path):
    config = tiny_config(demo_root, tmp_path, "competition.train_csv=train_small.csv", "folds.n_folds=2")
    make_folds(config)
    with pytest.raises(PodiumError, match="FOLD=2 is out of range: folds.n_folds is 2, so folds are 0 to 1"):
        train_fold(config, fold=2)
    assert not (tmp_path / "outputs" / "test" / "fold2").exists()


def test_missing_folds_file(demo_root, tmp_path):
    with pytest.raises(PodiumError, match="Run `make folds` first"):
        train_fold(tiny_config(demo_root, tmp_path), fold=0)


def test_resume_without_checkpoint(demo_root, tmp_path):
    config = tiny_config(demo_root, tmp_path, "competition.train_csv=train_small.csv", "folds.n_folds=2")
    make_folds(config)
    with pytest.raises(PodiumError, match="checkpoint not found: .*last.pt"):
        train_fold(config, fold=0, resume_run=True)


def test_early_stopping(demo_root, tmp_path):
    # A zero learning rate never improves after the first epoch, so patience 1 stops at epoch 2.
    config = tiny_config(demo_root, tmp_path, "competition.train_csv=train_small.csv", "folds.n_folds=2", "train.epochs=5", "train.patience=1", "optim.lr=0.0", "schedule.name=constant", "schedule.warmup_updates=0")
    make_folds(config)
    train_fold(config, fold=0)
    state = load_checkpoint(tmp_path / "outputs" / "test" / "fold0" / "last.pt")["train_state"]
    assert state["epoch"] == 2
    assert state["best_epoch"] == 1


def test_unknown_model_suggests_names(tmp_path):
    config = tiny_config(tmp_path, tmp_path, "model.name=resnet181")
    with pytest.raises(PodiumError, match=r"unknown timm model 'resnet181'.*resnet18"):
        create_model(config, 3)


def test_pretrained_offline_explains_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = tiny_config(tmp_path, tmp_path, "model.name=resnet18", "model.pretrained=true")
    with pytest.raises(PodiumError, match="set model.pretrained_file to the local"):
        create_model(config, 3)


def test_pretrained_file_loads(tmp_path):
    weights = tmp_path / "weights.pth"
    torch.save(create_model(tiny_config(tmp_path, tmp_path), 1000, pretrained=False).state_dict(), weights)
    config = tiny_config(tmp_path, tmp_path, "model.pretrained=true", f"model.pretrained_file={weights}")
    model = create_model(config, 3)
    assert model.get_classifier().out_features == 3


class ExplodingLoss(torch.nn.Module):
    """Cross-entropy that returns NaN for its second micro-batch."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, logits, target):
        self.calls += 1
        loss = torch.nn.functional.cross_entropy(logits, target, reduction="none")
        return loss * float("nan") if self.calls == 2 else loss


def test_nonfinite_loss_stops_with_step(demo_root, tmp_path, monkeypatch):
    config = tiny_config(demo_root, tmp_path, "competition.train_csv=train_small.csv", "folds.n_folds=2", "data.batch_size=8")
    make_folds(config)
    monkeypatch.setattr(train_module, "build_loss", lambda *args: ExplodingLoss())
    with pytest.raises(PodiumError, match=r"non-finite training loss \(nan\) at fold 0 epoch 1, micro-batch 2, after 1 updates"):
        train_fold(config, fold=0)
    assert not (tmp_path / "outputs" / "test" / "fold0" / "last.pt").exists()
    assert not (tmp_path / "outputs" / "test" / "fold0" / "best.pt").exists()


def test_nonfinite_loss_skipped_and_counted(demo_root, tmp_path, monkeypatch):
    config = tiny_config(demo_root, tmp_path, "competition.train_csv=train_small.csv", "folds.n_folds=2", "data.batch_size=8", "train.skip_nonfinite=true")
    make_folds(config)
    monkeypatch.setattr(train_module, "build_loss", lambda *args: ExplodingLoss())
    best = train_fold(config, fold=0)
    state = load_checkpoint(tmp_path / "outputs" / "test" / "fold0" / "last.pt")["train_state"]
    assert state["skipped_updates"] == 1
    assert best["train_loss"] == best["train_loss"]  # the NaN batch is left out of the mean
    assert all(torch.isfinite(value).all() for value in load_checkpoint(tmp_path / "outputs" / "test" / "fold0" / "last.pt")["model"].values() if value.is_floating_point())


def test_resume_from_truncated_checkpoint(demo_root, tmp_path):
    config = tiny_config(demo_root, tmp_path, "competition.train_csv=train_small.csv", "folds.n_folds=2")
    make_folds(config)
    train_fold(config, fold=0)
    last = tmp_path / "outputs" / "test" / "fold0" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    with pytest.raises(PodiumError, match="cannot read checkpoint .*last.pt.*truncated"):
        train_fold(config, fold=0, resume_run=True)


def test_resume_rejects_other_experiment(demo_root, tmp_path):
    config = tiny_config(demo_root, tmp_path, "competition.train_csv=train_small.csv", "folds.n_folds=2")
    make_folds(config)
    train_fold(config, fold=0)
    other = tiny_config(demo_root, tmp_path, "competition.train_csv=train_small.csv", "folds.n_folds=2", "competition.classes=[zero,one,two,three,four,five,six,seven,eight,nine,ten]")
    with pytest.raises(PodiumError, match="belongs to experiment 'test' with classes"):
        train_fold(other, fold=0, resume_run=True)
