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

HiLo heads (each adds a :class:`~hilovit.dense.fpn.HiLoBlock2d` and keeps torchvision's state-dict keys, so plain
head weights load with only ``hilo.*`` missing): RetinaNet's ``hilo_head=True`` (:class:`HiLoRetinaNetHead`),
Faster / Mask R-CNN's ``hilo_rpn_head=True`` (:class:`HiLoRPNHead`: one block before the RPN conv, shared by the
levels) and ``hilo_box_head=True`` (:class:`HiLoBoxHead`: a block over the 7x7 RoI features before the two fc
layers). torchvision's own ``rpn_head=`` / ``box_head=`` module arguments keep their meaning.

Classes: ``num_classes`` counts object classes; targets label them ``1..num_classes`` and ``0`` is
background (torchvision's convention), so the torchvision models get ``num_classes + 1`` classes. For
RetinaNet, whose sigmoid classifier needs no background, this leaves one always-negative output per
anchor (20,745 parameters with 9 anchors and 256 channels).

Input size: torchvision resizes every image so that its short side is ``min_size`` unless the long side
would exceed ``max_size`` (800 / 1333 by default, as mmdet), then pads the batch to a multiple of 32.
An image already of that size is not resized (e.g. ``min_size=640, max_size=640`` for 640x640 images).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor, nn
from torchvision.models.detection import FasterRCNN, MaskRCNN, RetinaNet
from torchvision.models.detection.faster_rcnn import TwoMLPHead
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.models.detection.rpn import RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from hilovit.dense.backbone import check_num_classes, litv2_fpn_backbone
from hilovit.dense.fpn import HiLoBlock2d
from hilovit.models.checkpoints import Source
from hilovit.validation import unknown_name

__all__ = [
    "HiLoBoxHead",
    "HiLoRPNHead",
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
BOX_HEAD_WIDTH = 1024  # torchvision's (and mmdet's) TwoMLPHead representation size


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


class HiLoRPNHead(RPNHead):
    """torchvision's RPN head with a HiLo block before its 3x3 conv, shared by all levels as the conv is.

    Keeps torchvision's state-dict keys (plain RPN head weights load with only ``hilo.*`` missing).

    Args:
        in_channels, num_anchors, conv_depth: as in torchvision's ``RPNHead``.
        num_heads, window_size, alpha, mlp_ratio: of the HiLo block (see :class:`HiLoBlock2d`).
    """

    def __init__(
        self,
        in_channels: int,
        num_anchors: int,
        conv_depth: int = 1,
        *,
        num_heads: int = 8,
        window_size: int = 4,
        alpha: float = 0.9,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__(in_channels, num_anchors, conv_depth)
        self.hilo = HiLoBlock2d(in_channels, num_heads, window_size, alpha, mlp_ratio)

    def forward(self, x: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        return super().forward([self.hilo(level) for level in x])


class HiLoBoxHead(TwoMLPHead):
    """torchvision's box head (two fc layers on the flattened RoI features) after a HiLo block over each RoI's
    ``resolution x resolution`` feature map, so every RoI cell sees the others before the fc layers.

    Keeps torchvision's ``fc6`` / ``fc7`` keys (plain box head weights load with only ``hilo.*`` missing).

    Args:
        in_channels: channels of the RoI features (the FPN width).
        resolution: side of the pooled RoI features (torchvision's ``MultiScaleRoIAlign``: 7).
        representation_size: width of the fc layers.
        num_heads, window_size, alpha, mlp_ratio: of the HiLo block; the default window 2 pads 7x7 to 8x8, so the
            Hi-Fi heads see 2x2 cells and the Lo-Fi heads a 4x4 pooled grid.
    """

    def __init__(
        self,
        in_channels: int,
        resolution: int,
        representation_size: int = BOX_HEAD_WIDTH,
        *,
        num_heads: int = 8,
        window_size: int = 2,
        alpha: float = 0.9,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__(in_channels * resolution**2, representation_size)
        self.hilo = HiLoBlock2d(in_channels, num_heads, window_size, alpha, mlp_ratio)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(self.hilo(x))


def _check_head_choice(name: str, hilo: bool, options: Mapping[str, Any] | None, kwargs: Mapping[str, Any]) -> None:
    """``hilo_<name>=True`` and torchvision's ``<name>=`` module both set one head; options need the HiLo head."""
    if options and not hilo:
        raise ValueError(f"{name}_options={dict(options)} need hilo_{name}=True")
    if hilo and kwargs.get(name) is not None:
        raise ValueError(f"hilo_{name}=True and {name}={type(kwargs[name]).__name__}(...) both set the head; pass one")


def _two_stage(
    detector: type[FasterRCNN],
    variant: str,
    num_classes: int,
    fpn: str,
    hilo_heads: Mapping[str, tuple[bool, Mapping[str, Any] | None]],
    weights: Source | None,
    fpn_options: Mapping[str, Any] | None,
    backbone_options: Mapping[str, Any] | None,
    kwargs: dict[str, Any],
) -> FasterRCNN:
    """Faster or Mask R-CNN on P2-P6: all four stages, P6 by subsampling P5; ``hilo_heads`` maps ``rpn_head`` and
    ``box_head`` to (use the HiLo head, its options)."""
    check_num_classes(num_classes, OBJECT_CLASSES)
    for name, (hilo, options) in hilo_heads.items():
        _check_head_choice(name, hilo, options, kwargs)
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
    model = detector(backbone, num_classes + 1, **kwargs)
    hilo_rpn, rpn_options = hilo_heads["rpn_head"]
    if hilo_rpn:
        anchors = model.rpn.anchor_generator.num_anchors_per_location()[0]
        model.rpn.head = HiLoRPNHead(FPN_CHANNELS, anchors, **(rpn_options or {}))
    hilo_box, box_options = hilo_heads["box_head"]
    if hilo_box:
        resolution = model.roi_heads.box_roi_pool.output_size[0]
        width = model.roi_heads.box_predictor.cls_score.in_features
        model.roi_heads.box_head = HiLoBoxHead(FPN_CHANNELS, resolution, width, **(box_options or {}))
    return model


def fasterrcnn_litv2(
    variant: str = "s",
    num_classes: int = 80,
    *,
    fpn: str = "plain",
    hilo_rpn_head: bool = False,
    hilo_box_head: bool = False,
    backbone_weights: Source | None = None,
    fpn_options: Mapping[str, Any] | None = None,
    rpn_head_options: Mapping[str, Any] | None = None,
    box_head_options: Mapping[str, Any] | None = None,
    backbone_options: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> FasterRCNN:
    """torchvision Faster R-CNN (v1 heads) with a LITv2 backbone; arguments as :func:`retinanet_litv2`'s,
    ``**kwargs`` going to torchvision's ``FasterRCNN`` (``min_size``, ``box_score_thresh``, ``rpn_head``, ...).

    Args:
        hilo_rpn_head: a HiLo block before the RPN conv (:class:`HiLoRPNHead`), options in ``rpn_head_options``.
        hilo_box_head: a HiLo block over the RoI features before the fc layers (:class:`HiLoBoxHead`), options in
            ``box_head_options``.
    """
    check_detector_keywords(fasterrcnn_litv2, kwargs)
    heads = {"rpn_head": (hilo_rpn_head, rpn_head_options), "box_head": (hilo_box_head, box_head_options)}
    return _two_stage(
        FasterRCNN, variant, num_classes, fpn, heads, backbone_weights, fpn_options, backbone_options, kwargs
    )


def maskrcnn_litv2(
    variant: str = "s",
    num_classes: int = 80,
    *,
    fpn: str = "plain",
    hilo_rpn_head: bool = False,
    hilo_box_head: bool = False,
    backbone_weights: Source | None = None,
    fpn_options: Mapping[str, Any] | None = None,
    rpn_head_options: Mapping[str, Any] | None = None,
    box_head_options: Mapping[str, Any] | None = None,
    backbone_options: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> MaskRCNN:
    """torchvision Mask R-CNN (v1 heads) with a LITv2 backbone; arguments as :func:`fasterrcnn_litv2`'s,
    ``**kwargs`` going to torchvision's ``MaskRCNN`` (``min_size``, ``box_score_thresh``, ``mask_head``, ...)."""
    check_detector_keywords(maskrcnn_litv2, kwargs)
    heads = {"rpn_head": (hilo_rpn_head, rpn_head_options), "box_head": (hilo_box_head, box_head_options)}
    return _two_stage(
        MaskRCNN, variant, num_classes, fpn, heads, backbone_weights, fpn_options, backbone_options, kwargs
    )


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
    return _named_parameters(builder) | _torchvision_keywords(KEYWORD_TARGETS[builder])


def _torchvision_keywords(targets: tuple[Callable[..., Any], ...]) -> set[str]:
    return set().union(*map(_named_parameters, targets)) - BUILDER_SET


def check_detector_keywords(builder: Callable[..., nn.Module], kwargs: Mapping[str, Any]) -> None:
    """Raise ValueError naming the first of ``kwargs`` that neither ``builder`` nor its torchvision detector takes.

    torchvision's detectors hand unknown keywords to their transform, which drops them: a misspelt ``min_sise``
    would silently build a detector of the default size.
    """
    accepted = detector_keywords(builder)
    unknown = sorted(set(kwargs) - accepted)
    if not unknown:
        return
    name = unknown[0]
    owners = [other.__name__ for other in KEYWORD_TARGETS if other is not builder and name in detector_keywords(other)]
    if owners:
        raise ValueError(
            f"unexpected keyword argument {name!r} for {builder.__name__} ({name} is an option of "
            f"{' / '.join(owners)}); expected one of {', '.join(sorted(accepted))}"
        )
    raise ValueError(unknown_name(f"keyword argument of {builder.__name__}", name, accepted))
