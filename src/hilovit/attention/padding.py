"""Zero padding at the end of spatial axes, written so that every recorded graph holds at every input size."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import register_notrace_function
from torch import Tensor

__all__ = ["pad_end"]


@register_notrace_function  # torch.fx records the call and decides when the graph runs, at the real size
def pad_end(x: Tensor, pad: list[int]) -> Tensor:
    """``F.pad(x, pad)`` (amounts in ``F.pad``'s order, last axis first), skipped when every amount is 0.

    The amounts depend on the input's size, so torch.jit.trace (TorchScript-based ONNX export) and torch.export
    always record the pad, by zero where the sides fit, instead of baking in the example input's branch.
    """
    if not torch.jit.is_scripting():  # noqa: SIM102  TorchScript compiles no further: it has no tracers
        if torch.jit.is_tracing() or torch.compiler.is_exporting():
            return F.pad(x, pad)
    for amount in pad:
        if amount != 0:
            return F.pad(x, pad)
    return x
