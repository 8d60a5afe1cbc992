"""A 3-D U-Net with HiLo3d attention in its low-resolution stages, for volumetric segmentation.

Full-resolution and 1/2-resolution stages are convolutional (:class:`~hilovit.models.layers3d.ConvBlock3d`):
there the token count makes attention expensive and local detail is what matters. The stages at 1/4 and 1/8
(the bottleneck) mix with ``mixer``: ``"hilo"`` (HiLo3d blocks: windows for detail, pooled global keys for
structure), ``"window"`` (the same blocks with every head local, alpha 0) or ``"conv"`` (conv blocks), which
makes the ablation a one-argument change. The decoder upsamples with transposed convolutions, concatenates the
skip connection and applies a conv block; a 1x1x1 convolution gives the class logits
``(B, num_classes, D, H, W)``. Inputs of any size are zero-padded to a multiple of 8 and the logits cropped back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hilovit.models.layers3d import ConvBlock3d, HiLo3dBlock, Window3d
from hilovit.models.litv2 import init_linear

__all__ = ["MIXERS", "HiLoUNet3d", "hilo3d_unet_nano"]

MIXERS = ("hilo", "window", "conv")


class _TokenStage(nn.Module):
    """HiLo3d blocks on an NCTHW map: projection to ``dim`` channels, blocks on the channels-last view, back."""

    def __init__(self, in_chans: int, dim: int, depth: int, heads: int, window: Window3d, alpha: float) -> None:
        super().__init__()
        self.proj = nn.Conv3d(in_chans, dim, 1)
        self.blocks = nn.Sequential(*(HiLo3dBlock(dim, heads, window, alpha) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        x = self.blocks(self.proj(x).permute(0, 2, 3, 4, 1))
        return self.norm(x).permute(0, 4, 1, 2, 3)


class HiLoUNet3d(nn.Module):
    """U-Net over four resolutions (1, 1/2, 1/4, 1/8) with conv stages high and ``mixer`` stages low.

    Args:
        num_classes: output classes (background included).
        in_chans: input channels.
        widths: channels at the four resolutions.
        mixer: what the 1/4 and 1/8 stages are made of: one of :data:`MIXERS`.
        depths: blocks in the 1/4 and 1/8 stages (token mixers only; conv stages are one ConvBlock3d).
        num_heads: heads in the 1/4 and 1/8 stages.
        window: HiLo3d window of those stages.
        alpha: Lo-Fi share of heads for ``mixer="hilo"`` (``"window"`` forces 0).
    """

    def __init__(
        self,
        num_classes: int = 3,
        in_chans: int = 1,
        widths: Sequence[int] = (16, 32, 64, 128),
        mixer: str = "hilo",
        depths: Sequence[int] = (1, 1),
        num_heads: Sequence[int] = (2, 4),
        window: Window3d = (2, 2, 2),
        alpha: float = 0.5,
    ) -> None:
        super().__init__()
        if mixer not in MIXERS:
            raise ValueError(f"mixer must be one of {MIXERS}, got {mixer!r}")
        if len(widths) != 4 or len(depths) != 2 or len(num_heads) != 2:
            raise ValueError(
                f"expected 4 widths, 2 depths and 2 num_heads, got {len(widths)}, {len(depths)}, {len(num_heads)}"
            )
        self.num_classes, self.mixer = num_classes, mixer
        alpha = 0.0 if mixer == "window" else alpha
        self.encoder = nn.ModuleList([ConvBlock3d(in_chans, widths[0]), ConvBlock3d(widths[0], widths[1])])
        for i in (2, 3):
            if mixer == "conv":
                self.encoder.append(ConvBlock3d(widths[i - 1], widths[i]))
            else:
                stage = _TokenStage(widths[i - 1], widths[i], depths[i - 2], num_heads[i - 2], tuple(window), alpha)
                self.encoder.append(stage)
        self.down = nn.ModuleList(nn.Conv3d(widths[i], widths[i], 2, stride=2) for i in range(3))
        self.up = nn.ModuleList(nn.ConvTranspose3d(widths[i + 1], widths[i], 2, stride=2) for i in range(3))
        self.decoder = nn.ModuleList(ConvBlock3d(2 * widths[i], widths[i]) for i in range(3))
        self.head = nn.Conv3d(widths[0], num_classes, 1)
        self.apply(init_linear)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 5:
            raise ValueError(f"HiLoUNet3d expects volumes (B, C, D, H, W), got a {x.dim()}-d tensor {tuple(x.shape)}")
        size = x.shape[2:]
        pads = [-n % 8 for n in size]
        if any(pads):
            x = F.pad(x, (0, pads[2], 0, pads[1], 0, pads[0]))
        skips = []
        for i, stage in enumerate(self.encoder):
            x = stage(x if i == 0 else self.down[i - 1](x))
            skips.append(x)
        for i in (2, 1, 0):
            x = self.decoder[i](torch.cat((self.up[i](x), skips[i]), dim=1))
        logits = self.head(x)
        return logits[:, :, : size[0], : size[1], : size[2]]


def hilo3d_unet_nano(**kwargs: Any) -> HiLoUNet3d:
    """~0.9 M parameters: widths 16/32/64/128, one HiLo3d block (2x2x2 windows) at 1/4 and at 1/8.

    Built by name with hilovit's registry (``hilovit.models.create_model("hilo3d_unet_nano")``), not timm's."""
    return HiLoUNet3d(**kwargs)
