"""The whole pipeline on the demo competition with a tiny model and two folds."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from conftest import REPO, tiny_config
from podium.baseline import svc_baseline
from podium.folds import make_folds
from podium.infer import make_submission
from podium.report import oof_report, score_submission
from podium.train import train_all


@pytest.mark.slow
def test_demo_pipeline(demo_root, tmp_path):
    config = tiny_config(demo_root, tmp_path, "folds.n_folds=2", "train.epochs=3", "optim.lr=3e-3", "infer.tta=[identity,hflip]")
    make_folds(config)
    results = train_all(config)
    report = oof_report(config)
    path = make_submission(config)
    scores = score_submission(config)

    experiment = tmp_path / "outputs" / "test"
    submission = pd.read_csv(path, dtype=str)
    template = pd.read_csv(demo_root / "sample_submission.csv", dtype=str)
    assert len(results) == 2
    assert report["rows"] == len(pd.read_csv(demo_root / "train.csv"))
    assert report["cv"]["f1_macro"] > 0.5
    assert list(submission.columns) == list(template.columns)
    assert submission["image_id"].tolist() == template["image_id"].tolist()
    assert scores["f1_macro"] > 0.5  # chance is about 0.1
    for name in ["report.md", "report.json", "oof.csv", "confusion_matrix.png", "per_class_f1.png"]:
        assert (experiment / name).stat().st_size > 0, name
    assert json.loads((experiment / "test_score.json").read_text())["f1_macro"] == scores["f1_macro"]
    assert (tmp_path / "submissions" / "test_probs.csv").is_file()
    assert svc_baseline(config)["cv_f1_macro"] > 0.5

    subset = oof_report(config, folds=[1])
    assert subset["rows"] < report["rows"]
    assert (experiment / "oof_folds1" / "report.json").is_file()
    assert json.loads((experiment / "report.json").read_text())["rows"] == report["rows"]


def run_cli(*arguments, cwd):
    return subprocess.run([sys.executable, "-m", "podium.cli", *arguments], cwd=cwd, capture_output=True, text=True)


def test_cli_unknown_key_exits_2(tmp_path):
    result = run_cli("folds", "--config", str(REPO / "configs" / "demo.yaml"), "optim.lrr=1", cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown config key 'optim.lrr' in the command line: did you mean 'optim.lr'?" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_lr_plot(demo_root, tmp_path):
    result = run_cli("lr-plot", "--config", str(REPO / "configs" / "demo.yaml"), f"competition.root={demo_root}", f"output_dir={tmp_path}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "demo" / "lr_schedule.png").stat().st_size > 1000


@pytest.mark.parametrize("text", [",", "0,x"])
def test_cli_invalid_folds_exits_2(tmp_path, text):
    result = run_cli("infer", "--config", str(REPO / "configs" / "demo.yaml"), "--folds", text, cwd=tmp_path)
    assert result.returncode == 2
    assert f"invalid FOLDS={text!r}: give fold numbers separated by commas" in result.stderr
