"""Real images for post-training quantisation: a calibration set and a disjoint evaluation set.

A source is the bundled Fashion-MNIST (``None``), a dataset directory with splits (IDX files or ImageFolder
``train/`` + ``val/``/``test/``: calibration from ``train``, evaluation from the test split, with labels), or any
folder of image files (searched recursively, no labels: the first images calibrate, the next ones evaluate).
Images are converted to the model's channels (grey or RGB), resized and normalised as in evaluation.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor

from hilovit.data import DatasetNotFoundError, build_dataset, build_transform
from hilovit.data.images import is_image_file, open_image, verify_image
from hilovit.data.transforms import IMAGENET_MEAN_STD
from hilovit.validation import interval

__all__ = ["ImageSet", "ImageSource"]


@dataclass(frozen=True)
class ImageSet:
    """Normalised images ``(N, C, H, W)`` and their class labels (None for an unlabelled folder)."""

    images: Tensor
    labels: Tensor | None

    def batches(self, batch_size: int) -> list[Tensor]:
        return list(self.images.split(batch_size))


class ImageSource:
    """Where calibration and evaluation images come from, prepared for a model's input.

    Args:
        root: None for the bundled Fashion-MNIST, a dataset directory with splits, or a folder of images.
        img_size: side the images are resized (and centre-cropped) to.
        in_chans: 1 (grey) or 3 (RGB) channels, as the model takes.
        mean, std: per-channel normalisation (default ImageNet's, or their grey average for one channel).
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None,
        *,
        img_size: int,
        in_chans: int = 3,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        interval(1, integer=True).check("img_size", img_size)
        if in_chans not in (1, 3):
            raise ValueError(f"in_chans must be 1 (grey) or 3 (RGB) for image calibration, got {in_chans!r}")
        default_mean, default_std = (
            IMAGENET_MEAN_STD if in_chans == 3 else tuple((sum(s) / 3,) for s in IMAGENET_MEAN_STD)
        )
        self.mode = "RGB" if in_chans == 3 else "L"
        self.transform = build_transform(
            train=False, img_size=img_size, mean=mean or default_mean, std=std or default_std
        )
        self.root = root
        self.files: list[Path] | None = None
        if root is not None:
            try:
                build_dataset(root, "train")
            except DatasetNotFoundError:
                self.files = self._image_files(Path(root))

    @staticmethod
    def _image_files(root: Path) -> list[Path]:
        if not root.is_dir():
            raise FileNotFoundError(f"calibration images: {root} is not a directory (expected a folder of images)")
        files = sorted(p for p in root.rglob("*") if p.is_file() and is_image_file(p))
        if not files:
            raise FileNotFoundError(f"calibration images: no image files under {root} (expected .png/.jpg/...)")
        return files

    def _prepare(self, image: Image.Image) -> Tensor:
        return self.transform(image.convert(self.mode))

    def _from_files(self, start: int, count: int | None, what: str) -> ImageSet:
        assert self.files is not None
        chosen = self.files[start:] if count is None else self.files[start : start + count]
        if not chosen or (count is not None and len(chosen) < count):
            raise ValueError(
                f"{self.root} has {len(self.files)} images: too few for {what} (images {start} to "
                f"{start + (count or 1) - 1}); pass a folder with more images or ask for fewer"
            )
        images = []
        for path in chosen:
            verify_image(path)
            with open_image(path) as image:
                images.append(self._prepare(image))
        return ImageSet(torch.stack(images), None)

    def _from_split(self, split: str, count: int | None) -> ImageSet:
        dataset = build_dataset(self.root, split)
        total = len(dataset) if count is None else min(count, len(dataset))
        images, labels = [], []
        for index in range(total):
            image, label = dataset[index]
            images.append(self._prepare(image))
            labels.append(label)
        return ImageSet(torch.stack(images), torch.tensor(labels))

    def calibration(self, count: int) -> ImageSet:
        """``count`` images to calibrate with (the training split, or the folder's first images)."""
        interval(1, integer=True).check("calibration count", count)
        if self.files is not None:
            return self._from_files(0, count, "calibration")
        return self._from_split("train", count)

    def evaluation(self, count: int | None, calibration_count: int) -> ImageSet:
        """``count`` images (None: all) disjoint from the first ``calibration_count`` calibration images."""
        if count is not None:
            interval(1, integer=True).check("evaluation count", count)
        if self.files is not None:
            return self._from_files(calibration_count, count, "evaluation after the calibration images")
        return self._from_split("test", count)
