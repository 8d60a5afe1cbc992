"""What a run leaves behind: the per-epoch CSV log, curves and confusion-matrix PNGs, the summary table."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from torch import Tensor


def output_directory(path: str | os.PathLike[str]) -> Path:
    """``path`` as a directory, created when missing; a ValueError naming the file in the way when there is one."""
    out = Path(path)
    blocking = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise ValueError(f"output {out} must be a directory, but {blocking} is an existing file")
    out.mkdir(parents=True, exist_ok=True)
    return out


def refuse_existing_run(path: str | os.PathLike[str], allowed: bool) -> None:
    """A ValueError when ``path`` is a non-empty directory and writing into it is not ``allowed``: a new run never
    replaces an earlier run's checkpoint, log and weights."""
    out = Path(path)
    if allowed or not out.is_dir():
        return
    entries = sorted(entry.name for entry in out.iterdir())
    if entries:
        shown = ", ".join(entries[:4]) + (", ..." if len(entries) > 4 else "")
        raise ValueError(
            f"output {out} is not empty ({shown}): pass --exist-ok to write into it (exist_ok=true), --resume to "
            "continue the run in it, or choose another --output"
        )


def write_history(history: Sequence[Mapping[str, float]], path: str | os.PathLike[str]) -> Path:
    """The per-epoch log as CSV, one column per key of the rows (rewritten whole, so a resumed run continues
    the same file)."""
    path = Path(path)
    with path.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(history[0]) if history else [])
        writer.writeheader()
        writer.writerows(history)
    return path


def tensorboard_writer(path: str | os.PathLike[str]) -> Any:
    """A TensorBoard ``SummaryWriter`` logging to ``path`` when the ``tensorboard`` package is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(path))


def log_scalars(writer: Any, row: Mapping[str, float]) -> None:
    """One epoch's row of the history as TensorBoard scalars against the optimizer step (no-op without a writer)."""
    if writer is None:
        return
    for key, value in row.items():
        if key not in ("epoch", "step"):
            writer.add_scalar(key, value, row["step"])
    writer.flush()


def plot_curves(
    history: Sequence[Mapping[str, float]], path: str | os.PathLike[str], title: str = "", metric: str = "test_top1"
) -> Path:
    """Training/test loss and the test ``metric`` against epochs, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    figure, (loss_axis, metric_axis) = plt.subplots(1, 2, figsize=(10, 4))
    loss_axis.plot(epochs, [row["train_loss"] for row in history], marker="o", label="train")
    loss_axis.plot(epochs, [row["test_loss"] for row in history], marker="o", label="test")
    loss_axis.set(xlabel="epoch", ylabel="loss")
    loss_axis.legend()
    metric_axis.plot(epochs, [row[metric] for row in history], marker="o", color="tab:green")
    metric_axis.set(xlabel="epoch", ylabel=metric)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return Path(path)


def plot_confusion(confusion: Tensor, classes: Sequence[str], path: str | os.PathLike[str]) -> Path:
    """The confusion matrix (rows: true class, columns: predicted), as a PNG with counts in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = confusion.numpy()
    size = max(4.0, 0.5 * len(classes) + 2)
    figure, axis = plt.subplots(figsize=(size, size))
    axis.imshow(counts, cmap="Blues")
    ticks = range(len(classes))
    axis.set_xticks(ticks, classes, rotation=90)
    axis.set_yticks(ticks, classes)
    axis.set(xlabel="predicted", ylabel="true")
    if len(classes) <= 20:
        for (row, column), count in np.ndenumerate(counts):
            axis.text(
                column,
                row,
                str(count),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if count > counts.max() / 2 else "black",
            )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return Path(path)


def print_table(title: str, rows: Mapping[str, Mapping[str, object]], console: Console | None = None) -> None:
    """One row per run, one column per figure: the short report at the end of training or of the demo."""
    columns = list(dict.fromkeys(key for row in rows.values() for key in row))
    table = Table(title=title)
    table.add_column("run")
    for column in columns:
        table.add_column(column, justify="right")
    for name, row in rows.items():
        table.add_row(name, *(str(row.get(column, "")) for column in columns))
    (console or Console(width=120)).print(table)
