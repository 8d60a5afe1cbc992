"""Layers of the 3-D models (videos, volumes): strided patch projection, ConvFFN, HiLo3d block, conv block.

Transformer layers take channels-last volumes ``(B, T, H, W, C)`` (LayerNorm and the linear layers act on the
last axis; the depthwise convolution runs on the channels-first view); :class:`ConvBlock3d` takes NCTHW.
"""

from __future__ import annotations

import torch.nn.functional as F
from timm.layers import DropPath
from torch import Tensor, nn

from hilovit.attention import HiLo3d

__all__ = ["ConvBlock3d", "ConvFFN3d", "HiLo3dBlock", "PatchEmbed3d", "Window3d"]

Window3d = tuple[int, int, int]


class PatchEmbed3d(nn.Module):
    """Non-overlapping ``t x h x w`` patch projection + LayerNorm: ``(B, C, T, H, W)`` -> ``(B, T', H', W', D)``.

    Sides that are not a multiple of the patch are zero-padded at the end first, so any size works.
    """

    def __init__(self, patch: Window3d, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        if len(patch) != 3 or min(patch) < 1:
            raise ValueError(f"patch must be three sizes >= 1, got {patch!r}")
        self.patch = tuple(patch)
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=self.patch, stride=self.patch)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        pads = [-n % p for n, p in zip(x.shape[2:], self.patch, strict=True)]
        if any(pads):
            x = F.pad(x, (0, pads[2], 0, pads[1], 0, pads[0]))
        return self.norm(self.proj(x).permute(0, 2, 3, 4, 1))


class ConvFFN3d(nn.Module):
    """fc1 -> 3x3x3 depthwise conv -> GELU -> fc2 on ``(B, T, H, W, C)``: LITv2's ConvFFN in 3-D."""

    def __init__(self, dim: int, hidden_dim: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.dwconv = nn.Conv3d(hidden_dim, hidden_dim, 3, padding=1, groups=hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        x = self.dwconv(self.fc1(x).permute(0, 4, 1, 2, 3)).permute(0, 2, 3, 4, 1)
        return self.drop(self.fc2(self.drop(self.act(x))))


class HiLo3dBlock(nn.Module):
    """Pre-norm residual block on ``(B, T, H, W, C)``: ``x + HiLo3d(norm1(x))``, then ``x + ConvFFN3d(norm2(x))``."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window: Window3d,
        alpha: float,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = HiLo3d(dim, num_heads, qkv_bias=True, window_size=window, alpha=alpha)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = ConvFFN3d(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        B, T, H, W, C = x.shape
        attn = self.attn(self.norm1(x).reshape(B, T * H * W, C), T, H, W)
        x = x + self.drop_path(attn.reshape(B, T, H, W, C))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class ConvBlock3d(nn.Sequential):
    """Two 3x3x3 convolutions, each followed by GroupNorm and GELU, on ``(B, C, T, H, W)``: a U-Net stage."""

    def __init__(self, in_chans: int, out_chans: int, groups: int = 8) -> None:
        groups = next(g for g in range(min(groups, out_chans), 0, -1) if out_chans % g == 0)
        layers: list[nn.Module] = []
        for channels in (in_chans, out_chans):
            layers += [nn.Conv3d(channels, out_chans, 3, padding=1), nn.GroupNorm(groups, out_chans), nn.GELU()]
        super().__init__(*layers)
