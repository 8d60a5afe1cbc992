"""ONNX export with dynamic batch, height and width, checked with onnxruntime.

The exporter is ``torch.onnx.export(..., dynamo=True)`` applied to the ``torch.export`` program of
:func:`~hilovit.export.capture.capture`. The TorchScript-based exporter (``dynamo=False``, deprecated
since PyTorch 2.9) is not used: tracing records Python shape arithmetic as constants, and with torch
2.14 its graph of HiLo does not even load in onnxruntime 1.32 (a ``Transpose`` with an invalid
``perm``). The dynamo exporter (it needs ``onnxscript``) keeps sizes symbolic, so one graph serves every
size, and writes standard ONNX operators only: the deformable token merging becomes
``GatherND``/``Mul``/``ReduceSum``/``MatMul``, no custom op.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from hilovit.export.capture import ExportError, capture, describe_error, export_mode, model_name
from hilovit.export.parity import DEFAULT_CHECK_BATCHES, DEFAULT_TOLERANCE, ExportResult, check_settings, verify
from hilovit.models.checkpoints import write_atomically

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "onnxruntime_runner", "to_onnx"]

DEFAULT_OPSET = 18
# Older opsets need the ONNX version converter, which has no adapter for Pad and silently keeps opset 18.
MIN_OPSET = 18
INPUT_NAME = "input"


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError as error:
        raise ImportError("the ONNX parity check needs onnxruntime: pip install 'hilovit[onnx]'") from error
    return onnxruntime


def onnxruntime_runner(path: str | Path, threads: int | None = None) -> Callable[[Tensor], list[Tensor]]:
    """A CPU onnxruntime session of ``path`` as a function ``Tensor -> list[Tensor]``."""
    ort = _onnxruntime()
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # no busy-waiting between calls: PyTorch's threads in the same process keep their cores
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(x: Tensor) -> list[Tensor]:
        return [torch.from_numpy(out) for out in session.run(None, {name: x.numpy()})]

    return run


def to_onnx(
    model: nn.Module,
    example: Tensor,
    path: str | Path | None = None,
    *,
    opset: int = DEFAULT_OPSET,
    sizes: Sequence[tuple[int, int]] | None = None,
    check: bool = True,
    check_batches: int | Sequence[int] = DEFAULT_CHECK_BATCHES,
    tolerance: float = DEFAULT_TOLERANCE,
    optimize: bool = True,
) -> ExportResult:
    """Export ``model`` to an ONNX file whose batch, height and width are dynamic, and check it.

    Args:
        model: an image model or layer taking one ``(B, C, H, W)`` tensor (e.g. ``LITv2``, ``LITv2Backbone``,
            ``HiLo2d``); exported in eval mode, on the CPU.
        example: an input to trace with; its batch, height and width are free in the exported graph.
        path: the ``.onnx`` file to write (default ``<model name>.onnx`` in the working directory).
        opset: ONNX opset version, ``>= 18``.
        sizes: ``(height, width)`` pairs for the parity check (default: the example's size and two
            non-square odd ones, see :func:`~hilovit.export.parity.default_sizes`).
        check: run onnxruntime on ``sizes`` and compare with eager PyTorch.
        check_batches: batches of the check inputs (others than the example's, to check the dynamic batch).
        tolerance: largest absolute difference allowed (1e-4 suits fp32).
        optimize: let the exporter fold constants and fuse patterns (slower export, leaner graph).

    Returns:
        the path and the parity report (None when ``check`` is False).

    Raises:
        TypeError, ValueError: bad ``model``, ``example``, ``opset`` or check settings (``sizes``, ...).
        ExportError: the model cannot be exported (the message names it and why).
        ParityError: onnxruntime disagrees with PyTorch beyond ``tolerance``.
    """
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < MIN_OPSET:
        raise ValueError(f"opset must be an int >= {MIN_OPSET}, got {opset!r}")
    batches = check_settings(check_batches, tolerance, sizes)
    program = capture(model, example)
    name = model_name(model)
    path = Path(path) if path is not None else Path(f"{name}.onnx")
    try:
        onnx_program = torch.onnx.export(
            program, dynamo=True, opset_version=opset, input_names=[INPUT_NAME], optimize=optimize, verbose=False
        )
    except Exception as error:
        raise ExportError(f"{name} cannot be translated to ONNX opset {opset}: {describe_error(error)}") from error
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda tmp: onnx_program.save(str(tmp)))
    if not check:
        return ExportResult(path, None)
    with export_mode(model):
        report = verify(model, name, "onnxruntime", onnxruntime_runner(path), example, path, sizes, batches, tolerance)
    return ExportResult(path, report)
