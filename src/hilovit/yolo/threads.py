"""Keep torch's thread count when ultralytics is imported.

``import ultralytics`` sets ``OMP_NUM_THREADS=1`` when it is unset, to keep its data-loader workers lean. A torch
that initialises afterwards (ultralytics imported first) then computes on one thread, and subprocesses inherit
the variable. ultralytics' ``select_device`` also sets torch to ``cpu_count() - 1`` threads on every CPU
train/val/predict/export call (1 on a 2-core machine): :func:`compute_on_current_threads` sets the count back
before the computation, and :func:`hilovit.speed.fixed_threads` around such calls restores it afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from ultralytics.engine.model import Model

__all__ = ["compute_on_current_threads", "undo_ultralytics_thread_default"]

#: ultralytics' events that follow its ``select_device`` call and precede the computation, in the trainer,
#: validator, predictor and exporter
AFTER_SELECT_DEVICE = ("on_pretrain_routine_start", "on_val_start", "on_predict_start", "on_export_start")


def _started_with(name: str) -> bool | None:
    """Whether the process was started with ``name`` in its environment; None where that cannot be read.

    ``os.environ`` cannot tell: it is changed in place by assignments. Linux keeps the initial block in /proc.
    """
    try:
        initial = Path("/proc/self/environ").read_bytes()
    except OSError:
        return None
    return any(entry.startswith(f"{name}=".encode()) for entry in initial.split(b"\0"))


def undo_ultralytics_thread_default() -> None:
    """Drop an ``OMP_NUM_THREADS=1`` that the process was not started with, and give torch its default threads back.

    Where the initial environment cannot be read (not Linux), nothing is changed.

    torch's default intra-op thread count (the physical cores) is also its default inter-op count, which
    ``OMP_NUM_THREADS`` does not change, so that is the count restored.
    """
    if os.environ.get("OMP_NUM_THREADS") != "1" or _started_with("OMP_NUM_THREADS") is not False:
        return
    del os.environ["OMP_NUM_THREADS"]
    if torch.get_num_threads() == 1:
        torch.set_num_threads(torch.get_num_interop_threads())


def compute_on_current_threads(yolo: Model) -> None:
    """Make ``yolo``'s train, val, predict and export calls compute on torch's current thread count instead of the
    ``cpu_count() - 1`` that ultralytics' ``select_device`` sets."""
    threads = torch.get_num_threads()
    for event in AFTER_SELECT_DEVICE:
        yolo.add_callback(event, lambda _: torch.set_num_threads(threads))
