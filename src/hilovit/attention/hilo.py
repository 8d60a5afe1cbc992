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
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["HiLo", "HiLo2d"]

# On CUDA, windows smaller than half this many tokens are packed into sequences of about this length.
_PACKED_SEQUENCE_TOKENS = 64


def _check_config(dim: int, num_heads: int, window_size: int, alpha: float) -> None:
    for name, value in (("dim", dim), ("num_heads", num_heads), ("window_size", window_size)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if dim < 1 or num_heads < 1:
        raise ValueError(f"dim and num_heads must be >= 1, got dim={dim}, num_heads={num_heads}")
    if dim % num_heads != 0:
        raise ValueError(f"dim={dim} must be divisible by num_heads={num_heads}")
    if window_size < 1:
        raise ValueError(f"window_size must be >= 1, got {window_size}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha (the Lo-Fi share of heads) must be in [0, 1], got {alpha}")


class HiLo(nn.Module):
    """HiLo self-attention on a token sequence ``(B, N, C)`` that lays out an ``H x W`` map row by row.

    Args:
        dim: channels C of the tokens.
        num_heads: total attention heads; ``int(num_heads * alpha)`` of them are Lo-Fi, the rest Hi-Fi.
        qkv_bias: add a bias to the query, key and value projections.
        qk_scale: attention logit scale; ``head_dim ** -0.5`` when None.
        attn_drop: dropout on the attention weights (training mode only).
        proj_drop: dropout on the output (training mode only).
        window_size: the window / pooling size ``s``. ``1`` means plain global multi-head attention:
            every head is Lo-Fi and keys are not pooled, whatever ``alpha`` is.
        alpha: share of Lo-Fi heads in [0, 1]. ``0`` gives window attention only, ``1`` pooled global
            attention only; a branch whose head count rounds down to zero has no parameters.

    Any ``H, W >= 1`` is accepted. When a side is not a multiple of ``window_size`` (or smaller than it)
    the layer follows the official dense-prediction code: the tokens are zero-padded on the right and
    bottom to the next multiple, both branches run on the padded map (padded tokens take part as keys,
    unmasked, and in the Lo-Fi pooling), and the output is cropped back to ``H x W``.
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
    ) -> None:
        super().__init__()
        _check_config(dim, num_heads, window_size, alpha)
        self.dim = dim
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.ws = window_size
        self.alpha = float(alpha)
        self.l_heads = num_heads if window_size == 1 else int(num_heads * alpha)
        self.h_heads = num_heads - self.l_heads
        self.l_dim = self.l_heads * self.head_dim
        self.h_dim = self.h_heads * self.head_dim
        self.scale = qk_scale if qk_scale is not None else self.head_dim**-0.5
        self.attn_drop = attn_drop
        if self.l_heads > 0:
            self.l_q = nn.Linear(dim, self.l_dim, bias=qkv_bias)
            self.l_kv = nn.Linear(dim, self.l_dim * 2, bias=qkv_bias)
            self.l_proj = nn.Linear(self.l_dim, self.l_dim)
        if self.h_heads > 0:
            self.h_qkv = nn.Linear(dim, self.h_dim * 3, bias=qkv_bias)
            self.h_proj = nn.Linear(self.h_dim, self.h_dim)
        self.proj_drop = nn.Dropout(proj_drop)
        window_tokens = window_size * window_size
        per_sequence = _PACKED_SEQUENCE_TOKENS // window_tokens
        mask = None
        if self.h_heads > 0 and per_sequence >= 2:
            ids = torch.arange(per_sequence * window_tokens) // window_tokens
            mask = ids[:, None] == ids[None, :]
        self.window_mask: Tensor | None
        self.register_buffer("window_mask", mask, persistent=False)

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, window_size={self.ws}, lofi_heads={self.l_heads}, hifi_heads={self.h_heads}, "
            f"head_dim={self.head_dim}"
        )

    def forward(self, x: Tensor, H: int, W: int) -> Tensor:
        if x.dim() != 3:
            raise ValueError(f"HiLo expects tokens of shape (B, N, C), got a {x.dim()}-d tensor {tuple(x.shape)}")
        if H < 1 or W < 1 or x.shape[1] != H * W:
            raise ValueError(f"HiLo got N={x.shape[1]} tokens for H={H}, W={W}; expected N == H * W with H, W >= 1")
        self._check_channels(x, x.shape[2])
        batch = x.shape[0]
        return self.forward_hwc(x.reshape(batch, H, W, self.dim)).reshape(batch, H * W, self.dim)

    def _check_channels(self, x: Tensor, channels: int) -> None:
        if not x.is_floating_point():
            raise TypeError(f"HiLo expects a floating-point input, got dtype {x.dtype}")
        if channels != self.dim:
            raise ValueError(f"HiLo was built for dim={self.dim} channels, got {channels}")

    def forward_hwc(self, x: Tensor) -> Tensor:
        """Attention on a channels-last map ``(B, H, W, C) -> (B, H, W, C)``, without shape checks."""
        _, H, W, _ = x.shape
        pad_bottom, pad_right = -H % self.ws, -W % self.ws
        if pad_bottom or pad_right:
            x = F.pad(x, (0, 0, 0, pad_right, 0, pad_bottom))
        if self.h_heads == 0:
            out = self._lofi(x)
        elif self.l_heads == 0:
            out = self._hifi(x).flatten(1, 2).flatten(2, 3)
        else:
            out = self._merge(self._hifi(x), self._lofi(x))
        if pad_bottom or pad_right:
            out = out[:, :H, :W]
        return self.proj_drop(out)

    def _dropout_p(self) -> float:
        return self.attn_drop if self.training else 0.0

    def _hifi(self, x: Tensor) -> Tensor:
        """Window attention; returns ``(B, H/s, s, W/s, s, h_dim)``, a view in window order."""
        B, H, W, _ = x.shape
        ws, heads, hd = self.ws, self.h_heads, self.head_dim
        rows, cols = H // ws, W // ws
        qkv = self.h_qkv(x).view(B, rows, ws, cols, ws, 3, heads, hd)
        if self._packs_windows(x):
            tokens = self._packed_window_attention(qkv)
        else:
            # (3, windows, heads, ws*ws, head_dim): one copy gathers every window's tokens together.
            qkv = qkv.permute(5, 0, 1, 3, 6, 2, 4, 7).reshape(3, B * rows * cols, heads, ws * ws, hd)
            q, k, v = qkv.unbind(0)
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=self._dropout_p(), scale=self.scale)
            tokens = out.transpose(1, 2)
        # The projection acts per token, so it runs in window order; the view puts tokens back in place.
        out = self.h_proj(tokens.reshape(B, rows, cols, ws, ws, self.h_dim))
        return out.permute(0, 1, 3, 2, 4, 5)

    def _packs_windows(self, x: Tensor) -> bool:
        """Pack small windows on CUDA only: on CPU the fused kernel is as fast per window."""
        return x.is_cuda and self.window_mask is not None

    def _packed_window_attention(self, qkv: Tensor) -> Tensor:
        """Window attention with several windows packed into one sequence and a block-diagonal mask.

        GPU attention kernels tile 64+ queries, so a 2x2 window alone leaves a tile almost empty; packed,
        the tiles fill up (about 5x faster than one window per sequence on an H100, see
        benchmarks/gpu_window_core.py). Takes the ``(B, rows, s, cols, s, 3, heads, head_dim)`` projection
        and returns ``(B*rows*cols*s*s, heads, head_dim)`` in window order.
        """
        B, rows, ws, cols, _, _, heads, hd = qkv.shape
        window_tokens = ws * ws
        per_sequence = self.window_mask.shape[0] // window_tokens
        windows = B * rows * cols
        sequences = -(-windows // per_sequence)
        qkv = qkv.permute(5, 6, 0, 1, 3, 2, 4, 7).reshape(3, heads, windows * window_tokens, hd)
        if sequences * per_sequence != windows:  # all-zero filler windows, dropped below
            qkv = F.pad(qkv, (0, 0, 0, (sequences * per_sequence - windows) * window_tokens))
        q, k, v = qkv.view(3, heads, sequences, per_sequence * window_tokens, hd).unbind(0)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=self.window_mask, dropout_p=self._dropout_p(), scale=self.scale
        )
        return out.reshape(heads, -1, hd)[:, : windows * window_tokens].transpose(0, 1)

    def _lofi(self, x: Tensor) -> Tensor:
        """Attention to pooled keys/values; returns ``(B, H, W, l_dim)``."""
        B, H, W, _ = x.shape
        ws, heads = self.ws, self.l_heads
        q = self.l_q(x).view(B, H * W, heads, self.head_dim).transpose(1, 2)
        # avg_pool2d on the channels-last view is far faster than a mean over the split window axes.
        pooled = x if ws == 1 else F.avg_pool2d(x.permute(0, 3, 1, 2), ws).permute(0, 2, 3, 1)
        kv = self.l_kv(pooled).view(B, (H // ws) * (W // ws), 2, heads, self.head_dim).permute(2, 0, 3, 1, 4)
        k, v = kv.unbind(0)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self._dropout_p(), scale=self.scale)
        return self.l_proj(out.transpose(1, 2).reshape(B, H, W, self.l_dim))

    def _merge(self, hifi: Tensor, lofi: Tensor) -> Tensor:
        """Concatenate along channels, Hi-Fi first, in a single copy into ``(B, H, W, C)``."""
        B, rows, ws, cols, _, _ = hifi.shape
        merged = torch.cat((hifi, lofi.view(B, rows, ws, cols, ws, self.l_dim)), dim=-1)
        return merged.view(B, rows * ws, cols * ws, self.dim)

    def flops(self, H: int, W: int) -> int:
        """Multiply-accumulates of one forward on an ``H x W`` map (the padded size when padding applies)."""
        ws = self.ws
        Hp, Wp = -(-H // ws) * ws, -(-W // ws) * ws
        tokens = Hp * Wp
        windows = (Hp // ws) * (Wp // ws)
        hifi = tokens * self.dim * self.h_dim * 3 + windows * (ws * ws) ** 2 * self.h_dim * 2
        hifi += tokens * self.h_dim * self.h_dim
        keys = windows
        lofi = tokens * self.dim * self.l_dim + keys * self.dim * self.l_dim * 2
        lofi += tokens * keys * self.l_dim * 2 + tokens * self.l_dim * self.l_dim
        return hifi + lofi


class HiLo2d(HiLo):
    """HiLo on an NCHW feature map ``(B, C, H, W) -> (B, C, H, W)``, for CNN necks and YOLO models.

    Same parameters and semantics as :class:`HiLo` (weights move between the two forms). The result is
    a channels-last strided NCHW tensor, the layout the computation produces.
    """

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        if x.dim() != 4:
            raise ValueError(f"HiLo2d expects a (B, C, H, W) map, got a {x.dim()}-d tensor {tuple(x.shape)}")
        self._check_channels(x, x.shape[1])
        return self.forward_hwc(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
