"""The attention mechanisms HiLo is compared with, each at its best, plus wrappers of timm's own modules.

Every layer takes tokens ``(B, N, C)`` laid out row by row on an ``H x W`` map and returns the same shape,
as :class:`~hilovit.attention.hilo.HiLo` does, and reports ``flops(H, W)`` (multiply-accumulates of the
matrix products, the count papers report):

* :class:`GlobalAttention`: multi-head self-attention over all tokens (ViT's MSA);
* :class:`SpatialReductionAttention`: keys/values from a ``sr x sr`` stride-``sr`` convolution of the
  map followed by LayerNorm (PVT's SRA; same parameter names as timm's PVTv2 ``Attention``);
* :class:`WindowAttention`: attention inside non-overlapping ``s x s`` windows; with ``shift_size`` the
  windows are cyclically shifted and tokens attend only within their region (Swin's mask);
* :class:`TimmSwinAttention`, :class:`TimmPVTv2Attention`: timm's Swin ``WindowAttention`` and PVTv2
  ``Attention`` modules as they are, behind the same interface, so peers' code is measured too.

Ours use ``scaled_dot_product_attention``; maps that are not a multiple of the window are zero-padded on
the right/bottom and cropped back, like Swin and HiLo.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.models import pvt_v2, swin_transformer
from torch import Tensor, nn

__all__ = [
    "GlobalAttention",
    "SpatialReductionAttention",
    "TimmPVTv2Attention",
    "TimmSwinAttention",
    "WindowAttention",
    "shifted_window_mask",
]


def _check_tokens(x: Tensor, H: int, W: int, dim: int) -> None:
    if x.dim() != 3 or x.shape[1] != H * W or x.shape[2] != dim or H < 1 or W < 1:
        raise ValueError(f"expected tokens (B, H*W={H * W}, C={dim}) with H, W >= 1, got {tuple(x.shape)}")


def _check_heads(dim: int, num_heads: int) -> None:
    if num_heads < 1 or dim % num_heads != 0:
        raise ValueError(f"dim={dim} must be divisible by num_heads={num_heads} >= 1")


def _heads(x: Tensor, heads: int) -> Tensor:
    """``(B, N, heads * d) -> (B, heads, N, d)``."""
    B, N, C = x.shape
    return x.view(B, N, heads, C // heads).transpose(1, 2)


def _merge_heads(x: Tensor) -> Tensor:
    """``(B, heads, N, d) -> (B, N, heads * d)``."""
    B, heads, N, d = x.shape
    return x.transpose(1, 2).reshape(B, N, heads * d)


class GlobalAttention(nn.Module):
    """Multi-head self-attention over all ``H * W`` tokens (ViT)."""

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = True) -> None:
        super().__init__()
        _check_heads(dim, num_heads)
        self.dim, self.num_heads = dim, num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, H: int, W: int) -> Tensor:
        _check_tokens(x, H, W, self.dim)
        B, N, C = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4).unbind(0)
        return self.proj(_merge_heads(F.scaled_dot_product_attention(q, k, v)))

    def flops(self, H: int, W: int) -> int:
        tokens = H * W
        return tokens * self.dim * self.dim * 4 + 2 * tokens * tokens * self.dim


def sra_flops(dim: int, H: int, W: int, sr_ratio: int) -> int:
    """Multiply-accumulates of spatial-reduction attention on an ``H x W`` map."""
    tokens, keys = H * W, (H // sr_ratio) * (W // sr_ratio)
    reduction = keys * dim * dim * sr_ratio * sr_ratio if sr_ratio > 1 else 0
    return tokens * dim * dim * 2 + reduction + keys * dim * dim * 2 + 2 * tokens * keys * dim


class SpatialReductionAttention(nn.Module):
    """PVT's spatial-reduction attention: queries from every token, keys/values from a reduced map.

    Args:
        dim: channels.
        num_heads: attention heads.
        sr_ratio: kernel and stride of the reduction convolution (``1``: no reduction, plain MSA).
        qkv_bias: bias on the query and key/value projections.
    """

    def __init__(self, dim: int, num_heads: int = 8, sr_ratio: int = 2, qkv_bias: bool = True) -> None:
        super().__init__()
        _check_heads(dim, num_heads)
        if sr_ratio < 1:
            raise ValueError(f"sr_ratio must be >= 1, got {sr_ratio}")
        self.dim, self.num_heads, self.sr_ratio = dim, num_heads, sr_ratio
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, kernel_size=sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, H: int, W: int) -> Tensor:
        _check_tokens(x, H, W, self.dim)
        B, _N, C = x.shape
        q = _heads(self.q(x), self.num_heads)
        if self.sr_ratio > 1:
            if self.sr_ratio > H or self.sr_ratio > W:
                raise ValueError(f"SRA needs H, W >= sr_ratio={self.sr_ratio}, got H={H}, W={W}")
            # The channels-last view of the tokens is what the convolution reads fastest.
            reduced = self.sr(x.view(B, H, W, C).permute(0, 3, 1, 2))
            x = self.norm(reduced.flatten(2).transpose(1, 2))
        k, v = self.kv(x).view(B, -1, 2, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4).unbind(0)
        return self.proj(_merge_heads(F.scaled_dot_product_attention(q, k, v)))

    def flops(self, H: int, W: int) -> int:
        return sra_flops(self.dim, H, W, self.sr_ratio)


def shifted_window_mask(
    H: int, W: int, window_size: int, shift_size: int, device: torch.device | None = None
) -> Tensor:
    """Swin's attention mask for a map of ``H x W`` (multiples of the window) shifted by ``shift_size``.

    Returns ``(windows, s*s, s*s)`` booleans, True where query and key come from the same region of the
    unshifted map (the only pairs that may attend to each other).
    """
    region = torch.zeros(H, W, dtype=torch.long, device=device)
    bounds = (slice(0, -window_size), slice(-window_size, -shift_size), slice(-shift_size, None))
    label = 0
    for rows in bounds:
        for cols in bounds:
            region[rows, cols] = label
            label += 1
    s = window_size
    ids = region.view(H // s, s, W // s, s).transpose(1, 2).reshape(-1, s * s)
    return ids[:, :, None] == ids[:, None, :]


def window_flops(dim: int, H: int, W: int, window_size: int) -> int:
    """Multiply-accumulates of (shifted) window attention on an ``H x W`` map, padded to the window."""
    s = window_size
    tokens = (-(-H // s) * s) * (-(-W // s) * s)
    return tokens * dim * dim * 4 + 2 * tokens * s * s * dim


class _WindowedAttention(nn.Module):
    """Pads, (shifts,) partitions into windows, attends within each window, and undoes it all."""

    def __init__(self, dim: int, num_heads: int, window_size: int, shift_size: int) -> None:
        super().__init__()
        _check_heads(dim, num_heads)
        if window_size < 1 or not 0 <= shift_size < window_size:
            raise ValueError(
                f"expected window_size >= 1 and 0 <= shift_size < window_size, got {window_size}, {shift_size}"
            )
        self.dim, self.num_heads, self.window_size, self.shift_size = dim, num_heads, window_size, shift_size

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_heads={self.num_heads}, window_size={self.window_size}, shift={self.shift_size}"

    def attend_windows(self, windows: Tensor, mask: Tensor | None) -> Tensor:
        """``(B * windows, s*s, C) -> (B * windows, s*s, C)``; ``mask``: ``(windows, s*s, s*s)`` booleans."""
        raise NotImplementedError

    def forward(self, x: Tensor, H: int, W: int) -> Tensor:
        _check_tokens(x, H, W, self.dim)
        B, _, C = x.shape
        s, shift = self.window_size, self.shift_size
        x = x.view(B, H, W, C)
        pad_bottom, pad_right = -H % s, -W % s
        if pad_bottom or pad_right:
            x = F.pad(x, (0, 0, 0, pad_right, 0, pad_bottom))
        Hp, Wp = H + pad_bottom, W + pad_right
        mask = None
        if shift:
            x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
            mask = shifted_window_mask(Hp, Wp, s, shift, x.device)
        windows = swin_transformer.window_partition(x, (s, s)).view(-1, s * s, C)
        out = self.attend_windows(windows, mask)
        out = swin_transformer.window_reverse(out.view(-1, s, s, C), (s, s), Hp, Wp)
        if shift:
            out = torch.roll(out, shifts=(shift, shift), dims=(1, 2))
        if pad_bottom or pad_right:
            out = out[:, :H, :W]
        return out.reshape(B, H * W, C)

    def flops(self, H: int, W: int) -> int:
        return window_flops(self.dim, H, W, self.window_size)


class WindowAttention(_WindowedAttention):
    """Multi-head attention inside ``s x s`` windows; ``shift_size > 0`` gives Swin's shifted windows.

    Args:
        dim: channels.
        num_heads: attention heads.
        window_size: window side ``s``.
        shift_size: cyclic shift of the map before partitioning (Swin uses ``s // 2`` every other block);
            tokens then attend only to tokens of the same region of the unshifted map. The shift applies at
            any map size (Swin's stages turn it off, and shrink the window, when the map fits in one window).
        qkv_bias: bias on the query/key/value projection.
    """

    def __init__(
        self, dim: int, num_heads: int = 8, window_size: int = 7, shift_size: int = 0, qkv_bias: bool = True
    ) -> None:
        super().__init__(dim, num_heads, window_size, shift_size)
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def attend_windows(self, windows: Tensor, mask: Tensor | None) -> Tensor:
        Bw, n, C = windows.shape
        q, k, v = self.qkv(windows).view(Bw, n, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        if mask is not None:
            count = mask.shape[0]
            mask = mask.view(1, count, 1, n, n).expand(Bw // count, -1, -1, -1, -1).reshape(Bw, 1, n, n)
        return self.proj(_merge_heads(F.scaled_dot_product_attention(q, k, v, attn_mask=mask)))


class TimmSwinAttention(_WindowedAttention):
    """timm's Swin ``WindowAttention`` (relative position bias included) on a whole map, shifted or not."""

    def __init__(self, dim: int, num_heads: int = 8, window_size: int = 7, shift_size: int = 0) -> None:
        super().__init__(dim, num_heads, window_size, shift_size)
        self.attn = swin_transformer.WindowAttention(dim, num_heads, window_size=window_size)

    def attend_windows(self, windows: Tensor, mask: Tensor | None) -> Tensor:
        if mask is not None:  # timm's convention: additive 0 / -100 (as Swin) per window
            mask = torch.zeros(mask.shape, dtype=windows.dtype, device=windows.device).masked_fill_(~mask, -100.0)
        return self.attn(windows, mask=mask)


class TimmPVTv2Attention(nn.Module):
    """timm's PVTv2 ``Attention`` (spatial reduction by a strided convolution) behind the HiLo interface."""

    def __init__(self, dim: int, num_heads: int = 8, sr_ratio: int = 2) -> None:
        super().__init__()
        self.dim, self.sr_ratio = dim, sr_ratio
        self.attn = pvt_v2.Attention(dim, num_heads, sr_ratio=sr_ratio)

    def forward(self, x: Tensor, H: int, W: int) -> Tensor:
        _check_tokens(x, H, W, self.dim)
        return self.attn(x, [H, W])

    def flops(self, H: int, W: int) -> int:
        return sra_flops(self.dim, H, W, self.sr_ratio)
