"""3-D convolutions of CPU bf16 runs, in float32.

With torch 2.14.1 on CPU, the weight gradient of a bfloat16 3-D convolution whose input has depth 2 (kernel 3,
padding 1) reads uninitialised memory: repeated calls on the same tensors give different gradients, now and then
inf or NaN (19 of 20 calls differ for a ``(2, 16, 2, 4, 4)`` input, 9 of them non-finite; depths 1 and 3-16, the
height and width, and float32 are unaffected). Video and volume models reach depth 2 in their deeper stages, so
the training engine runs their ``nn.Conv3d`` layers in float32 when a CPU run uses ``--amp bf16``; everything
else stays in bf16.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["Float32Conv3d", "keep_conv3d_in_float32"]


class Float32Conv3d(nn.Conv3d):
    """``nn.Conv3d`` computed in float32 under CPU autocast (same parameters and state-dict keys)."""

    def forward(self, input: Tensor) -> Tensor:
        with torch.autocast("cpu", enabled=False):
            return super().forward(input.float())


def keep_conv3d_in_float32(model: nn.Module) -> int:
    """Make every plain ``nn.Conv3d`` of ``model`` a :class:`Float32Conv3d`, in place; the number changed."""
    changed = 0
    for module in model.modules():
        if type(module) is nn.Conv3d:
            module.__class__ = Float32Conv3d
            changed += 1
    return changed
