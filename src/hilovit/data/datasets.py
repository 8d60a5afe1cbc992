"""Image classification datasets: IDX image/label pairs and ImageFolder trees, found from one root directory.

A root holds either IDX files named like MNIST's (``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte``,
``t10k-...`` for the test split) or an ImageFolder tree per split (``train/`` and ``val/`` or ``test/``, one
folder per class). Without a root, the default is Fashion-MNIST from the Debian package ``dataset-fashion-mnist``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import find_classes

from hilovit.data.idx import read_idx
from hilovit.data.images import verify_image

FASHION_MNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_IDX_PREFIX = {"train": "train", "test": "t10k"}
_FOLDER_NAMES = {"train": ("train",), "test": ("val", "test")}

Transform = Callable[[Image.Image], torch.Tensor]


class DatasetNotFoundError(FileNotFoundError):
    """No dataset where one was expected."""


class IdxDataset(Dataset):
    """Images and labels from an IDX pair, held in memory; items are ``(PIL image, label)`` before ``transform``."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, classes: tuple[str, ...], transform: Transform | None):
        if images.ndim not in (3, 4) or len(images) != len(labels):
            raise ValueError(f"expected N x H x W [x C] images and N labels, got {images.shape} and {labels.shape}")
        self.images, self.targets = images, labels.astype(np.int64)
        self.classes, self.transform = classes, transform
        self.channels = 1 if images.ndim == 3 else images.shape[3]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[object, int]:
        image = Image.fromarray(self.images[index])
        return (self.transform(image) if self.transform else image), int(self.targets[index])


def _idx_file(root: Path, name: str) -> Path | None:
    return next((root / f"{name}{ext}" for ext in ("", ".gz") if (root / f"{name}{ext}").is_file()), None)


def _idx_dataset(root: Path, split: str, transform: Transform | None) -> IdxDataset | None:
    prefix = _IDX_PREFIX[split]
    images, labels = _idx_file(root, f"{prefix}-images-idx3-ubyte"), _idx_file(root, f"{prefix}-labels-idx1-ubyte")
    if images is None or labels is None:
        return None
    targets = read_idx(labels)
    classes = FASHION_MNIST_CLASSES if root == FASHION_MNIST_ROOT else tuple(str(c) for c in range(targets.max() + 1))
    return IdxDataset(read_idx(images), targets, classes, transform)


def _split_folder(root: Path, split: str) -> Path | None:
    return next((root / name for name in _FOLDER_NAMES[split] if (root / name).is_dir()), None)


def _check_same_classes(folder: Path, classes: list[str], train: Path) -> None:
    """Labels are indices into the sorted class folders: the evaluation split must have the training split's,
    or a class would silently be scored as another."""
    train_classes, _ = find_classes(str(train))
    if classes != train_classes:
        differences = [
            f"only in {where}/: {', '.join(map(repr, names))}"
            for where, names in (
                (folder.name, sorted(set(classes) - set(train_classes))),
                (train.name, sorted(set(train_classes) - set(classes))),
            )
            if names
        ]
        raise ValueError(
            f"the class folders of {folder} differ from those of {train} ({'; '.join(differences)}); "
            "expected the same class folders in both splits (labels are given by folder name)"
        )


def _folder_dataset(root: Path, split: str, transform: Transform | None) -> ImageFolder | None:
    folder = _split_folder(root, split)
    if folder is None:
        return None
    dataset = ImageFolder(str(folder), transform=transform)
    train = _split_folder(root, "train")
    if split != "train" and train is not None:
        _check_same_classes(folder, dataset.classes, train)
    for path, _ in dataset.samples:
        verify_image(path)
    dataset.channels = 3
    return dataset


def build_dataset(root: str | os.PathLike[str] | None, split: str, transform: Transform | None = None) -> Dataset:
    """The ``split`` ("train" or "test") of the dataset under ``root`` (None: the Fashion-MNIST default).

    The result has ``classes`` and ``channels`` attributes.
    """
    if split not in _IDX_PREFIX:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if root is None:
        if not FASHION_MNIST_ROOT.is_dir():
            raise DatasetNotFoundError(
                f"the default dataset, Fashion-MNIST, is not installed at {FASHION_MNIST_ROOT}: install it with "
                f"`apt-get install -y {FASHION_MNIST_PACKAGE}` or pass another dataset with --data DIR"
            )
        root = FASHION_MNIST_ROOT
    root = Path(root)
    if not root.is_dir():
        raise DatasetNotFoundError(
            f"dataset directory {root} does not exist (--data expects a directory of IDX files or an ImageFolder "
            "tree with train/ and val/; without --data the default is Fashion-MNIST)"
        )
    dataset = _idx_dataset(root, split, transform) or _folder_dataset(root, split, transform)
    if dataset is None:
        prefix, folders = _IDX_PREFIX[split], " or ".join(f"{n}/" for n in _FOLDER_NAMES[split])
        raise DatasetNotFoundError(
            f"no {split} split in {root}: expected IDX files {prefix}-images-idx3-ubyte[.gz] and "
            f"{prefix}-labels-idx1-ubyte[.gz], or an ImageFolder directory {folders}"
        )
    return dataset
