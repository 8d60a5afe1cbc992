"""A small HiLo video classifier: 3-D patch embedding, HiLo3d stages, mean-pool head.

``(B, C, T, H, W)`` clips -> ``(B, num_classes)`` logits. Each stage starts with a strided 3-D patch projection
(the first one from the pixels, then 2x2x2 merging) and holds :class:`~hilovit.models.layers3d.HiLo3dBlock`
blocks (HiLo3d + depthwise-3-D-conv FFN, which supplies position, so there is no position embedding).
Build it by name with hilovit's registry (``hilovit.models.create_model("hilo3d_video_nano", num_classes=9)``).
The 3-D models are not registered with timm: timm's tools and its model test suite take images ``(B, C, H, W)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from hilovit.models.layers3d import HiLo3dBlock, PatchEmbed3d, Window3d
from hilovit.models.litv2 import init_linear  # LITv2's truncated-normal linear init

__all__ = ["HiLoVideoNet", "hilo3d_video_nano"]


class HiLoVideoNet(nn.Module):
    """Video classifier with HiLo3d attention.

    Args:
        num_classes: classes of the head (0: no head, :meth:`forward` returns pooled features).
        in_chans: channels of the input clip.
        patch: ``(t, h, w)`` size of the first patch projection.
        embed_dims: channels of each stage; stage ``i > 0`` starts with a 2x2x2 merging of the previous one.
        depths: blocks per stage.
        num_heads: heads per stage.
        windows: HiLo3d window per stage (``(1, 1, 1)``: global attention, fine on small late stages).
        alpha: Lo-Fi share of heads.
        mlp_ratio: hidden width of the ConvFFN over the stage width.
        drop_path_rate: stochastic depth, rising linearly over the blocks to this value.
    """

    def __init__(
        self,
        num_classes: int = 9,
        in_chans: int = 1,
        patch: Window3d = (2, 4, 4),
        embed_dims: Sequence[int] = (32, 64),
        depths: Sequence[int] = (1, 2),
        num_heads: Sequence[int] = (2, 4),
        windows: Sequence[Window3d] = ((2, 2, 2), (1, 1, 1)),
        alpha: float = 0.5,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        stages = len(embed_dims)
        if not len(depths) == len(num_heads) == len(windows) == stages:
            raise ValueError(
                f"embed_dims, depths, num_heads and windows need one entry per stage, got "
                f"{len(embed_dims)}, {len(depths)}, {len(num_heads)} and {len(windows)}"
            )
        self.num_classes = num_classes
        self.num_features = embed_dims[-1]
        rates = torch.linspace(0, drop_path_rate, sum(depths), device="cpu").tolist()
        self.embeds = nn.ModuleList()
        self.stages = nn.ModuleList()
        for i, (dim, depth, heads, window) in enumerate(zip(embed_dims, depths, num_heads, windows, strict=True)):
            self.embeds.append(
                PatchEmbed3d(patch if i == 0 else (2, 2, 2), in_chans if i == 0 else embed_dims[i - 1], dim)
            )
            first = sum(depths[:i])
            self.stages.append(
                nn.Sequential(
                    *(HiLo3dBlock(dim, heads, tuple(window), alpha, mlp_ratio, rates[first + j]) for j in range(depth))
                )
            )
        self.norm = nn.LayerNorm(self.num_features)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self.apply(init_linear)

    def forward_features(self, x: Tensor) -> Tensor:
        """Clip ``(B, C, T, H, W)`` -> last stage tokens ``(B, T', H', W', D)``, normalised."""
        if x.dim() != 5:
            raise ValueError(f"HiLoVideoNet expects clips (B, C, T, H, W), got a {x.dim()}-d tensor {tuple(x.shape)}")
        for i, (embed, stage) in enumerate(zip(self.embeds, self.stages, strict=True)):
            x = stage(embed(x if i == 0 else x.permute(0, 4, 1, 2, 3)))
        return self.norm(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = x.mean(dim=(1, 2, 3))
        return x if pre_logits else self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def hilo3d_video_nano(**kwargs: Any) -> HiLoVideoNet:
    """~0.15 M parameters: 2x4x4 patches, stages of 32 and 64 channels, windows 2x2x2 then global."""
    return HiLoVideoNet(**kwargs)
