"""Checkpoints as plain Python types and tensors: written atomically, read with weights_only=True."""

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

from podium.errors import PodiumError


def save_checkpoint(state: dict, path: Path) -> None:
    """Write `state` to a temporary file in the same folder, then rename it over `path`.

    os.replace is atomic on one file system, so a crash mid-write leaves the previous file intact.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(state, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def remove_partial_writes(folder: Path) -> list[Path]:
    """Delete temporary files that a process killed mid-write left in `folder`; return them."""
    leftovers = sorted(folder.glob(".*.pt.*.tmp"))
    for path in leftovers:
        path.unlink()
    return leftovers


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint with weights_only=True; a missing or damaged file is a PodiumError naming it."""
    if not path.is_file():
        raise PodiumError(f"checkpoint not found: {path}. Train this fold first (make train FOLD=...).")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise PodiumError(f"cannot read checkpoint {path}: {error}. The file is truncated or not a podium checkpoint; delete it or train again.") from error


def unwrap_state_dict(state_dict: dict) -> dict:
    """Strip the `module.` prefix that DistributedDataParallel adds, so the bare model loads it."""
    prefix = "module."
    if state_dict and all(key.startswith(prefix) for key in state_dict):
        return {key[len(prefix):]: value for key, value in state_dict.items()}
    return state_dict


def rng_state() -> dict:
    """Capture Python's, NumPy's and torch's random states as types weights_only loading accepts."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [kind, keys.tolist(), position, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
