"""DDP through torchrun on the CPU (gloo backend, two processes) against a single process."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from conftest import REPO
from podium.loaders import EpochBatchSampler

pytestmark = pytest.mark.slow


def podium_command(demo_root, out, command, processes, *overrides):
    launcher = [sys.executable, "-m", "podium.cli"]
    if processes > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}", "-m", "podium.cli"]
    return [
        *launcher, command, "--config", str(REPO / "configs" / "default.yaml"),
        "name=ddp", f"competition.root={demo_root}", f"output_dir={out}", f"folds.file={out / 'folds.csv'}",
        "data.image_size=32", "data.num_workers=0", "data.augment=[]", "train.precision=fp32", "tracking.wandb=false",
        "competition.group_column=null", "folds.n_folds=2", *overrides,
    ]


def run(command, cwd):
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def odd_table(demo_root):
    """101 rows without groups: StratifiedKFold gives fold 0 an odd 51 validation rows."""
    pd.read_csv(demo_root / "train.csv").head(101).to_csv(demo_root / "train_odd.csv", index=False)
    return "competition.train_csv=train_odd.csv"


def test_sampler_shards_cover_each_sample_once():
    shards = [EpochBatchSampler(37, 4, seed=1, rank=rank, world=2) for rank in range(2)]
    for shard in shards:
        shard.set_epoch(3)
    seen = sorted(index for shard in shards for batch in shard.batches() for index in batch)
    single = EpochBatchSampler(37, 8, seed=1)
    single.set_epoch(3)
    assert seen == list(range(37))
    assert shards[0].window_samples(2) == single.window_samples(2)
    assert len(shards[0]) == len(shards[1]) == len(single)
    assert min(min(shard.batch_sizes()) for shard in shards) >= 2


def test_two_processes_match_one(demo_root, tmp_path, odd_table):
    # Same global batch (20 = 2 x 10), seed and model; test_convnext has no BatchNorm and no dropout here.
    # The 50 training rows make batches of 20, 20 and 10, so no small last batch is merged.
    common = [odd_table, "model.name=test_convnext", "model.channels_last=false", "train.epochs=2", "optim.lr=3e-3"]
    one, two = tmp_path / "one", tmp_path / "two"
    for out in (one, two):
        out.mkdir()
        run(podium_command(demo_root, out, "folds", 1, *common), out)
    run(podium_command(demo_root, one, "train", 1, *common, "data.batch_size=20"), one)
    two_log = run(podium_command(demo_root, two, "train", 2, *common, "data.batch_size=10"), two)

    single = json.loads((one / "ddp" / "fold0" / "metrics.json").read_text())["history"]
    ddp = json.loads((two / "ddp" / "fold0" / "metrics.json").read_text())["history"]
    assert "global batch 20 = 10 x 2 processes" in two_log.stderr
    assert ddp[0]["train_loss"] == pytest.approx(single[0]["train_loss"], rel=1e-4)
    assert ddp[-1]["valid_loss"] == pytest.approx(single[-1]["valid_loss"], rel=1e-3)
    assert ddp[-1]["valid_f1_macro"] == pytest.approx(single[-1]["valid_f1_macro"], abs=0.02)

    oof = pd.read_csv(two / "ddp" / "fold0" / "oof.csv", dtype={"id": str})
    folds = pd.read_csv(two / "folds.csv", dtype={"id": str})
    expected = sorted(folds.loc[folds["fold"] == 0, "id"])
    assert len(expected) % 2 == 1
    assert sorted(oof["id"]) == expected
    assert oof["id"].is_unique


def test_only_rank_zero_writes(demo_root, tmp_path, odd_table):
    run(podium_command(demo_root, tmp_path, "folds", 1, odd_table), tmp_path)
    logs = tmp_path / "torchrun-logs"
    command = podium_command(demo_root, tmp_path, "train", 2, odd_table, "model.name=test_resnet", "train.epochs=1", "tracking.wandb=true")
    command[3:3] = ["--log-dir", str(logs), "--redirects", "3"]
    run(command, tmp_path)

    fold = tmp_path / "ddp" / "fold0"
    rank_logs = {path.parent.name: path.read_text() for path in logs.rglob("stderr.log")}
    assert sorted(item.name for item in fold.iterdir()) == ["best.pt", "config.yaml", "curves.png", "last.pt", "metrics.json", "oof.csv", "train.log"]
    assert len(list((tmp_path / "wandb").glob("offline-run-*"))) == 1
    assert "fold 0 epoch 1/1" in rank_logs["0"]
    assert "fold 0 epoch 1/1" not in rank_logs["1"]

    # Resume under DDP: both processes restore last.pt and train the second epoch.
    resume = podium_command(demo_root, tmp_path, "train", 2, odd_table, "model.name=test_resnet", "train.epochs=2")
    resume.insert(resume.index("train") + 1, "--resume")
    run(resume, tmp_path)
    history = json.loads((fold / "metrics.json").read_text())["history"]
    assert [record["epoch"] for record in history] == [1, 2]


def test_parallel_folds_one_per_process(demo_root, tmp_path, odd_table):
    run(podium_command(demo_root, tmp_path, "folds", 1, odd_table), tmp_path)
    command = podium_command(demo_root, tmp_path, "train-all", 2, odd_table, "model.name=test_resnet", "train.epochs=1")
    command.insert(command.index("train-all") + 1, "--parallel-folds")
    run(command, tmp_path)
    for fold in (0, 1):
        assert (tmp_path / "ddp" / f"fold{fold}" / "best.pt").is_file()
