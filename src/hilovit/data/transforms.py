"""Train and evaluation transforms: timm's ``create_transform`` with per-dataset statistics."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch.utils.data import Dataset

from hilovit.data.datasets import IdxDataset, Transform

IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def dataset_mean_std(dataset: Dataset) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of an in-memory IDX dataset; ImageNet's statistics for anything else."""
    if not isinstance(dataset, IdxDataset):
        return IMAGENET_MEAN_STD
    pixels = dataset.images.reshape(len(dataset.images), -1, dataset.channels).astype(np.float64) / 255.0
    return tuple(pixels.mean(axis=(0, 1)).tolist()), tuple(pixels.std(axis=(0, 1)).tolist())


def build_transform(
    *,
    train: bool,
    img_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    scale: Sequence[float] = (0.08, 1.0),
    hflip: float = 0.5,
    color_jitter: float = 0.4,
    auto_augment: str | None = None,
    re_prob: float = 0.0,
) -> Transform:
    """timm's transform: random-resized crop, flip, colour jitter or RandAugment and random erasing in training,
    resize otherwise.

    ``auto_augment`` is a timm policy string such as ``"rand-m9-mstd0.5-inc1"`` (None: off); timm drops the colour
    jitter when it is set.
    """
    from timm.data import create_transform

    if not train:
        return create_transform(img_size, is_training=False, mean=tuple(mean), std=tuple(std), crop_pct=1.0)
    return create_transform(
        img_size,
        is_training=True,
        scale=tuple(scale),
        hflip=hflip,
        color_jitter=color_jitter,
        auto_augment=auto_augment,
        mean=tuple(mean),
        std=tuple(std),
        re_prob=re_prob,
        re_mode="pixel",
        interpolation="bicubic",
    )
