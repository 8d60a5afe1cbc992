"""The dense models in hilovit's model registry: ``<family>_<variant>`` for every family and LITv2 size.

``retinanet_litv2_nano``, ``fasterrcnn_litv2_s``, ``maskrcnn_litv2_b``, ``semantic_fpn_litv2_tiny``, ... and the
bare backbones ``litv2_<variant>_backbone``; build them with ``hilovit.models.create_model(name, num_classes=...,
fpn=..., min_size=..., max_size=...)`` (keywords of the family's builder).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from hilovit.dense.backbone import VARIANTS, litv2_backbone
from hilovit.dense.detection import detector_keywords, fasterrcnn_litv2, maskrcnn_litv2, retinanet_litv2
from hilovit.dense.segmentation import semantic_fpn_litv2
from hilovit.models import LITv2Backbone
from hilovit.models.registry import keyword_parameters, register_model

__all__ = ["FAMILIES"]

#: family -> (task, builder taking the variant first, the keywords it takes besides the variant).
FAMILIES: dict[str, tuple[str, Callable[..., nn.Module], set[str]]] = {
    "retinanet_litv2": ("detect", retinanet_litv2, detector_keywords(retinanet_litv2)),
    "fasterrcnn_litv2": ("detect", fasterrcnn_litv2, detector_keywords(fasterrcnn_litv2)),
    "maskrcnn_litv2": ("detect", maskrcnn_litv2, detector_keywords(maskrcnn_litv2)),
    "semantic_fpn_litv2": ("segment", semantic_fpn_litv2, keyword_parameters(semantic_fpn_litv2)),
}


def _variant_builder(builder: Callable[..., nn.Module], variant: str, name: str) -> Callable[..., nn.Module]:
    def build(**kwargs: Any) -> nn.Module:
        return builder(variant, **kwargs)

    build.__name__ = name
    return build


def _register() -> None:
    backbone_keywords = (keyword_parameters(litv2_backbone) | keyword_parameters(LITv2Backbone)) - {"variant"}
    for variant in VARIANTS:
        for family, (task, builder, keywords) in FAMILIES.items():
            name = f"{family}_{variant}"
            register_model(name, task=task, keywords=keywords - {"variant"})(_variant_builder(builder, variant, name))
        name = f"litv2_{variant}_backbone"
        register_model(name, task="backbone", keywords=backbone_keywords)(
            _variant_builder(litv2_backbone, variant, name)
        )


_register()
