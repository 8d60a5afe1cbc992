"""HiLo building blocks for ultralytics YOLO models, NCHW in and out.

* :class:`HiLoLayer`: the residual unit, ``x + HiLo2d(BN(x))`` then ``x + ConvBNFFN(x)``; channel-preserving.
* :class:`HiLoBlock`: a YAML layer: an optional 1x1 projection from ``c1`` to ``c2`` channels, then ``n`` units.
* :class:`C3k2HiLo`: YOLO11's C3k2 with a HiLo unit after each inner bottleneck (like C3k2's ``attn`` blocks,
  with HiLo in place of PSABlock).
* :class:`C2fHiLo`: YOLOv8's C2f with a HiLo unit after each inner bottleneck (same arguments as C2f).
* :class:`C2HiLo`: a drop-in replacement for YOLO11's C2PSA (same arguments), HiLo units in place of PSABlocks.

:class:`ConvBNFFN` is LITv2's ConvFFN (fc1 -> 3x3 depthwise conv -> activation -> fc2) written with ultralytics ``Conv``
layers (convolution + BatchNorm, fused for inference by ``model.fuse()``). Any ``H, W`` works: HiLo pads the map to a
multiple of its window and crops back. Register the classes with ultralytics' YAML parser with
:func:`hilovit.yolo.register`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from ultralytics.nn.modules.block import C2f, C3k2
from ultralytics.nn.modules.conv import Conv

from hilovit.attention import HiLo2d
from hilovit.dense.fpn import check_channels

__all__ = ["C2HiLo", "C2fHiLo", "C3k2HiLo", "ConvBNFFN", "HiLoBlock", "HiLoLayer", "append_hilo", "default_heads"]

HEAD_DIM = 32


def default_heads(channels: int) -> int:
    """Heads of a HiLo unit on ``channels``: one per 32 channels, at least two (one Hi-Fi, one Lo-Fi at alpha 0.5)."""
    return max(2, channels // HEAD_DIM)


class ConvBNFFN(nn.Sequential):
    """LITv2's ConvFFN from ultralytics ``Conv`` layers: fc1 (1x1 conv + BN) -> 3x3 depthwise conv + BN -> SiLU ->
    fc2 (1x1 conv + BN) on an NCHW map."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__(
            Conv(channels, hidden, 1, act=False),
            Conv(hidden, hidden, 3, g=hidden),
            Conv(hidden, channels, 1, act=False),
        )


class HiLoLayer(nn.Module):
    """Pre-norm residual HiLo unit on ``(B, C, H, W)``: ``x + HiLo2d(BN(x))``, then ``x + ConvBNFFN(x)``.

    Args:
        channels: C, kept unchanged.
        num_heads: HiLo heads; :func:`default_heads` when None.
        window_size: HiLo window / pooling size.
        alpha: share of Lo-Fi heads.
        mlp_ratio: ConvBNFFN hidden channels over ``channels``.
    """

    def __init__(
        self,
        channels: int,
        num_heads: int | None = None,
        window_size: int = 2,
        alpha: float = 0.5,
        mlp_ratio: float = 2.0,
    ) -> None:
        super().__init__()
        heads = default_heads(channels) if num_heads is None else num_heads
        self.norm = nn.BatchNorm2d(channels)
        self.attn = HiLo2d(channels, num_heads=heads, qkv_bias=True, window_size=window_size, alpha=alpha)
        self.ffn = ConvBNFFN(channels, int(channels * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        check_channels(self, x, self.norm.num_features)  # not an attribute: see HiLoBlock.in_channels
        x = x + self.attn(self.norm(x))
        return x + self.ffn(x)


class HiLoBlock(nn.Module):
    """``n`` HiLo units on ``c2`` channels, after a 1x1 ``Conv`` from ``c1`` when the two differ.

    In a model YAML it takes ultralytics' usual row ``[from, n, HiLoBlock, [c2, window_size, alpha]]``: the parser
    supplies ``c1``, scales ``c2`` by the width multiple (capped by ``max_channels``) and passes ``n`` scaled by
    the depth multiple, as for C2PSA.
    """

    def __init__(
        self,
        c1: int,
        c2: int,
        n: int = 1,
        window_size: int = 2,
        alpha: float = 0.5,
        mlp_ratio: float = 2.0,
    ) -> None:
        super().__init__()
        self.proj = Conv(c1, c2, 1) if c1 != c2 else nn.Identity()
        self.m = nn.Sequential(*(HiLoLayer(c2, None, window_size, alpha, mlp_ratio) for _ in range(n)))

    @property
    def in_channels(self) -> int | None:
        """``c1``, read from the layers rather than kept as an attribute, which the models that ultralytics pickled
        before it was added would lack; None for a block without layers (``c1 == c2``, ``n == 0``)."""
        if isinstance(self.proj, Conv):
            return self.proj.conv.in_channels
        return self.m[0].norm.num_features if len(self.m) else None

    def forward(self, x: Tensor) -> Tensor:
        if self.in_channels is not None:
            check_channels(self, x, self.in_channels)
        return self.m(self.proj(x))


def append_hilo(blocks: nn.ModuleList, channels: int, window_size: int, alpha: float) -> nn.ModuleList:
    """Each of ``blocks`` (the inner blocks of a C2f-style layer) followed by a :class:`HiLoLayer` on ``channels``."""
    return nn.ModuleList(nn.Sequential(block, HiLoLayer(channels, None, window_size, alpha)) for block in blocks)


class C3k2HiLo(C3k2):
    """C3k2 whose inner blocks are a Bottleneck (or C3k with ``c3k``) followed by a :class:`HiLoLayer`.

    Arguments are C3k2's (``attn`` replaced by the HiLo ``window_size`` and ``alpha``), so a YOLO11 YAML row
    ``[-1, 2, C3k2, [512, False]]`` becomes ``[-1, 2, C3k2HiLo, [512, False]]``.
    """

    def __init__(
        self,
        c1: int,
        c2: int,
        n: int = 1,
        c3k: bool = False,
        e: float = 0.5,
        window_size: int = 2,
        alpha: float = 0.5,
        g: int = 1,
        shortcut: bool = True,
    ) -> None:
        super().__init__(c1, c2, n, c3k, e, False, g, shortcut)
        self.m = append_hilo(self.m, self.c, window_size, alpha)


class C2fHiLo(C2f):
    """YOLOv8's C2f whose inner Bottlenecks are each followed by a :class:`HiLoLayer`.

    Arguments are C2f's, then the HiLo ``window_size`` and ``alpha``, so a YOLOv8 YAML row
    ``[-1, 3, C2f, [512]]`` becomes ``[-1, 3, C2fHiLo, [512]]``.
    """

    def __init__(
        self,
        c1: int,
        c2: int,
        n: int = 1,
        shortcut: bool = False,
        g: int = 1,
        e: float = 0.5,
        window_size: int = 2,
        alpha: float = 0.5,
    ) -> None:
        super().__init__(c1, c2, n, shortcut, g, e)
        self.m = append_hilo(self.m, self.c, window_size, alpha)


class C2HiLo(nn.Module):
    """YOLO11's C2PSA with :class:`HiLoLayer` units in place of PSABlocks: same arguments, same channels.

    The input is split in two halves after a 1x1 conv; one half goes through ``n`` HiLo units; both are merged
    by a 1x1 conv back to ``c1`` channels.
    """

    def __init__(self, c1: int, c2: int, n: int = 1, e: float = 0.5, window_size: int = 2, alpha: float = 0.5) -> None:
        super().__init__()
        if c1 != c2:
            raise ValueError(f"C2HiLo keeps the channel count (like C2PSA): c1={c1} must equal c2={c2}")
        self.c = int(c1 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv(2 * self.c, c1, 1)
        self.m = nn.Sequential(*(HiLoLayer(self.c, None, window_size, alpha) for _ in range(n)))

    def forward(self, x: Tensor) -> Tensor:
        a, b = self.cv1(x).split((self.c, self.c), dim=1)
        return self.cv2(torch.cat((a, self.m(b)), dim=1))
