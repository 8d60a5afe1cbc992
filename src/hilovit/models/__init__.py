"""LITv2 models: the classifier, the dense-prediction backbone, builders and checkpoint loading.

Importing this package registers the ``litv2_*`` builders with timm.
"""

from hilovit.models.checkpoints import (
    CheckpointError,
    CheckpointFormatError,
    CheckpointMismatchError,
    LoadResult,
    load_official,
    read_checkpoint,
    save_safetensors,
)
from hilovit.models.deform import DeformablePatchMerging
from hilovit.models.litv2 import (
    LITv2,
    LITv2Backbone,
    litv2_b,
    litv2_b_384,
    litv2_config,
    litv2_m,
    litv2_nano,
    litv2_s,
    litv2_tiny,
)

__all__ = [
    "CheckpointError",
    "CheckpointFormatError",
    "CheckpointMismatchError",
    "DeformablePatchMerging",
    "LITv2",
    "LITv2Backbone",
    "LoadResult",
    "litv2_b",
    "litv2_b_384",
    "litv2_config",
    "litv2_m",
    "litv2_nano",
    "litv2_s",
    "litv2_tiny",
    "load_official",
    "read_checkpoint",
    "save_safetensors",
]
