"""Datasets and transforms: IDX files, ImageFolder trees and the bundled default, Fashion-MNIST; the image check
every dataset makes when it is opened."""

from hilovit.data.datasets import (
    FASHION_MNIST_PACKAGE,
    FASHION_MNIST_ROOT,
    DatasetNotFoundError,
    IdxDataset,
    build_dataset,
)
from hilovit.data.idx import IdxFormatError, read_idx, write_idx
from hilovit.data.images import IMAGE_SUFFIXES, ImageFileError, verify_image
from hilovit.data.transforms import build_transform, dataset_mean_std

__all__ = [
    "FASHION_MNIST_PACKAGE",
    "FASHION_MNIST_ROOT",
    "IMAGE_SUFFIXES",
    "DatasetNotFoundError",
    "IdxDataset",
    "IdxFormatError",
    "ImageFileError",
    "build_dataset",
    "build_transform",
    "dataset_mean_std",
    "read_idx",
    "verify_image",
    "write_idx",
]
