"""Datasets and transforms: IDX files, ImageFolder trees and the bundled default, Fashion-MNIST."""

from hilovit.data.datasets import (
    FASHION_MNIST_PACKAGE,
    FASHION_MNIST_ROOT,
    DatasetNotFoundError,
    IdxDataset,
    build_dataset,
)
from hilovit.data.idx import IdxFormatError, read_idx, write_idx
from hilovit.data.transforms import build_transform, dataset_mean_std

__all__ = [
    "FASHION_MNIST_PACKAGE",
    "FASHION_MNIST_ROOT",
    "DatasetNotFoundError",
    "IdxDataset",
    "IdxFormatError",
    "build_dataset",
    "build_transform",
    "dataset_mean_std",
    "read_idx",
    "write_idx",
]
