"""LITv2 as the multi-scale backbone of torchvision's detectors and of the segmentation model.

:class:`PyramidBackbone` is torchvision's ``BackboneWithFPN`` pattern for a backbone that returns a list
of maps (``IntermediateLayerGetter`` needs a module that runs its children in order, which LITv2 does not):
``body`` (a :class:`~hilovit.models.LITv2Backbone`) -> ``OrderedDict`` keyed ``"0", "1", ...`` -> ``fpn``
(torchvision's :class:`~torchvision.ops.FeaturePyramidNetwork` or :class:`~hilovit.dense.fpn.HiLoFPN`),
with the ``out_channels`` attribute torchvision's detectors read.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn
from torchvision.ops.feature_pyramid_network import (
    ExtraFPNBlock,
    FeaturePyramidNetwork,
    LastLevelMaxPool,
    LastLevelP6P7,
)

from hilovit.dense.fpn import build_fpn
from hilovit.models import LITv2Backbone, LoadResult, litv2_config, load_official, read_checkpoint
from hilovit.models.checkpoints import Source
from hilovit.validation import unknown_name

__all__ = [
    "EXTRA_LEVELS",
    "VARIANTS",
    "PyramidBackbone",
    "check_num_classes",
    "litv2_backbone",
    "litv2_fpn_backbone",
    "load_backbone_weights",
]

#: LITv2 sizes of the dense models: ``<variant>`` is the architecture ``litv2_<variant>`` (see
#: :func:`~hilovit.models.litv2_config`); :mod:`hilovit.dense.builders` registers one model per family and size.
VARIANTS = ("nano", "tiny", "s", "m", "b")
# Pyramid levels above the last input level: none, P6 by max-pooling (R-CNN), P6/P7 by convolutions (RetinaNet).
EXTRA_LEVELS = (None, "pool", "p6p7")


class PyramidBackbone(nn.Module):
    """A backbone returning a list of maps, followed by a feature pyramid: image -> ``OrderedDict`` of maps.

    Args:
        body: returns one NCHW map per level, highest resolution first.
        fpn: takes the ``OrderedDict`` of those maps (keys ``"0"``, ``"1"``, ...) and returns the pyramid.
        out_channels: channels of every pyramid level (torchvision's detectors read this attribute).
    """

    def __init__(self, body: nn.Module, fpn: FeaturePyramidNetwork, out_channels: int) -> None:
        super().__init__()
        self.body = body
        self.fpn = fpn
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.fpn(OrderedDict((str(level), feature) for level, feature in enumerate(self.body(x))))


def check_num_classes(num_classes: int, meaning: str) -> None:
    """Raise ValueError unless ``num_classes`` is an int >= 1; ``meaning`` says what it counts."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes ({meaning}) must be an int >= 1, got {num_classes!r}")


def _architecture(variant: str) -> dict[str, Any]:
    if variant not in VARIANTS:
        raise ValueError(unknown_name("LITv2 variant", variant, VARIANTS))
    return litv2_config(f"litv2_{variant}")


def load_backbone_weights(backbone: LITv2Backbone, source: Source) -> LoadResult:
    """Load official LITv2 weights (classification, mmdet or mmseg checkpoint, or hilovit's) into ``backbone``.

    A classification checkpoint has no output norms ``norm0..3``; they then keep their initialisation (and
    train with the detector), as in the official detection code. Any other difference is a
    :class:`~hilovit.models.CheckpointMismatchError`.
    """
    state = read_checkpoint(source)
    output_norms = tuple(f"norm{i}." for i in range(len(backbone.layers)))
    has_output_norms = any(key.removeprefix("backbone.").startswith(output_norms) for key in state)
    return load_official(backbone, state, allow_missing=() if has_output_norms else output_norms)


def litv2_backbone(
    variant: str,
    *,
    out_indices: Sequence[int] = (0, 1, 2, 3),
    with_norm0: bool = False,
    weights: Source | None = None,
    **kwargs: Any,
) -> LITv2Backbone:
    """A :class:`~hilovit.models.LITv2Backbone` of a named variant (``nano``, ``tiny``, ``s``, ``m``, ``b``).

    Args:
        out_indices: stages whose outputs are returned (strides 4, 8, 16, 32).
        with_norm0: give stage 0 an output norm (the official segmentation backbone has one).
        weights: an official checkpoint to load (see :func:`load_backbone_weights`); nothing is downloaded.
        **kwargs: architecture overrides, e.g. ``drop_path_rate`` or ``use_checkpoint``.
    """
    config = {**_architecture(variant), **kwargs}
    backbone = LITv2Backbone(out_indices=out_indices, with_norm0=with_norm0, **config)
    if weights is not None:
        load_backbone_weights(backbone, weights)
    return backbone


def litv2_fpn_backbone(
    variant: str = "s",
    *,
    out_indices: Sequence[int] = (0, 1, 2, 3),
    fpn: str = "plain",
    out_channels: int = 256,
    extra_levels: str | None = None,
    with_norm0: bool = False,
    weights: Source | None = None,
    fpn_options: Mapping[str, Any] | None = None,
    backbone_options: Mapping[str, Any] | None = None,
) -> PyramidBackbone:
    """LITv2 and a feature pyramid of ``out_channels`` channels on the stages ``out_indices``.

    Args:
        variant: ``nano``, ``tiny``, ``s``, ``m`` or ``b``.
        out_indices: backbone stages that feed the pyramid.
        fpn: ``"plain"`` (torchvision's FPN) or ``"hilo"`` (:class:`~hilovit.dense.fpn.HiLoFPN`).
        out_channels: channels of every pyramid level.
        extra_levels: ``None``; ``"pool"``, P6 by stride-2 subsampling of the last level (torchvision's
            ``LastLevelMaxPool``, Faster/Mask R-CNN); ``"p6p7"``, P6 and P7 by stride-2 3x3 convolutions, P6
            on the last *backbone* map (torchvision's ``LastLevelP6P7`` with its channels; mmdet's
            ``add_extra_convs="on_input"``, RetinaNet).
        with_norm0: as in :func:`litv2_backbone`.
        weights: an official backbone checkpoint (see :func:`load_backbone_weights`).
        fpn_options: HiLo block settings for ``fpn="hilo"`` (see :class:`~hilovit.dense.fpn.HiLoFPN`).
        backbone_options: architecture overrides for the backbone (see :func:`litv2_backbone`).
    """
    if out_channels < 1:
        raise ValueError(f"out_channels must be >= 1, got {out_channels}")
    if extra_levels not in EXTRA_LEVELS:
        raise ValueError(f"unknown extra_levels {extra_levels!r}; expected one of {EXTRA_LEVELS}")
    body = litv2_backbone(
        variant, out_indices=out_indices, with_norm0=with_norm0, weights=weights, **(backbone_options or {})
    )
    extra_blocks: ExtraFPNBlock | None = None
    if extra_levels == "pool":
        extra_blocks = LastLevelMaxPool()
    elif extra_levels == "p6p7":
        extra_blocks = LastLevelP6P7(body.out_channels[-1], out_channels)
    pyramid = build_fpn(fpn, list(body.out_channels), out_channels, extra_blocks, **(fpn_options or {}))
    return PyramidBackbone(body, pyramid, out_channels)
