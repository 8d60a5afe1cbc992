"""HiLo attention (Pan et al., "Fast Vision Transformers with HiLo Attention", NeurIPS 2022).

The heads of one self-attention layer are split in two groups:

* Hi-Fi heads, a fraction ``1 - alpha``: full attention inside each non-overlapping
  ``window_size x window_size`` window (local, high-frequency detail);
* Lo-Fi heads, a fraction ``alpha``: every query attends to keys and values computed from the
  ``window_size x window_size`` average-pooled map (global, low-frequency structure).

Each group has its own output projection; the outputs are concatenated along channels, Hi-Fi first.
Parameter names and shapes are those of the official code, so official weights load strictly.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hilovit.attention.hilo_core import HiLoNd, check_config

__all__ = ["HiLo", "HiLo2d"]


class HiLo(HiLoNd):
    """HiLo self-attention on a token sequence ``(B, N, C)`` that lays out an ``H x W`` map row by row.

    Args:
        dim: channels C of the tokens.
        num_heads: total attention heads; ``int(num_heads * alpha)`` of them are Lo-Fi, the rest Hi-Fi.
        qkv_bias: add a bias to the query, key and value projections.
        qk_scale: attention logit scale; ``head_dim ** -0.5`` when None or 0 (as the official
            ``qk_scale or head_dim ** -0.5``).
        attn_drop: dropout on the attention weights (training mode only).
        proj_drop: dropout on the output (training mode only).
        window_size: the window / pooling size ``s``. ``1`` means plain global multi-head attention:
            every head is Lo-Fi and keys are not pooled, whatever ``alpha`` is.
        alpha: share of Lo-Fi heads in [0, 1]. ``0`` gives window attention only, ``1`` pooled global
            attention only; a branch whose head count rounds down to zero has no parameters.
        device, dtype: where and how the parameters are created (as for ``nn.Linear``).

    Any ``H, W >= 1`` is accepted. When a side is not a multiple of ``window_size`` (or smaller than it)
    the layer follows the official dense-prediction code: the tokens are zero-padded on the right and
    bottom to the next multiple, both branches run on the padded map (padded tokens take part as keys,
    unmasked, and in the Lo-Fi pooling), and the output is cropped back to ``H x W``.
    The computation is :class:`~hilovit.attention.hilo_core.HiLoNd`'s, shared with the 3-D layer.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = False,
        qk_scale: float | None = None,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        window_size: int = 2,
        alpha: float = 0.5,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        check_config(dim, num_heads, (window_size,), alpha, attn_drop, proj_drop)
        super().__init__(
            dim, num_heads, qkv_bias, qk_scale, attn_drop, proj_drop, (window_size, window_size), alpha, device, dtype
        )
        self.ws = window_size

    def forward(self, x: Tensor, H: int, W: int) -> Tensor:
        if not torch.jit.is_scripting():  # the checks build messages TorchScript cannot
            self._check_tokens(x, (H, W))
        batch = x.shape[0]
        return self.forward_hwc(x.reshape(batch, H, W, self.dim)).reshape(batch, H * W, self.dim)

    def forward_hwc(self, x: Tensor) -> Tensor:
        """Attention on a channels-last map ``(B, H, W, C) -> (B, H, W, C)``, without shape checks."""
        return self.forward_channels_last(x)

    def flops(self, H: int, W: int) -> int:
        """Multiply-accumulates of one forward on an ``H x W`` map (the padded size when padding applies)."""
        return self.padded_flops((H, W))


class HiLo2d(HiLo):
    """HiLo on an NCHW feature map ``(B, C, H, W) -> (B, C, H, W)``, for CNN necks and YOLO models.

    Same parameters and semantics as :class:`HiLo` (weights move between the two forms). The result is
    a channels-last strided NCHW tensor, the layout the computation produces.
    """

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        if not torch.jit.is_scripting():  # the checks build messages TorchScript cannot
            self._check_channels_first(x)
        return self.forward_hwc(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
