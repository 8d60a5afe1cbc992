"""LITv2 models: the classifier, the dense-prediction backbone, builders and checkpoint loading; 3-D HiLo models.

Importing this package registers the ``litv2_*`` and ``hilo3d_*`` builders with timm.
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
from hilovit.models.video import HiLoVideoNet, hilo3d_video_nano
from hilovit.models.volume import HiLoUNet3d, hilo3d_unet_nano

__all__ = [
    "CheckpointError",
    "CheckpointFormatError",
    "CheckpointMismatchError",
    "DeformablePatchMerging",
    "HiLoUNet3d",
    "HiLoVideoNet",
    "LITv2",
    "LITv2Backbone",
    "LoadResult",
    "hilo3d_unet_nano",
    "hilo3d_video_nano",
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
