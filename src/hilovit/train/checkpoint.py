"""Training checkpoints: everything a run needs to continue bit for bit, written atomically."""

from __future__ import annotations

import os
import pickle
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hilovit.models.checkpoints import NUMPY_STATE_GLOBALS, write_atomically

FORMAT = "hilovit-train-v1"


class TrainCheckpointError(RuntimeError):
    """A training checkpoint that cannot be read or does not belong to this run."""


class CheckpointWriteError(TrainCheckpointError):
    """A checkpoint could not be written (a full disk, say); the previous one is left as it was."""


class ForeignCheckpointError(TrainCheckpointError):
    """A readable torch file that is not a hilovit training checkpoint (other weights, say)."""


# Where checkpoints written before the task was recorded came from: their model names it.
_LEGACY_TASKS = {"hilo3d_unet": "volume", "hilo3d_video": "video"}
EVAL_COMMANDS = {
    "classification": "hilovit eval",
    "video": "hilovit video eval",
    "volume": "hilovit volume eval",
    "detect": "hilovit detect eval",
    "segment": "hilovit segment eval",
}


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
    """``torch.save`` ``obj`` to ``path`` through :func:`~hilovit.models.checkpoints.write_atomically`: never a
    half-written file.

    Raises:
        CheckpointWriteError: the file could not be written (no space left, say); ``path`` is unchanged.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_atomically(path, lambda temporary: torch.save(obj, temporary))
    except (OSError, RuntimeError) as error:  # torch.save reports a failed write (e.g. a full disk) as RuntimeError
        if isinstance(error, OSError):
            reason = error.strerror or str(error)
        else:
            free = shutil.disk_usage(path.parent).free // 2**20
            reason = f"{_first_line(error)} ({free} MiB free on its disk)"
        kept = "the previous checkpoint is unchanged" if path.exists() else "no earlier checkpoint exists"
        raise CheckpointWriteError(f"could not write checkpoint {path}: {reason}; {kept}") from error


def _first_line(error: BaseException) -> str:
    """The message of ``error`` (of what it wraps, for torch's long weights-only errors), first line only."""
    inner = error.__context__ if isinstance(error, pickle.UnpicklingError) and error.__context__ else error
    lines = str(inner).strip().splitlines()
    return lines[0] if lines else type(inner).__name__


def require_file(path: str | os.PathLike[str]) -> Path:
    """``path``, when it names a file; else a TrainCheckpointError saying that it does not exist or is a directory."""
    path = Path(path)
    if path.is_dir():
        raise TrainCheckpointError(f"checkpoint {path} is a directory; expected a file such as {path / 'last.pt'}")
    if not path.is_file():
        raise TrainCheckpointError(f"checkpoint {path} does not exist")
    return path


def load_train_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_atomic` during training, with errors that say what is wrong.

    Raises:
        TrainCheckpointError: the file is missing, corrupt or truncated;
            :class:`ForeignCheckpointError` when it is a readable torch file of another kind.
    """
    path = require_file(path)
    with path.open("rb") as stream:
        head = stream.read(4)
    if not head.startswith((b"PK\x03\x04", b"\x80")):  # torch.save's zip, or a legacy pickle
        shown = "an empty file" if not head else f"a file that starts with {head!r}"
        raise TrainCheckpointError(f"{path} is not a training checkpoint: it is {shown}; expected last.pt of a run")
    try:
        with torch.serialization.safe_globals(NUMPY_STATE_GLOBALS):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        reason = _first_line(error)
        if reason.startswith("Unsupported global"):
            raise ForeignCheckpointError(f"{path} is not a hilovit training checkpoint: {reason}") from error
        raise TrainCheckpointError(f"checkpoint {path} is corrupt or truncated: {reason}") from error
    except (RuntimeError, EOFError, OSError) as error:
        raise TrainCheckpointError(f"checkpoint {path} is corrupt or truncated: {_first_line(error)}") from error
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ForeignCheckpointError(
            f"{path} is not a hilovit training checkpoint: format {found!r}, expected {FORMAT!r}"
        )
    return state


def trained_weights(state: dict[str, Any]) -> dict[str, Any]:
    """The state dict a training checkpoint's model is evaluated with: its EMA weights when the run kept an
    average (as :attr:`~hilovit.train.loop.Trainer.eval_model`), else its weights."""
    if state.get("ema") is None:
        return state["model"]
    return {key.removeprefix("module."): value for key, value in state["ema"].items()}


def checkpoint_task(state: dict[str, Any]) -> str:
    """The task a training checkpoint belongs to (a key of :data:`EVAL_COMMANDS`): as recorded, else (older
    checkpoints) from its model."""
    arch = state.get("arch", {})
    if "task" in state:
        return state["task"]
    if "task" in arch:  # detection and segmentation checkpoints record it in their arch
        return arch["task"]
    name = str(arch.get("model_name", ""))
    return next((task for prefix, task in _LEGACY_TASKS.items() if name.startswith(prefix)), "classification")


def check_task(state: dict[str, Any], task: str, path: str | os.PathLike[str]) -> None:
    """Refuse a checkpoint of another task than ``task``, naming its task, its model and the command it needs."""
    found = checkpoint_task(state)
    if found != task:
        arch = state.get("arch", {})
        model = arch.get("model_name") or arch.get("model")
        raise TrainCheckpointError(
            f"{path} is a {found} checkpoint (model {model}), not a {task} one; "
            f"evaluate it with `{EVAL_COMMANDS.get(found, 'its own command')}`"
        )


def check_architecture(saved: dict[str, Any], current: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Refuse to resume a run whose model differs from the checkpoint's, naming the differing settings."""
    keys = sorted({*saved, *current})
    diffs = [
        f"{k}: checkpoint {saved.get(k)!r}, now {current.get(k)!r}" for k in keys if saved.get(k) != current.get(k)
    ]
    if diffs:
        raise TrainCheckpointError(f"cannot resume from {path}: the model differs ({'; '.join(diffs)})")
