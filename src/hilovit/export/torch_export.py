"""``torch.export`` programs saved as ``.pt2`` files, with dynamic batch, height and width.

The file holds the program of :func:`~hilovit.export.capture.capture`; load it with
``torch.export.load(path).module()`` and call that on any ``(B, C, H, W)`` batch of at least the model's smallest
size. The parity check runs the program loaded back from the file, at batches 1 and 3 and several sizes, so it
covers serialisation and the dynamic axes too.

The tracer records every size comparison it meets as a guard that the loaded program checks on each call. Most
of those come from how fake tensors choose a convolution's memory format (``batch > 1``, ``side // 32 > 1``
for the example's sizes), not from what the graph computes, and they would refuse inputs the graph handles
(a batch of one, a small image). The file keeps the declared ranges of the dynamic axes (the smallest image the
model takes, a batch of at least one) and drops the tracer's guards; the parity check is what shows the graph
right at other batches and sizes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.export import ExportedProgram

from hilovit.export.capture import capture, export_mode, model_name
from hilovit.export.parity import (
    DEFAULT_CHECK_BATCHES,
    DEFAULT_TOLERANCE,
    ExportResult,
    check_settings,
    flatten_outputs,
    verify,
)
from hilovit.models.checkpoints import write_atomically

__all__ = ["save_program", "to_torch_export"]


def save_program(program: ExportedProgram, path: str | os.PathLike[str]) -> Path:
    """Save ``program`` to ``path`` atomically (a temporary file in the same folder, renamed when complete), with
    its dynamic-axis ranges but without the tracer's shape guards (see the module doc)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    program._guards_code = []  # the ranges stay in program.range_constraints, which the loaded module checks
    return write_atomically(path, lambda tmp: torch.export.save(program, tmp))


def to_torch_export(
    model: nn.Module,
    example: Tensor,
    path: str | Path | None = None,
    *,
    sizes: Sequence[tuple[int, int]] | None = None,
    check: bool = True,
    check_batches: int | Sequence[int] = DEFAULT_CHECK_BATCHES,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ExportResult:
    """Export ``model`` with ``torch.export`` (dynamic batch, height and width), save it and check it.

    Arguments are those of :func:`~hilovit.export.onnx.to_onnx` (without the ONNX settings); ``path``
    defaults to ``<model name>.pt2``. Nothing is written when the export fails.

    Raises:
        TypeError, ValueError: bad ``model``, ``example`` or check settings (``sizes``, ...).
        ExportError: the model cannot be exported (the message names it and why).
        ParityError: the saved program disagrees with eager PyTorch beyond ``tolerance``.
    """
    batches = check_settings(check_batches, tolerance, sizes)
    program = capture(model, example)
    name = model_name(model)
    path = save_program(program, Path(path) if path is not None else Path(f"{name}.pt2"))
    if not check:
        return ExportResult(path, None)
    loaded = torch.export.load(path).module()

    def run(x: Tensor) -> list[Tensor]:
        with torch.inference_mode():
            return flatten_outputs(loaded(x))

    with export_mode(model):
        report = verify(model, name, "torch.export", run, example, path, sizes, batches, tolerance)
    return ExportResult(path, report)
