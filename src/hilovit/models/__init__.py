"""LITv2 models: the classifier, the dense-prediction backbone, builders and checkpoint loading; 3-D HiLo models;
the one model registry (:func:`list_models` / :func:`create_model`) of every model hilovit builds.

Importing this package registers the ``litv2_*`` builders with timm.
"""

from hilovit.models.checkpoints import (
    CheckpointError,
    CheckpointFormatError,
    CheckpointMismatchError,
    LoadResult,
    load_official,
    read_arch,
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
from hilovit.models.registry import create_model, create_model_from_file, list_models, register_model
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
    "create_model",
    "create_model_from_file",
    "hilo3d_unet_nano",
    "hilo3d_video_nano",
    "list_models",
    "litv2_b",
    "litv2_b_384",
    "litv2_config",
    "litv2_m",
    "litv2_nano",
    "litv2_s",
    "litv2_tiny",
    "load_official",
    "read_arch",
    "read_checkpoint",
    "register_model",
    "save_safetensors",
]
