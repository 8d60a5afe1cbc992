"""Deformable Token Merging (LITv2): a 2x2 stride-2 deformable convolution, BatchNorm and GELU.

The deformable convolution is the one of ``torchvision.ops.deform_conv2d`` (and of the mmcv-style DCN
code the official LITv2 builds) restricted to what LITv2 uses: a 2x2 kernel, stride 2, no padding,
no dilation, one offset group, no modulation mask. Each output location reads one bilinear sample per
kernel tap at ``(2*oy + i + dy, 2*ox + j + dx)``; a sample point's corners that fall outside the map
read zero. The offsets have 8 channels: ``(dy, dx)`` for the taps ``(i, j)`` in row-major order.

Two implementations compute the same function:

- ``"gather"``: standard tensor ops only (no custom build, works under ``torch.compile`` and export).
  The four corner rows of every sample point are gathered from the channels-last input and blended
  with their bilinear weights in one fused ``embedding_bag`` (sum mode, per-sample weights), then a
  single matmul with the ``(out, 4 * in)`` weight applies the kernel.
- ``"torchvision"``: ``torchvision.ops.deform_conv2d``, the reference.

``"auto"`` picks the one measured fastest on the input's device (see :func:`default_impl`).
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import Literal

import torch
import torch.nn.functional as F
from timm.layers import register_notrace_module
from torch import Tensor, nn
from torchvision.ops import deform_conv2d as _torchvision_deform_conv2d

__all__ = ["IMPLS", "DeformableConv2x2", "DeformablePatchMerging", "default_impl", "deform_conv2x2"]

Impl = Literal["auto", "gather", "torchvision"]
IMPLS: tuple[str, ...] = ("auto", "gather", "torchvision")

KERNEL = 2  # kernel size and stride of the merging convolution
OFFSET_CHANNELS = 2 * KERNEL * KERNEL  # (dy, dx) per kernel tap
# Output channels the official flops() charges to the offset convolution (the convolution has 8).
_OFFICIAL_OFFSET_FLOPS_CHANNELS = 12


# The implementation measured fastest per device type, with ``benchmarks/bench_models.py --dtm`` (the DTM
# module at LITv2-S's three shapes, batch 32). CPU, 2 cores, float32: "gather" 2.2-5.7x faster than
# torchvision forward, 3.6-5.8x forward+backward. CUDA (H100, batch 64, bf16 autocast): torchvision's
# kernel 2.0-3.2x faster forward, 1.2-1.7x forward+backward.
_FASTEST = {"cpu": "gather", "cuda": "torchvision"}


def default_impl(device: torch.device | str) -> str:
    """The implementation ``impl="auto"`` resolves to on `device`.

    The measured fastest where there is a measurement, else ``"gather"``: the implementation that
    torch.compile and torch.export can trace and that needs no compiled extension.
    """
    return _FASTEST.get(torch.device(device).type, "gather")


def _check_impl(impl: str) -> None:
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")


def _check_input(x: Tensor, channels: int) -> None:
    if x.dim() != 4:
        raise ValueError(f"expected an NCHW input of rank 4 (B, {channels}, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"expected a floating-point input, got dtype {x.dtype}")
    if x.shape[1] != channels:
        raise ValueError(f"expected {channels} input channels, got {x.shape[1]} (input shape {tuple(x.shape)})")
    if x.shape[2] < KERNEL or x.shape[3] < KERNEL:
        raise ValueError(f"expected H and W >= {KERNEL}, got input shape {tuple(x.shape)}")


def _axis_corners(coordinate: Tensor, size: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Lower/upper corner indices and their (masked) linear weights along one axis."""
    low = coordinate.floor()
    frac = coordinate - low
    high = low + 1
    weight_low = (1 - frac) * ((low >= 0) & (low < size))
    weight_high = frac * ((high >= 0) & (high < size))
    # clamped after the conversion, so that huge or non-finite coordinates still index in range
    return low.long().clamp(0, size - 1), high.long().clamp(0, size - 1), weight_low, weight_high


def _bilinear_corners(offset: Tensor, height: int, width: int, kernel: int = KERNEL) -> tuple[Tensor, Tensor]:
    """Rows of the four corners of every sample point in the flattened (B*H*W, C) input, and their weights.

    `offset` is (B, 8, Ho, Wo). Returns (B*Ho*Wo*4, 4) int64 row indices and weights of the same shape,
    ordered (batch, oy, ox, tap i, tap j) x (corner y0x0, y0x1, y1x0, y1x1). A corner outside the map
    gets weight zero (its row index is clamped to a valid one), so it reads zero as in torchvision.
    """
    batch, _, out_h, out_w = offset.shape
    # (B, Ho, Wo, taps, 2): a free view when the offsets come from a channels-last convolution
    dyx = offset.permute(0, 2, 3, 1).reshape(batch, out_h, out_w, kernel * kernel, 2)
    taps = torch.arange(kernel, device=offset.device, dtype=offset.dtype)
    tap_i = taps.repeat_interleave(kernel)  # 0 0 1 1
    tap_j = taps.repeat(kernel)  # 0 1 0 1
    grid_y = (kernel * torch.arange(out_h, device=offset.device, dtype=offset.dtype)).view(-1, 1, 1) + tap_i
    grid_x = (kernel * torch.arange(out_w, device=offset.device, dtype=offset.dtype)).view(1, -1, 1) + tap_j
    y = grid_y + dyx[..., 0]
    x = grid_x + dyx[..., 1]
    y0, y1, wy0, wy1 = _axis_corners(y, height)
    x0, x1, wx0, wx1 = _axis_corners(x, width)
    image = (torch.arange(batch, device=offset.device) * (height * width)).view(batch, 1, 1, 1)
    row0 = image + y0 * width
    row1 = image + y1 * width
    rows = torch.stack((row0 + x0, row0 + x1, row1 + x0, row1 + x1), dim=-1)
    weights = torch.stack((wy0 * wx0, wy0 * wx1, wy1 * wx0, wy1 * wx1), dim=-1)
    return rows.view(-1, 4), weights.view(-1, 4)


def _exporting() -> bool:
    """torch.export or torch.jit.trace (the TorchScript-based ONNX export) is recording; never under TorchScript,
    which compiles no further than this check."""
    if torch.jit.is_scripting():
        return False
    return torch.compiler.is_exporting() or torch.jit.is_tracing()


def _gather_deform_conv2x2(
    x: Tensor, offset: Tensor, weight: Tensor, bias: Tensor | None, kernel: int = KERNEL
) -> Tensor:
    # KERNEL comes in as a default argument: TorchScript reads no module-level int
    batch, channels, height, width = x.shape
    out_h, out_w = offset.shape[2:]
    rows, corner_weights = _bilinear_corners(offset, height, width, kernel)
    table = x.permute(0, 2, 3, 1).reshape(batch * height * width, channels)  # free when channels-last
    if _exporting():
        # ONNX has no embedding_bag (the exporters write a Loop over the bags): gather, weight and sum instead.
        samples = (table[rows] * corner_weights.to(x.dtype).unsqueeze(-1)).sum(1)
    else:
        samples = F.embedding_bag(rows, table, per_sample_weights=corner_weights.to(x.dtype), mode="sum")
    taps = samples.view(batch * out_h * out_w, kernel * kernel * channels)  # (i, j, C) per location
    matrix = weight.permute(0, 2, 3, 1).reshape(weight.shape[0], -1)  # the same (i, j, C) order
    out = F.linear(taps, matrix, bias)
    return out.view(batch, out_h, out_w, weight.shape[0]).permute(0, 3, 1, 2)


def deform_conv2x2(
    x: Tensor, offset: Tensor, weight: Tensor, bias: Tensor | None = None, *, impl: Impl = "auto"
) -> Tensor:
    """2x2 stride-2 deformable convolution, the same function as ``deform_conv2d(..., stride=2)``.

    Args:
        x: (B, C, H, W) input; odd H or W lose their last row/column, as with a plain strided conv.
        offset: (B, 8, H // 2, W // 2) offsets, ``(dy, dx)`` per kernel tap in row-major tap order.
        weight: (out, C, 2, 2) kernel.
        bias: (out,) or None.
        impl: ``"gather"``, ``"torchvision"`` or ``"auto"`` (see :func:`default_impl`).

    Returns:
        (B, out, H // 2, W // 2). The ``"gather"`` implementation returns it in channels-last memory
        format (so that ``.permute(0, 2, 3, 1)`` or ``.flatten(2).transpose(1, 2)`` are free).
    """
    _check_impl(impl)
    if weight.dim() != 4 or tuple(weight.shape[2:]) != (KERNEL, KERNEL):
        raise ValueError(f"expected a (out, C, {KERNEL}, {KERNEL}) weight, got shape {tuple(weight.shape)}")
    _check_input(x, weight.shape[1])
    expected = (x.shape[0], OFFSET_CHANNELS, x.shape[2] // KERNEL, x.shape[3] // KERNEL)
    if tuple(offset.shape) != expected:
        raise ValueError(f"expected offsets of shape {expected}, got {tuple(offset.shape)}")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"expected a bias of shape ({weight.shape[0]},), got {tuple(bias.shape)}")
    if impl == "auto":
        impl = default_impl(x.device)
    if impl == "torchvision":
        return _torchvision_deform_conv2d(x, offset, weight, bias, stride=KERNEL)
    return _gather_deform_conv2x2(x, offset, weight, bias)


class DeformableConv2x2(nn.Module):
    """A 2x2 stride-2 deformable convolution that predicts its own offsets (mmcv's ``DeformConv2dPack``).

    Parameters ``weight`` (out, in, 2, 2) and ``bias`` (out,) are the kernel; ``conv_offset`` is a plain
    2x2 stride-2 convolution to the 8 offset channels, zero-initialised so that the module starts as
    a plain strided convolution.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        impl: Impl = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        _check_impl(impl)
        dd = {"device": device, "dtype": dtype}
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.impl = impl
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, KERNEL, KERNEL, **dd))
        self.bias = nn.Parameter(torch.empty(out_channels, **dd))
        self.conv_offset = nn.Conv2d(in_channels, OFFSET_CHANNELS, KERNEL, stride=KERNEL, **dd)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The initialisation of ``nn.Conv2d`` for the kernel, zeros for the offset convolution."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        bound = 1 / math.sqrt(self.in_channels * KERNEL * KERNEL)
        nn.init.uniform_(self.bias, -bound, bound)
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def forward(self, x: Tensor) -> Tensor:
        if torch.jit.is_scripting():  # TorchScript: the standard-ops implementation, without the input checks
            return _gather_deform_conv2x2(x, self.conv_offset(x), self.weight, self.bias)
        return deform_conv2x2(x, self.conv_offset(x), self.weight, self.bias, impl=self.impl)

    def extra_repr(self) -> str:
        shape = f"{self.in_channels}, {self.out_channels}, kernel_size={KERNEL}, stride={KERNEL}"
        return f"{shape}, impl={self.impl!r}"


@register_notrace_module
class DeformablePatchMerging(nn.Module):
    """Deformable Token Merging: (B, dim, H, W) -> (B, out_dim, H // 2, W // 2).

    ``dconv`` (a :class:`DeformableConv2x2`), then BatchNorm2d (``norm_layer``), then GELU; submodule
    names match the official checkpoint keys. The module computes in its parameters' dtype with
    autocast disabled, so under mixed precision it runs (and returns) float32 like the official code.

    Args:
        dim: input channels.
        out_dim: output channels.
        impl: the deformable convolution implementation (see :func:`deform_conv2x2`); an attribute
            that may be changed after construction.
        device, dtype: where and how the parameters are created (as for ``nn.Conv2d``).

    torch.fx does not trace into the module (a timm "notrace" leaf: its input checks and implementation choice
    are decided at run time).
    """

    __jit_unused_properties__ = ["impl"]  # noqa: RUF012  (TorchScript's name; the property is Python-side only)

    def __init__(
        self,
        dim: int,
        out_dim: int,
        impl: Impl = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.out_dim = out_dim
        self.dconv = DeformableConv2x2(dim, out_dim, impl, device=device, dtype=dtype)
        self.norm_layer = nn.BatchNorm2d(out_dim, device=device, dtype=dtype)
        self.act = nn.GELU()

    @property
    def impl(self) -> str:
        return self.dconv.impl

    @impl.setter
    def impl(self, impl: Impl) -> None:
        _check_impl(impl)
        self.dconv.impl = impl

    def forward(self, x: Tensor) -> Tensor:
        if torch.jit.is_scripting():  # TorchScript: no input checks, no autocast handling
            return self.act(self.norm_layer(self.dconv(x)))
        _check_input(x, self.dim)
        device_type = x.device.type
        autocast_off = (
            torch.autocast(device_type, enabled=False)
            if torch.amp.is_autocast_available(device_type)
            else nullcontext()
        )
        with autocast_off:
            x = x.to(self.dconv.weight.dtype)
            return self.act(self.norm_layer(self.dconv(x)))

    def flops(self, H: int, W: int) -> int:
        """Multiply-accumulates at input size H x W, counted as the official ``DTM.flops()`` does.

        The official count charges the offset convolution for 12 output channels (it has 8) and adds
        one operation per output element for each bias and for the norm; kept so GFLOPs match the paper.
        """
        locations = (H // KERNEL) * (W // KERNEL)
        per_location_in = KERNEL * KERNEL * self.dim
        offset_flops = locations * (per_location_in + 1) * _OFFICIAL_OFFSET_FLOPS_CHANNELS
        dconv_flops = locations * (per_location_in + 1) * self.out_dim
        norm_flops = locations * self.out_dim
        return offset_flops + dconv_flops + norm_flops
