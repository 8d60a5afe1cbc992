"""Semantic FPN (Kirillov et al., "Panoptic Feature Pyramid Networks"): the paper's ADE20K model.

As mmseg's ``FPN`` neck + ``FPNHead``, which the paper used: a 4-level pyramid of 256 channels at strides
4-32 (torchvision's FPN, or :class:`~hilovit.dense.fpn.HiLoFPN`); per level, 3x3 conv + BatchNorm + ReLU
layers of 128 channels, each followed by 2x bilinear upsampling until stride 4 (one layer for strides 4
and 8, two for 16, three for 32); the levels summed at stride 4, dropout 0.1 and a 1x1 classifier. The
logits are upsampled bilinearly to the input size. With LITv2-S and 150 classes: 31M parameters.

Any input size works: LITv2 pads internally, and each level is resized to the stride-4 map's exact size
before the sum (as mmseg does), so odd sizes need no padding by the caller.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import Conv2dNormActivation

from hilovit.dense.backbone import check_num_classes, litv2_fpn_backbone
from hilovit.models.checkpoints import Source

__all__ = ["FPNHead", "SemanticFPN", "semantic_fpn_litv2"]


def _scale_head(in_channels: int, channels: int, stride: int, base_stride: int) -> nn.Sequential:
    """3x3 conv-BN-ReLU layers, each followed by 2x upsampling, from ``stride`` down to ``base_stride``."""
    steps = int(math.log2(stride // base_stride))
    layers: list[nn.Module] = []
    for step in range(max(1, steps)):
        layers.append(Conv2dNormActivation(in_channels if step == 0 else channels, channels, 3))
        if steps:
            layers.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
    return nn.Sequential(*layers)


class FPNHead(nn.Module):
    """Semantic FPN head: pyramid levels -> per-level conv towers -> sum at the finest stride -> logits.

    Args:
        in_channels: channels of each pyramid level, finest first.
        strides: stride of each level; each must be the finest times a power of two.
        num_classes: classes of the logits.
        channels: width of the towers (128 in the paper).
        dropout: dropout before the classifier.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        strides: Sequence[int],
        num_classes: int,
        channels: int = 128,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if len(in_channels) != len(strides) or not strides:
            raise ValueError(f"need one stride per level, got in_channels={in_channels}, strides={strides}")
        base = strides[0]
        for stride in strides:
            ratio = stride // base
            if stride % base or ratio & (ratio - 1):
                raise ValueError(f"strides={tuple(strides)} must each be {base} times a power of two")
        self.scale_heads = nn.ModuleList(
            _scale_head(c, channels, stride, base) for c, stride in zip(in_channels, strides, strict=True)
        )
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        """Levels (finest first) -> logits ``(B, num_classes, h, w)`` at the finest level's size."""
        output = self.scale_heads[0](features[0])
        size = output.shape[-2:]
        for head, feature in zip(self.scale_heads[1:], features[1:], strict=True):
            output = output + F.interpolate(head(feature), size=size, mode="bilinear", align_corners=False)
        return self.classifier(self.dropout(output))


class SemanticFPN(nn.Module):
    """A pyramid backbone and a decode head: image -> logits at the input size.

    Args:
        backbone: image -> ``OrderedDict`` of pyramid levels, finest first (a :class:`PyramidBackbone`).
        decode_head: the list of levels -> logits at the finest level (an :class:`FPNHead`).
    """

    def __init__(self, backbone: nn.Module, decode_head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.decode_head = decode_head

    def forward(self, images: Tensor) -> Tensor:
        """Images ``(B, 3, H, W)`` (normalised) -> logits ``(B, num_classes, H, W)``."""
        logits = self.decode_head(list(self.backbone(images).values()))
        return F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)


def semantic_fpn_litv2(
    variant: str = "s",
    num_classes: int = 150,
    *,
    fpn: str = "plain",
    backbone_weights: Source | None = None,
    fpn_options: Mapping[str, Any] | None = None,
    backbone_options: Mapping[str, Any] | None = None,
    channels: int = 128,
    dropout: float = 0.1,
) -> SemanticFPN:
    """Semantic FPN on LITv2 (the paper's ADE20K model; 31M parameters for ``"s"`` and 150 classes).

    Args:
        variant: LITv2 size, ``nano``, ``tiny``, ``s``, ``m`` or ``b``.
        num_classes: classes of the logits, background included if the labels have one.
        fpn: ``"plain"`` (torchvision's FPN) or ``"hilo"`` (:class:`~hilovit.dense.fpn.HiLoFPN`).
        backbone_weights: an official LITv2 checkpoint (classification or mmseg); nothing is downloaded.
        fpn_options: HiLoFPN settings.
        backbone_options: LITv2 architecture overrides, e.g. ``drop_path_rate``.
        channels, dropout: of the head.
    """
    check_num_classes(num_classes, "classes of the logits")
    backbone = litv2_fpn_backbone(
        variant,
        out_indices=(0, 1, 2, 3),
        fpn=fpn,
        with_norm0=True,  # the official segmentation backbone normalises all four outputs
        weights=backbone_weights,
        fpn_options=fpn_options,
        backbone_options=backbone_options,
    )
    strides = backbone.body.out_strides
    head = FPNHead([backbone.out_channels] * len(strides), strides, num_classes, channels, dropout)
    return SemanticFPN(backbone, head)
