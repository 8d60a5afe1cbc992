"""torchvision's RetinaNet, Faster R-CNN and Mask R-CNN on a LITv2 backbone, as the paper's COCO models.

The detectors, heads, losses, anchors and post-processing are torchvision's; the builders choose the
settings of mmdet's standard models, which the paper used (LITv2-S with 80 classes: RetinaNet 38M, Mask
R-CNN 47M parameters):

* RetinaNet: pyramid P3-P7 from stages 1-3 (C3-C5), P6/P7 by stride-2 convolutions on **C5** (mmdet's
  ``add_extra_convs="on_input"``; torchvision's ``LastLevelP6P7`` with C5's channels), and torchvision's
  v1 head: four 3x3 conv + ReLU layers per tower without normalisation, 9 anchors per location
  (mmdet's ``RetinaHead``).
* Faster / Mask R-CNN: pyramid P2-P6 from all four stages, P6 by max-pooling P5, and torchvision's v1
  heads: a 3x3-conv RPN head, the two 1024-wide fc layers of the box head and the four 3x3 convs +
  deconvolution of the mask head (mmdet's ``Shared2FCBBoxHead`` and ``FCNMaskHead``).

Classes: ``num_classes`` counts object classes; targets label them ``1..num_classes`` and ``0`` is
background (torchvision's convention), so the torchvision models get ``num_classes + 1`` classes. For
RetinaNet, whose sigmoid classifier needs no background, this leaves one always-negative output per
anchor (20,745 parameters with 9 anchors and 256 channels).

Input size: torchvision resizes every image so that its short side is ``min_size`` unless the long side
would exceed ``max_size`` (800 / 1333 by default, as mmdet), then pads the batch to a multiple of 32.
An image already of that size is not resized (e.g. ``min_size=640, max_size=640`` for 640x640 images).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor, nn
from torchvision.models.detection import FasterRCNN, MaskRCNN, RetinaNet
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from hilovit.dense.backbone import check_num_classes, litv2_fpn_backbone
from hilovit.dense.fpn import HiLoBlock2d
from hilovit.models.checkpoints import Source

__all__ = [
    "HiLoRetinaNetHead",
    "check_detector_keywords",
    "detector_keywords",
    "fasterrcnn_litv2",
    "maskrcnn_litv2",
    "retinanet_litv2",
]

FPN_CHANNELS = 256  # mmdet's and torchvision's pyramid width
OBJECT_CLASSES = "object classes, background excluded"
# Arguments of torchvision's detectors that the builders set themselves.
BUILDER_SET = frozenset({"backbone", "num_classes"})


class HiLoRetinaNetHead(RetinaNetHead):
    """torchvision's RetinaNet head with a HiLo block in front of its classification and regression towers.

    The block is shared by both towers and all levels, as the towers are shared by the levels; a fixed
    window suits every level (a level smaller than the window is padded, see :class:`~hilovit.HiLo`).
    The towers keep torchvision's state-dict keys, so plain RetinaNet head weights load with only
    ``hilo.*`` missing.

    Args:
        in_channels, num_anchors, num_classes, norm_layer: as in torchvision's ``RetinaNetHead``.
        num_heads, window_size, alpha, mlp_ratio: of the HiLo block (see :class:`HiLoBlock2d`).
    """

    def __init__(
        self,
        in_channels: int,
        num_anchors: int,
        num_classes: int,
        norm_layer: Any = None,
        *,
        num_heads: int = 8,
        window_size: int = 4,
        alpha: float = 0.9,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__(in_channels, num_anchors, num_classes, norm_layer)
        self.hilo = HiLoBlock2d(in_channels, num_heads, window_size, alpha, mlp_ratio)

    def forward(self, x: list[Tensor]) -> dict[str, Tensor]:
        return super().forward([self.hilo(level) for level in x])


def retinanet_litv2(
    variant: str = "s",
    num_classes: int = 80,
    *,
    fpn: str = "plain",
    hilo_head: bool = False,
    backbone_weights: Source | None = None,
    fpn_options: Mapping[str, Any] | None = None,
    head_options: Mapping[str, Any] | None = None,
    backbone_options: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> RetinaNet:
    """torchvision RetinaNet with a LITv2 backbone (mmdet's standard RetinaNet settings, see the module doc).

    Args:
        variant: LITv2 size, ``nano``, ``tiny``, ``s``, ``m`` or ``b``.
        num_classes: object classes (labels ``1..num_classes``; background excluded).
        fpn: ``"plain"`` (torchvision's FPN) or ``"hilo"`` (:class:`~hilovit.dense.fpn.HiLoFPN` on P3-P5).
        hilo_head: put a HiLo block in front of the head towers (:class:`HiLoRetinaNetHead`).
        backbone_weights: an official LITv2 checkpoint (classification, mmdet or mmseg); nothing is
            downloaded.
        fpn_options: HiLoFPN settings (``num_heads``, ``window_sizes``, ``alpha``, ``mlp_ratio``, ...).
        head_options: settings of the head's HiLo block (``num_heads``, ``window_size``, ``alpha``, ...).
        backbone_options: LITv2 architecture overrides, e.g. ``drop_path_rate``, ``use_checkpoint``.
        **kwargs: torchvision ``RetinaNet`` arguments, e.g. ``min_size``, ``max_size``, ``score_thresh``.
    """
    check_detector_keywords(retinanet_litv2, kwargs)
    check_num_classes(num_classes, OBJECT_CLASSES)
    if head_options and not hilo_head:
        raise ValueError(f"head_options={dict(head_options)} need hilo_head=True")
    backbone = litv2_fpn_backbone(
        variant,
        out_indices=(1, 2, 3),
        fpn=fpn,
        out_channels=FPN_CHANNELS,
        extra_levels="p6p7",
        weights=backbone_weights,
        fpn_options=fpn_options,
        backbone_options=backbone_options,
    )
    model = RetinaNet(backbone, num_classes + 1, **kwargs)
    if hilo_head:
        anchors = model.anchor_generator.num_anchors_per_location()[0]
        model.head = HiLoRetinaNetHead(FPN_CHANNELS, anchors, num_classes + 1, **(head_options or {}))
    return model


def _two_stage(
    detector: type[FasterRCNN],
    variant: str,
    num_classes: int,
    fpn: str,
    weights: Source | None,
    fpn_options: Mapping[str, Any] | None,
    backbone_options: Mapping[str, Any] | None,
    kwargs: dict[str, Any],
) -> FasterRCNN:
    """Faster or Mask R-CNN on P2-P6: all four stages, P6 by subsampling P5."""
    check_num_classes(num_classes, OBJECT_CLASSES)
    backbone = litv2_fpn_backbone(
        variant,
        out_indices=(0, 1, 2, 3),
        fpn=fpn,
        out_channels=FPN_CHANNELS,
        extra_levels="pool",
        weights=weights,
        fpn_options=fpn_options,
        backbone_options=backbone_options,
    )
    return detector(backbone, num_classes + 1, **kwargs)


def fasterrcnn_litv2(
    variant: str = "s",
    num_classes: int = 80,
    *,
    fpn: str = "plain",
    backbone_weights: Source | None = None,
    fpn_options: Mapping[str, Any] | None = None,
    backbone_options: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> FasterRCNN:
    """torchvision Faster R-CNN (v1 heads) with a LITv2 backbone; arguments as :func:`retinanet_litv2`'s,
    ``**kwargs`` going to torchvision's ``FasterRCNN`` (``min_size``, ``box_score_thresh``, ...)."""
    check_detector_keywords(fasterrcnn_litv2, kwargs)
    return _two_stage(FasterRCNN, variant, num_classes, fpn, backbone_weights, fpn_options, backbone_options, kwargs)


def maskrcnn_litv2(
    variant: str = "s",
    num_classes: int = 80,
    *,
    fpn: str = "plain",
    backbone_weights: Source | None = None,
    fpn_options: Mapping[str, Any] | None = None,
    backbone_options: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> MaskRCNN:
    """torchvision Mask R-CNN (v1 heads) with a LITv2 backbone; arguments as :func:`retinanet_litv2`'s,
    ``**kwargs`` going to torchvision's ``MaskRCNN`` (``min_size``, ``box_score_thresh``, ...)."""
    check_detector_keywords(maskrcnn_litv2, kwargs)
    return _two_stage(MaskRCNN, variant, num_classes, fpn, backbone_weights, fpn_options, backbone_options, kwargs)


# Each builder's torchvision detector, then the constructors that its ``**kwargs`` reach in turn: torchvision passes
# Mask R-CNN's on to Faster R-CNN's constructor, and every detector's on to its GeneralizedRCNNTransform.
KEYWORD_TARGETS: dict[Callable[..., nn.Module], tuple[Callable[..., Any], ...]] = {
    retinanet_litv2: (RetinaNet, GeneralizedRCNNTransform),
    fasterrcnn_litv2: (FasterRCNN, GeneralizedRCNNTransform),
    maskrcnn_litv2: (MaskRCNN, FasterRCNN, GeneralizedRCNNTransform),
}


def _named_parameters(function: Callable[..., Any]) -> set[str]:
    """The parameters ``function`` takes by name (not ``*args`` or ``**kwargs``)."""
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {name for name, p in inspect.signature(function).parameters.items() if p.kind in named}


def detector_keywords(builder: Callable[..., nn.Module]) -> set[str]:
    """Every keyword ``builder`` takes: its own and those of the torchvision constructors its ``**kwargs`` reach."""
    torchvision = set().union(*map(_named_parameters, KEYWORD_TARGETS[builder])) - BUILDER_SET
    return _named_parameters(builder) | torchvision


def _hint(name: str, accepted: set[str]) -> str:
    """Where a keyword that the builder does not take belongs, or the accepted one it resembles."""
    owners = [targets[0].__name__ for other, targets in KEYWORD_TARGETS.items() if name in detector_keywords(other)]
    if owners:
        return f" ({name} is a {' / '.join(owners)} option)"
    close = difflib.get_close_matches(name, accepted, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_detector_keywords(builder: Callable[..., nn.Module], kwargs: Mapping[str, Any]) -> None:
    """Raise ValueError naming the first of ``kwargs`` that neither ``builder`` nor its torchvision detector takes.

    torchvision's detectors hand unknown keywords to their transform, which drops them: a misspelt ``min_sise``
    would silently build a detector of the default size.
    """
    accepted = detector_keywords(builder)
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ValueError(
            f"unexpected keyword argument {unknown[0]!r} for {builder.__name__}{_hint(unknown[0], accepted)}: "
            f"expected one of {', '.join(sorted(accepted))}"
        )
