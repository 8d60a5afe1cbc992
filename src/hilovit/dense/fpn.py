"""HiLo-FPN: torchvision's feature pyramid with every output level refined by a HiLo transformer block.

The block is LITv2's (:class:`~hilovit.models.litv2.LITv2Block`): pre-norm residual HiLo attention, then a
pre-norm residual ConvFFN, here on NCHW maps. Each level's block sees the whole level: its Hi-Fi heads
attend inside ``s x s`` windows and its Lo-Fi heads attend to the ``s x s`` average-pooled map. By default
``s`` doubles from the coarsest level down (1, 2, 4, 8, ...), so on a pyramid whose levels halve in size
every level's Lo-Fi keys form a grid as large as the coarsest level, and the coarsest level gets plain
global attention.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.ops.feature_pyramid_network import ExtraFPNBlock, FeaturePyramidNetwork

from hilovit.models.litv2 import LITv2Block, init_linear

__all__ = ["FPN_KINDS", "HiLoBlock2d", "HiLoFPN", "build_fpn", "check_channels"]

FPN_KINDS = ("plain", "hilo")


def check_channels(module: nn.Module, x: Tensor, channels: int) -> None:
    """Raise ValueError naming ``module`` and the shape of ``x`` unless ``x`` is a ``(B, channels, H, W)`` map.

    Plain comparisons of static sizes: free in eager mode and nothing in a ``torch.export`` / ONNX graph. Skipped
    under ``torch.jit.trace`` (ultralytics' ONNX export), where the sizes are traced values and comparing them warns.
    """
    if torch.jit.is_tracing():
        return
    name = type(module).__name__
    if x.dim() != 4:
        raise ValueError(
            f"{name} expects a (B, {channels}, H, W) map, got a {x.dim()}-d input of shape {tuple(x.shape)}"
        )
    if x.shape[1] != channels:
        raise ValueError(f"{name} expects {channels} input channels, got {x.shape[1]} (input shape {tuple(x.shape)})")


class HiLoBlock2d(nn.Module):
    """LITv2's HiLo + ConvFFN block on an NCHW map ``(B, C, H, W) -> (B, C, H, W)``, any ``H, W >= 1``.

    Args:
        dim: channels.
        num_heads: attention heads (``dim`` must divide by it).
        window_size: HiLo window ``s``; ``1`` is plain global attention.
        alpha: share of Lo-Fi heads.
        mlp_ratio: ConvFFN hidden width relative to ``dim``.
        drop_path: stochastic depth of both residual branches.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        window_size: int = 2,
        alpha: float = 0.9,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.block = LITv2Block(
            dim,
            num_heads,
            window_size,
            alpha,
            mlp_ratio,
            qkv_bias=True,
            qk_scale=None,
            drop=0.0,
            attn_drop=0.0,
            drop_path=drop_path,
            norm_layer=nn.LayerNorm,
        )
        self.block.apply(init_linear)

    def forward(self, x: Tensor) -> Tensor:
        check_channels(self, x, self.dim)
        return self.block(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class HiLoFPN(FeaturePyramidNetwork):
    """torchvision's :class:`~torchvision.ops.FeaturePyramidNetwork` whose output levels pass a HiLo block.

    A drop-in replacement: same constructor arguments first, same ``OrderedDict`` in and out, same
    ``extra_blocks`` (which see the refined levels), and the state-dict keys of the plain FPN plus
    ``hilo_blocks.*`` (plain FPN weights load with only those missing). The block runs on each level's
    output after its 3x3 convolution; the top-down pathway itself is torchvision's.

    Args:
        in_channels_list, out_channels, extra_blocks, norm_layer: as in torchvision's FPN.
        num_heads: heads of every HiLo block.
        window_sizes: HiLo window per input level, finest first; default ``2**(n-1-i)`` (8, 4, 2, 1 for
            four levels), sized for levels that halve in resolution.
        alpha: share of Lo-Fi heads.
        mlp_ratio: ConvFFN hidden width relative to ``out_channels``.
        drop_path: stochastic depth of the blocks.
    """

    def __init__(
        self,
        in_channels_list: list[int],
        out_channels: int,
        extra_blocks: ExtraFPNBlock | None = None,
        norm_layer: Any = None,
        *,
        num_heads: int = 8,
        window_sizes: Sequence[int] | None = None,
        alpha: float = 0.9,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__(in_channels_list, out_channels, extra_blocks, norm_layer)
        levels = len(in_channels_list)
        if window_sizes is None:
            window_sizes = [2 ** (levels - 1 - level) for level in range(levels)]
        if len(window_sizes) != levels:
            raise ValueError(
                f"window_sizes={tuple(window_sizes)} has {len(window_sizes)} entries, expected one per level ({levels})"
            )
        self.window_sizes = tuple(window_sizes)
        self.hilo_blocks = nn.ModuleList(
            HiLoBlock2d(out_channels, num_heads, window, alpha, mlp_ratio, drop_path) for window in window_sizes
        )

    def get_result_from_layer_blocks(self, x: Tensor, idx: int) -> Tensor:
        """The level's 3x3 output convolution (torchvision's), then its HiLo block."""
        return self.hilo_blocks[idx % len(self.hilo_blocks)](super().get_result_from_layer_blocks(x, idx))


def build_fpn(
    kind: str,
    in_channels_list: list[int],
    out_channels: int,
    extra_blocks: ExtraFPNBlock | None = None,
    **options: Any,
) -> FeaturePyramidNetwork:
    """torchvision's FPN (``kind="plain"``, no options) or :class:`HiLoFPN` (``"hilo"``, options as its)."""
    if kind not in FPN_KINDS:
        raise ValueError(f"unknown fpn {kind!r}; expected one of {', '.join(map(repr, FPN_KINDS))}")
    if kind == "plain":
        if options:
            raise ValueError(f"fpn='plain' takes no options, got {sorted(options)}; they are for fpn='hilo'")
        return FeaturePyramidNetwork(in_channels_list, out_channels, extra_blocks)
    return HiLoFPN(in_channels_list, out_channels, extra_blocks, **options)
