"""Training checkpoints: everything a run needs to continue bit for bit, written atomically."""

from __future__ import annotations

import os
import pickle
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT = "hilovit-train-v1"


class TrainCheckpointError(RuntimeError):
    """A training checkpoint that cannot be read or does not belong to this run."""


def rng_state() -> dict[str, Any]:
    """The states of python's, numpy's, torch's and (when present) CUDA's random generators."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_atomic(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` to a temporary file next to ``path``, then ``os.replace``: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(obj, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def load_train_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_atomic` during training, with errors that say what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise TrainCheckpointError(f"checkpoint {path} does not exist")
    try:
        # RNG states hold numpy arrays and python tuples: this file is trusted output of our own training.
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as error:
        raise TrainCheckpointError(f"checkpoint {path} is corrupt or not a torch file: {error}") from error
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise TrainCheckpointError(
            f"{path} is not a hilovit training checkpoint: format {found!r}, expected {FORMAT!r}"
        )
    return state


def check_architecture(saved: dict[str, Any], current: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Refuse to resume a run whose model differs from the checkpoint's, naming the differing settings."""
    keys = sorted({*saved, *current})
    diffs = [
        f"{k}: checkpoint {saved.get(k)!r}, now {current.get(k)!r}" for k in keys if saved.get(k) != current.get(k)
    ]
    if diffs:
        raise TrainCheckpointError(f"cannot resume from {path}: the model differs ({'; '.join(diffs)})")
