"""The datasets of ``hilovit detect`` / ``hilovit segment``: Fashion-MNIST scenes (default), tree crowns, or a
directory in the same layout (``DIR/train`` and ``DIR/val``, each with ``images/``, ``annotations.json`` and, for
segmentation, ``semantic/`` label maps whose values are the category ids 1..K, 0 being background)."""

from __future__ import annotations

import os
from pathlib import Path

from hilovit.data.coco import CocoDetection, SegmentationDataset, detection_transforms, read_coco
from hilovit.data.datasets import DatasetNotFoundError
from hilovit.data.scenes import ensure_scenes
from hilovit.data.treecrowns import ensure_treecrowns
from hilovit.validation import unknown_name

BUNDLED = ("scenes", "treecrowns")
DEFAULT_IMAGE_SIZE = {"scenes": 256, "treecrowns": 400}
_LAYOUT = "DIR with train/ and val/, each holding images/ and a COCO annotations.json"


def cache_dir() -> Path:
    """Where generated datasets live: ``$HILOVIT_CACHE``, else ``$XDG_CACHE_HOME/hilovit``, else
    ``~/.cache/hilovit``."""
    if "HILOVIT_CACHE" in os.environ:
        return Path(os.environ["HILOVIT_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hilovit"


def default_image_size(data: str | None) -> int:
    return DEFAULT_IMAGE_SIZE.get(data or "scenes", 256)


def split_directories(data: str | None, img_size: int, scene_images: tuple[int, int] = (1000, 100)) -> dict[str, Path]:
    """``{"train": DIR, "val": DIR}`` of ``data``: None or "scenes" (generated on first use, ``scene_images``
    train/val canvases of ``img_size`` pixels), "treecrowns" (tiled on first use) or a directory."""
    if data in (None, "scenes"):
        root = cache_dir() / "scenes" / f"{img_size}px"
        train, val = scene_images
        return {
            "train": ensure_scenes(root, "train", train, img_size),
            "val": ensure_scenes(root, "val", val, img_size),
        }
    if data == "treecrowns":
        return ensure_treecrowns(cache_dir() / "treecrowns")
    if not Path(data).is_dir():
        raise DatasetNotFoundError(f"{unknown_name('dataset', data, BUNDLED)}; or a directory {_LAYOUT}")
    directories = {split: Path(data) / split for split in ("train", "val")}
    for directory in directories.values():
        if not (directory / "annotations.json").is_file():
            raise DatasetNotFoundError(f"directory {data} has no {directory}/annotations.json: expected {_LAYOUT}")
    return directories


def detection_dataset(directory: Path, train: bool, masks: bool, hflip: float = 0.5) -> CocoDetection:
    return CocoDetection(
        directory / "images", directory / "annotations.json", detection_transforms(train, hflip), masks=masks
    )


def segmentation_dataset(directory: Path, train: bool, hflip: float = 0.5) -> SegmentationDataset:
    """Label maps of ``directory/semantic``; class names from the categories of its ``annotations.json``."""
    if not (directory / "semantic").is_dir():
        raise DatasetNotFoundError(
            f"{directory} has no semantic/ label maps: segmentation needs them (the tree crowns have boxes only)"
        )
    categories = sorted(read_coco(directory / "annotations.json")["categories"], key=lambda c: c["id"])
    if [c["id"] for c in categories] != list(range(1, len(categories) + 1)):
        raise ValueError(f"{directory}/annotations.json: segmentation expects category ids 1..K")
    classes = ["background", *(c["name"] for c in categories)]
    return SegmentationDataset(
        directory / "images", directory / "semantic", classes, detection_transforms(train, hflip)
    )
