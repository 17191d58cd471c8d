"""Checkpoints: atomic writes, weights_only loading, DDP prefixes and damaged files."""

import pytest
import torch

from podium import checkpoint
from podium.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state, unwrap_state_dict
from podium.errors import PodiumError


def test_crash_mid_write_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "best.pt"
    save_checkpoint({"epoch": 1, "weight": torch.ones(3)}, path)

    def write_half_then_crash(state, file):
        file.write(b"PK\x03\x04 half of a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.torch, "save", write_half_then_crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"epoch": 2, "weight": torch.zeros(3)}, path)
    monkeypatch.undo()

    assert load_checkpoint(path)["epoch"] == 1
    assert [item.name for item in tmp_path.iterdir()] == ["best.pt"]


def test_weights_only_round_trip(tmp_path):
    model = torch.nn.Linear(2, 3)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "rng": rng_state(), "classes": ["a", "b", "c"], "config": {"optim": {"lr": 0.1}}}
    save_checkpoint(state, tmp_path / "last.pt")

    loaded = torch.load(tmp_path / "last.pt", weights_only=True)
    assert loaded["classes"] == ["a", "b", "c"]
    assert torch.equal(loaded["model"]["weight"], model.weight.detach())


def test_rng_state_restores_draws():
    state = rng_state()
    first = torch.rand(3)
    set_rng_state(state)
    assert torch.equal(torch.rand(3), first)


def test_module_prefix_stripped():
    bare = torch.nn.Linear(2, 2)
    prefixed = {f"module.{key}": value for key, value in bare.state_dict().items()}
    torch.nn.Linear(2, 2).load_state_dict(unwrap_state_dict(prefixed))
    assert set(unwrap_state_dict(prefixed)) == {"weight", "bias"}


def test_truncated_checkpoint_names_file(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint({"weight": torch.ones(1000)}, path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(PodiumError, match="cannot read checkpoint .*last.pt"):
        load_checkpoint(path)


def test_missing_checkpoint_says_train_first(tmp_path):
    with pytest.raises(PodiumError, match="checkpoint not found: .*best.pt. Train this fold first"):
        load_checkpoint(tmp_path / "best.pt")


def test_partial_writes_removed(tmp_path):
    save_checkpoint({"epoch": 1}, tmp_path / "last.pt")
    leftover = tmp_path / ".last.pt.abc123.tmp"
    leftover.write_bytes(b"half")
    assert checkpoint.remove_partial_writes(tmp_path) == [leftover]
    assert [item.name for item in tmp_path.iterdir()] == ["last.pt"]
