"""Dense prediction with LITv2 and HiLo: torchvision's detectors, HiLo-FPN and Semantic FPN.

Builders (nothing is downloaded; pass official weights as ``backbone_weights``):

* :func:`retinanet_litv2`, :func:`fasterrcnn_litv2`, :func:`maskrcnn_litv2`: torchvision's detectors with
  mmdet's standard settings (RetinaNet-LITv2-S 38M, Mask R-CNN-LITv2-S 47M parameters with 80 classes);
* :func:`semantic_fpn_litv2`: mmseg's Semantic FPN (LITv2-S, 150 classes: 31M parameters);
* ``fpn="hilo"`` swaps torchvision's FPN for :class:`HiLoFPN`; ``hilo_head=True`` adds a HiLo block to
  the RetinaNet head.
"""

from hilovit.dense.backbone import VARIANTS, PyramidBackbone, litv2_backbone, litv2_fpn_backbone, load_backbone_weights
from hilovit.dense.detection import HiLoRetinaNetHead, fasterrcnn_litv2, maskrcnn_litv2, retinanet_litv2
from hilovit.dense.flops import dense_flops, image_forward
from hilovit.dense.fpn import HiLoBlock2d, HiLoFPN, build_fpn
from hilovit.dense.segmentation import FPNHead, SemanticFPN, semantic_fpn_litv2

__all__ = [
    "VARIANTS",
    "FPNHead",
    "HiLoBlock2d",
    "HiLoFPN",
    "HiLoRetinaNetHead",
    "PyramidBackbone",
    "SemanticFPN",
    "build_fpn",
    "dense_flops",
    "fasterrcnn_litv2",
    "image_forward",
    "litv2_backbone",
    "litv2_fpn_backbone",
    "load_backbone_weights",
    "maskrcnn_litv2",
    "retinanet_litv2",
    "semantic_fpn_litv2",
]
