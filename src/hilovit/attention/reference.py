"""The seed's formulation of HiLo (explicit softmax, materialised attention matrices).

Kept as the correctness reference for tests and the baseline for benchmarks. It has the same parameters
as :class:`~hilovit.attention.hilo.HiLo` and the same zero-pad-and-crop semantics on any map size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from hilovit.attention.hilo import HiLo

__all__ = ["HiLoReference"]


class HiLoReference(HiLo):
    """HiLo computed as in the seed and the official code: ``softmax(q @ k^T * scale) @ v``."""

    def forward_hwc(self, x: Tensor) -> Tensor:
        _, H, W, _ = x.shape
        pad_bottom, pad_right = -H % self.ws, -W % self.ws
        x = F.pad(x, (0, 0, 0, pad_right, 0, pad_bottom))
        outputs = []
        if self.h_heads > 0:
            outputs.append(self._hifi_explicit(x))
        if self.l_heads > 0:
            outputs.append(self._lofi_explicit(x))
        return self.proj_drop(torch.cat(outputs, dim=-1)[:, :H, :W])

    def _attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return F.dropout(attn, self._dropout_p()) @ v

    def _hifi_explicit(self, x: Tensor) -> Tensor:
        B, H, W, C = x.shape
        ws, heads, hd = self.ws, self.h_heads, self.head_dim
        rows, cols = H // ws, W // ws
        x = x.reshape(B, rows, ws, cols, ws, C).transpose(2, 3)
        qkv = self.h_qkv(x).reshape(B, rows * cols, -1, 3, heads, hd).permute(3, 0, 1, 4, 2, 5)
        out = self._attend(qkv[0], qkv[1], qkv[2])  # B, windows, heads, ws*ws, hd
        out = out.transpose(2, 3).reshape(B, rows, cols, ws, ws, self.h_dim)
        return self.h_proj(out.transpose(2, 3).reshape(B, H, W, self.h_dim))

    def _lofi_explicit(self, x: Tensor) -> Tensor:
        B, H, W, C = x.shape
        heads, hd = self.l_heads, self.head_dim
        q = self.l_q(x).reshape(B, H * W, heads, hd).permute(0, 2, 1, 3)
        if self.ws > 1:
            x = F.avg_pool2d(x.permute(0, 3, 1, 2), self.ws).reshape(B, C, -1).permute(0, 2, 1)
        kv = self.l_kv(x).reshape(B, -1, 2, heads, hd).permute(2, 0, 3, 1, 4)
        out = self._attend(q, kv[0], kv[1]).transpose(1, 2).reshape(B, H, W, self.l_dim)
        return self.l_proj(out)
