"""``torch.export`` programs saved as ``.pt2`` files, with dynamic batch, height and width.

The file holds the program of :func:`~hilovit.export.capture.capture`; load it with
``torch.export.load(path).module()`` and call that on any ``(B, C, H, W)`` batch. The parity check runs
the program loaded back from the file, so it covers serialisation too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from hilovit.export.capture import capture, export_mode, model_name
from hilovit.export.parity import DEFAULT_TOLERANCE, ExportResult, check_settings, flatten_outputs, verify

__all__ = ["to_torch_export"]


def to_torch_export(
    model: nn.Module,
    example: Tensor,
    path: str | Path | None = None,
    *,
    sizes: Sequence[tuple[int, int]] | None = None,
    check: bool = True,
    check_batch: int = 1,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ExportResult:
    """Export ``model`` with ``torch.export`` (dynamic batch, height and width), save it and check it.

    Arguments are those of :func:`~hilovit.export.onnx.to_onnx` (without the ONNX settings); ``path``
    defaults to ``<model name>.pt2``.

    Raises:
        TypeError, ValueError: bad ``model``, ``example`` or check settings (``sizes``, ...).
        ExportError: the model cannot be exported (the message names it and why).
        ParityError: the saved program disagrees with eager PyTorch beyond ``tolerance``.
    """
    check_settings(check_batch, tolerance, sizes)
    program = capture(model, example)
    name = model_name(model)
    path = Path(path) if path is not None else Path(f"{name}.pt2")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, path)
    if not check:
        return ExportResult(path, None)
    loaded = torch.export.load(path).module()

    def run(x: Tensor) -> list[Tensor]:
        with torch.inference_mode():
            return flatten_outputs(loaded(x))

    with export_mode(model):
        report = verify(model, name, "torch.export", run, example, path, sizes, check_batch, tolerance)
    return ExportResult(path, report)
