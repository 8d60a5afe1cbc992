"""Moving Fashion-MNIST: clips of one garment sliding across a black canvas, labelled by the direction of motion.

Each clip is ``(1, frames, size, size)`` in [0, 1]: a Fashion-MNIST image shrunk to ``object_size`` pixels
moves ``speed`` pixels per frame (drawn from ``speeds``) in one of the nine :data:`MOTIONS` (static or one of
eight directions), from a start that keeps it inside the frame. Clip ``i`` depends only on ``(seed, split, i)``,
so the data are the same on every run and machine; motions cycle with ``i``, so classes are balanced.
Training clips use the Fashion-MNIST training images, test clips the test images.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from hilovit.data.datasets import DatasetNotFoundError, IdxDataset, build_dataset
from hilovit.validation import each, interval, one_of

__all__ = ["MOTIONS", "MovingFashionMNIST"]

MOTIONS: dict[str, tuple[int, int]] = {  # (rows, columns) per frame, in units of the clip's speed
    "static": (0, 0),
    "right": (0, 1),
    "left": (0, -1),
    "down": (1, 0),
    "up": (-1, 0),
    "down-right": (1, 1),
    "down-left": (1, -1),
    "up-right": (-1, 1),
    "up-left": (-1, -1),
}
_SPLIT_IDS = {"train": 0, "test": 1}
_COUNT = interval(1, integer=True)


def _check_options(
    split: str, clips: int | None, frames: int, size: int, object_size: int, speeds: tuple[int, ...], seed: int
) -> None:
    """ValueError naming the first bad option of :class:`MovingFashionMNIST`, or clips that leave the frame."""
    one_of(_SPLIT_IDS).check("split", split)
    if clips is not None:
        _COUNT.check("clips", clips)
    _COUNT.check("frames", frames)
    _COUNT.check("size", size)
    interval(1, size, integer=True).check("object_size", object_size)
    each(_COUNT).check("speeds", speeds)
    interval(0, integer=True).check("seed", seed)
    travel = max(speeds) * (frames - 1)
    if travel > size - object_size:
        raise ValueError(
            f"a {object_size}-px garment moving up to {max(speeds)} px/frame for {frames} frames needs frames "
            f"of at least {object_size + travel} px, got size={size}"
        )


class MovingFashionMNIST(Dataset):
    """Deterministic moving-garment clips; items are ``(clip (1, T, S, S) float32, motion class)``.

    Args:
        split: ``"train"`` or ``"test"`` (which Fashion-MNIST images are used).
        root: Fashion-MNIST IDX directory (default: the Debian package ``dataset-fashion-mnist``).
        clips: number of clips (default: one per image of the split).
        frames: frames per clip.
        size: frame side in pixels.
        object_size: side the 28x28 garment is resized to.
        speeds: pixels per frame to draw from.
        seed: changes every clip.
    """

    def __init__(
        self,
        split: str = "train",
        root: str | os.PathLike[str] | None = None,
        clips: int | None = None,
        frames: int = 8,
        size: int = 32,
        object_size: int = 16,
        speeds: tuple[int, ...] = (1, 2),
        seed: int = 0,
    ) -> None:
        _check_options(split, clips, frames, size, object_size, speeds, seed)
        source = build_dataset(None if root is None else str(root), split)
        if not isinstance(source, IdxDataset) or source.channels != 1:
            raise DatasetNotFoundError(
                f"moving Fashion-MNIST needs grey IDX images, got {type(source).__name__} at {root}"
            )
        garments = torch.from_numpy(source.images).float()
        self.garments = F.interpolate(garments[:, None] / 255, size=object_size, mode="area")[:, 0]
        self.split, self.clips = split, len(garments) if clips is None else clips
        self.frames, self.size, self.object_size, self.speeds, self.seed = frames, size, object_size, speeds, seed
        self.classes = tuple(MOTIONS)
        self.channels = 1

    def __len__(self) -> int:
        return self.clips

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        if not 0 <= index < self.clips:
            raise IndexError(f"clip index {index} out of range for {self.clips} clips")
        rng = np.random.default_rng((self.seed, _SPLIT_IDS[self.split], index))
        label = index % len(MOTIONS)
        step = np.array(MOTIONS[self.classes[label]]) * rng.choice(self.speeds)
        room, travel = self.size - self.object_size, step * (self.frames - 1)
        start = [int(rng.integers(max(0, -t), room - max(0, t) + 1)) for t in travel]
        garment = self.garments[int(rng.integers(len(self.garments)))]
        clip = torch.zeros(1, self.frames, self.size, self.size)
        for frame in range(self.frames):
            row, column = (int(s + d * frame) for s, d in zip(start, step, strict=True))
            clip[0, frame, row : row + self.object_size, column : column + self.object_size] = garment
        return clip, label
