"""The training loop reads values back to the host only at the logging interval."""

import sys

import torch

from conftest import tiny_config
from test_accumulation import train_one_epoch
from podium import engine
from podium.data import load_train_table


def test_host_reads_only_when_logging(demo_root, tmp_path, monkeypatch):
    # 20 micro-batches of 2, one update each, logged every 10 micro-batches (the Trainer default),
    # so the loop flushes its buffered losses at micro-batches 1, 11 and 20.
    config = tiny_config(demo_root, tmp_path, "data.batch_size=2")
    table, classes = load_train_table(config)
    reads = []
    for name in ("item", "tolist"):
        original = getattr(torch.Tensor, name)

        def counted(tensor, original=original, name=name):
            if sys._getframe(1).f_code.co_filename == engine.__file__:
                reads.append(name)
            return original(tensor)

        monkeypatch.setattr(torch.Tensor, name, counted)

    _, state, _, batch_sizes = train_one_epoch(config, table.head(40).reset_index(drop=True), classes)

    assert len(batch_sizes) == 20
    assert state.updates == 20
    assert reads.count("tolist") == 3
    assert reads.count("item") == 4
