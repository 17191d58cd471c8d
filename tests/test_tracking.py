"""W&B runs (real wandb, offline), the local leaderboard and the pictures of a run."""

import logging
from pathlib import Path

import pytest
import wandb

from conftest import tiny_config
from podium.folds import make_folds
from podium.leaderboard import leaderboard
from podium.plots import save_lr_plot
from podium.report import oof_report
from podium.tracking import default_to_offline
from podium.train import train_all, train_fold
from wandb_records import read_records, run_summary

SMALL = ["competition.train_csv=train_small.csv", "folds.n_folds=2", "train.epochs=2"]


def run_files(out: Path) -> list[Path]:
    return sorted(out.glob("outputs/wandb/offline-run-*/run-*.wandb"))


@pytest.mark.slow
def test_one_offline_run_per_fold(demo_root, tmp_path):
    config = tiny_config(demo_root, tmp_path, *SMALL, "tracking.wandb=true", "tracking.log_checkpoints=true")
    make_folds(config)
    train_all(config)

    runs = [run_summary(path) for path in run_files(tmp_path)]
    record_types = {record.WhichOneof("record_type") for path in run_files(tmp_path) for record in read_records(path)}
    assert "artifact" in record_types
    assert sorted(run["name"] for run in runs) == ["test-fold0", "test-fold1"]
    for run in runs:
        assert run["group"] == "test"
        assert run["job_type"] == "train"
        assert run["config"]["optim"]["lr"] == config.optim.lr
        assert "git_commit" in run["config"]
        assert run["summary"]["monitor"] == "valid_f1_macro"
        assert run["summary"]["best_epoch"] in (1, 2)
        assert 0.0 <= run["summary"]["best"] <= 1.0
        assert any("train/loss" in row for row in run["history"])
        assert any("epoch/valid_f1_macro" in row for row in run["history"])


@pytest.mark.slow
def test_report_run_holds_cv(demo_root, tmp_path):
    config = tiny_config(demo_root, tmp_path, *SMALL)
    make_folds(config)
    train_all(config)
    report = oof_report(tiny_config(demo_root, tmp_path, *SMALL, "tracking.wandb=true"))

    runs = [run_summary(path) for path in run_files(tmp_path)]
    assert [run["job_type"] for run in runs] == ["report"]
    assert runs[0]["summary"]["cv_f1_macro"] == pytest.approx(report["cv"]["f1_macro"])
    logged = {key for row in runs[0]["history"] for key in row}
    assert "oof/confusion_matrix_table/_type" in logged
    assert "oof/per_class/_type" in logged


def test_wandb_off_writes_nothing(demo_root, tmp_path):
    config = tiny_config(demo_root, tmp_path, "competition.train_csv=train_small.csv", "folds.n_folds=2")
    make_folds(config)
    train_fold(config, fold=0)
    assert not (tmp_path / "outputs" / "wandb").exists()


def test_wandb_failure_never_stops_training(demo_root, tmp_path, monkeypatch, caplog):
    config = tiny_config(demo_root, tmp_path, *SMALL, "tracking.wandb=true")
    make_folds(config)

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(wandb.sdk.wandb_run.Run, "log", full_disk)
    with caplog.at_level(logging.WARNING):
        best = train_fold(config, fold=0)
    failures = [record for record in caplog.records if "W&B log failed" in record.message]
    assert best["epoch"] in (1, 2)
    assert len(failures) == 1
    assert "No space left on device" in failures[0].message


def test_wandb_start_failure_never_stops_training(demo_root, tmp_path, monkeypatch, caplog):
    config = tiny_config(demo_root, tmp_path, *SMALL, "tracking.wandb=true")
    make_folds(config)
    monkeypatch.setattr(wandb, "init", lambda **kwargs: (_ for _ in ()).throw(RuntimeError("service crashed")))
    with caplog.at_level(logging.WARNING):
        train_fold(config, fold=0)
    assert "W&B start failed" in caplog.text


@pytest.mark.parametrize(
    "environment, netrc, expected",
    [
        ({}, "", "offline"),
        ({"WANDB_MODE": "online"}, "", "online"),
        ({"WANDB_API_KEY": "x" * 40}, "", None),
        ({}, "machine api.wandb.ai\n  login user\n  password secret\n", None),
    ],
)
def test_offline_unless_user_opted_in(tmp_path, monkeypatch, environment, netrc, expected):
    for name in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "netrc").write_text(netrc)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))

    default_to_offline()
    import os

    assert os.environ.get("WANDB_MODE") == expected


@pytest.mark.slow
def test_leaderboard_and_pictures(demo_root, tmp_path):
    for name, lr in (("slow", "1e-5"), ("fast", "3e-3")):
        config = tiny_config(demo_root, tmp_path, *SMALL, f"name={name}", f"optim.lr={lr}")
        make_folds(config)
        train_all(config)
    oof_report(config)
    save_lr_plot(config)

    table = leaderboard(tmp_path / "outputs")
    experiment = tmp_path / "outputs" / "fast"
    assert table["experiment"].tolist() == ["fast", "slow"]
    assert table.loc[0, "model"] == "test_resnet"
    assert "| fast " in (tmp_path / "outputs" / "leaderboard.md").read_text()
    for picture in ["fold0/curves.png", "fold1/curves.png", "confusion_matrix.png", "per_class_f1.png", "confident_errors.png", "lr_schedule.png"]:
        assert (experiment / picture).stat().st_size > 5000, picture
