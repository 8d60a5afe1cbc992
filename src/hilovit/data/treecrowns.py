"""Tree crowns: the aerial RGB images with 951 annotated crown boxes shipped in the PyPI package ``deepforest``.

Only the package's data is used (install it with ``pip install --no-deps deepforest``): four images with Pascal
VOC box files (``OSBS_029``, ``SOAP_061`` and two Yellowstone crops, 2019_YELL_2_*). Every image is cut into a
grid of non-overlapping ``tile x tile`` crops (the last row and column keep the remainder), boxes are clipped to
their tile and dropped when less than ``min_visible`` of them remains; the tiles are split into train and val by
a seeded permutation and written in the COCO layout of :mod:`hilovit.data.coco` (one category, "tree").
"""

from __future__ import annotations

import importlib.util
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from PIL import Image

from hilovit.data.coco import split_is_complete, write_coco_split
from hilovit.data.datasets import DatasetNotFoundError
from hilovit.data.images import open_image

TREE_CATEGORIES = ({"id": 1, "name": "tree", "supercategory": "plant"},)
DEEPFOREST_BOXES = 951  # boxes in the package's four VOC files
SPLITS = ("train", "val")


def deepforest_data_dir() -> Path:
    """The ``data`` directory of the installed ``deepforest`` package (found without importing it)."""
    spec = importlib.util.find_spec("deepforest")
    if spec is None or spec.origin is None:
        raise DatasetNotFoundError(
            "the tree-crown data comes with the PyPI package deepforest: `pip install --no-deps deepforest`"
        )
    return Path(spec.origin).parent / "data"


def read_voc_boxes(data_dir: str | os.PathLike[str] | None = None) -> dict[Path, np.ndarray]:
    """Image path -> its boxes (N x 4 float, xyxy pixels) for every Pascal VOC file of ``data_dir``."""
    data_dir = Path(data_dir) if data_dir is not None else deepforest_data_dir()
    files = sorted(data_dir.glob("*.xml"))
    if not files:
        raise DatasetNotFoundError(f"no Pascal VOC annotation files (*.xml) in {data_dir}")
    boxes = {}
    for file in files:
        root = ET.parse(file).getroot()
        image = data_dir / root.findtext("filename", "")
        if not image.is_file():
            raise DatasetNotFoundError(f"{file} annotates {image}, which does not exist")
        coordinates = [
            [float(box.findtext(key)) for key in ("xmin", "ymin", "xmax", "ymax")] for box in root.iter("bndbox")
        ]
        boxes[image] = np.asarray(coordinates, dtype=np.float64).reshape(-1, 4)
    return boxes


def tile_origins(length: int, tile: int) -> list[int]:
    """Starts of the non-overlapping tiles covering ``length`` pixels."""
    return list(range(0, length, tile))


def clip_boxes(boxes: np.ndarray, window: tuple[int, int, int, int], min_visible: float = 0.5) -> np.ndarray:
    """``boxes`` (xyxy) clipped to ``window`` (x0, y0, x1, y1), in window coordinates, keeping those that retain at
    least ``min_visible`` of their area and one pixel per side."""
    x0, y0, x1, y1 = window
    clipped = np.clip(boxes, [x0, y0, x0, y0], [x1, y1, x1, y1]) - [x0, y0, x0, y0]
    sides = clipped[:, 2:] - clipped[:, :2]
    area = (boxes[:, 2:] - boxes[:, :2]).prod(axis=1)
    keep = (sides >= 1).all(axis=1) & (sides.prod(axis=1) >= min_visible * area)
    return clipped[keep]


def _tile_parameters(tile: int, val_fraction: float, seed: int, min_visible: float) -> dict:
    return {"tile": tile, "val_fraction": val_fraction, "seed": seed, "min_visible": min_visible}


def build_treecrowns(
    root: str | os.PathLike[str],
    tile: int = 400,
    val_fraction: float = 0.2,
    seed: int = 0,
    min_visible: float = 0.5,
    data_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Path]:
    """Tile the deepforest images into ``root/train`` and ``root/val`` (COCO layout); the split directories."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if tile < 32:
        raise ValueError(f"tile must be at least 32 pixels, got {tile}")
    tiles = []  # (image, window, boxes)
    for path, boxes in read_voc_boxes(data_dir).items():
        with open_image(path) as opened:
            image = np.asarray(opened.convert("RGB"))
        height, width = image.shape[:2]
        for y in tile_origins(height, tile):
            for x in tile_origins(width, tile):
                window = (x, y, min(x + tile, width), min(y + tile, height))
                tiles.append((path.stem, image[window[1] : window[3], window[0] : window[2]], window, boxes))
    order = np.random.default_rng(seed).permutation(len(tiles))
    val = set(order[: max(1, round(val_fraction * len(tiles)))].tolist())
    parameters = _tile_parameters(tile, val_fraction, seed, min_visible)
    directories = {}
    for split in SPLITS:
        directory = Path(root) / split
        (directory / "annotations.json").unlink(missing_ok=True)
        (directory / "images").mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for index, (stem, pixels, window, boxes) in enumerate(tiles):
            if (index in val) != (split == "val"):
                continue
            name = f"{stem}_{window[0]}_{window[1]}.png"
            Image.fromarray(pixels).save(directory / "images" / name)
            image_id = len(images) + 1
            images.append({"id": image_id, "file_name": name, "height": pixels.shape[0], "width": pixels.shape[1]})
            for x0, y0, x1, y1 in clip_boxes(boxes, window, min_visible).tolist():
                bbox = [x0, y0, x1 - x0, y1 - y0]
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": image_id,
                        "category_id": 1,
                        "bbox": bbox,
                        "area": bbox[2] * bbox[3],
                        "iscrowd": 0,
                    }
                )
        info = {"description": "deepforest tree crowns, tiled (hilovit.data.treecrowns)", "parameters": parameters}
        directories[split] = write_coco_split(directory, images, annotations, TREE_CATEGORIES, info)
    return directories


def ensure_treecrowns(
    root: str | os.PathLike[str],
    tile: int = 400,
    val_fraction: float = 0.2,
    seed: int = 0,
    min_visible: float = 0.5,
    data_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Path]:
    """:func:`build_treecrowns` unless ``root`` already holds both splits built with the same arguments."""
    parameters = _tile_parameters(tile, val_fraction, seed, min_visible)
    directories = {split: Path(root) / split for split in SPLITS}
    if all(split_is_complete(directory, parameters) for directory in directories.values()):
        return directories
    return build_treecrowns(root, tile, val_fraction, seed, min_visible, data_dir)
