"""HiLo attention for videos and volumes: windows and pooling over ``t x h x w`` blocks of a ``T x H x W`` grid.

Hi-Fi heads attend within each non-overlapping ``t x h x w`` window; Lo-Fi heads attend from every token to
keys/values of the ``t x h x w`` average-pooled volume. Full attention over ``T*H*W`` tokens costs
``(T*H*W)^2``; HiLo costs ``T*H*W * (t*h*w + T*H*W / (t*h*w))``. The parameters are those of the 2-D
:class:`~hilovit.attention.hilo.HiLo` (``l_q``, ``l_kv``, ``l_proj``, ``h_qkv``, ``h_proj``), so weights move
between 2-D and 3-D; with window ``(1, s, s)`` on ``T = 1`` the layer computes exactly what ``HiLo`` with
window ``s`` does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from hilovit.attention.hilo_core import HiLoNd, check_config

__all__ = ["HiLo3d", "HiLo3dChannelsFirst"]


def _window3d(window_size: int | Sequence[int]) -> tuple[int, int, int]:
    if isinstance(window_size, int) and not isinstance(window_size, bool):
        return (window_size,) * 3
    if not isinstance(window_size, Sequence) or isinstance(window_size, str) or len(window_size) != 3:
        raise ValueError(f"window_size must be an int or a (t, h, w) triple, got {window_size!r}")
    return tuple(window_size)  # type: ignore[return-value]


class HiLo3d(HiLoNd):
    """HiLo self-attention on tokens ``(B, N, C)`` that lay out a ``T x H x W`` grid (time/depth first).

    Args:
        dim: channels C of the tokens.
        num_heads: total attention heads; ``int(num_heads * alpha)`` of them are Lo-Fi, the rest Hi-Fi.
        qkv_bias: add a bias to the query, key and value projections.
        qk_scale: attention logit scale; ``head_dim ** -0.5`` when None or 0 (as the official
            ``qk_scale or head_dim ** -0.5``).
        attn_drop: dropout on the attention weights (training mode only).
        proj_drop: dropout on the output (training mode only).
        window_size: the window / pooling size ``(t, h, w)`` (an int means a cube). ``(1, 1, 1)`` is plain
            global attention over all ``T*H*W`` tokens: every head is Lo-Fi and keys are not pooled.
        alpha: share of Lo-Fi heads in [0, 1]; ``0`` gives window attention only.
        device, dtype: where and how the parameters are created (as for ``nn.Linear``).

    Any ``T, H, W >= 1`` is accepted: sides that are not a multiple of the window are zero-padded at the
    back/bottom/right, both branches run on the padded grid and the output is cropped back (as in 2-D).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = False,
        qk_scale: float | None = None,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        window_size: int | Sequence[int] = (2, 2, 2),
        alpha: float = 0.5,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        window = _window3d(window_size)
        check_config(dim, num_heads, window, alpha, attn_drop, proj_drop)
        super().__init__(dim, num_heads, qkv_bias, qk_scale, attn_drop, proj_drop, window, alpha, device, dtype)

    def forward(self, x: Tensor, T: int, H: int, W: int) -> Tensor:
        if not torch.jit.is_scripting():  # the checks build messages TorchScript cannot
            self._check_tokens(x, (T, H, W))
        batch = x.shape[0]
        return self.forward_channels_last(x.reshape(batch, T, H, W, self.dim)).reshape(batch, T * H * W, self.dim)

    def flops(self, T: int, H: int, W: int) -> int:
        """Multiply-accumulates of one forward on a ``T x H x W`` grid (the padded size when padding applies)."""
        return self.padded_flops((T, H, W))


class HiLo3dChannelsFirst(HiLo3d):
    """:class:`HiLo3d` on a channels-first volume ``(B, C, T, H, W) -> (B, C, T, H, W)``, for 3-D CNNs.

    Same parameters and semantics as :class:`HiLo3d`. The result is a channels-last strided
    (``torch.channels_last_3d``) tensor, the layout the computation produces.
    """

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        if not torch.jit.is_scripting():  # the checks build messages TorchScript cannot
            self._check_channels_first(x)
        return self.forward_channels_last(x.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)
