"""Fashion-MNIST scenes: a deterministic detection and segmentation dataset synthesised from Fashion-MNIST items.

Each canvas holds a few Fashion-MNIST items, tinted and resized to random scales, pasted at random positions with
limited overlap (later items on top). Instance masks are the visible item pixels above a threshold, boxes enclose
them. A split is written as::

    root/<split>/images/000000.png ...      RGB canvases
    root/<split>/semantic/000000.png ...    label maps: 0 background, 1..10 the Fashion-MNIST class (uint8 PNG)
    root/<split>/annotations.json           COCO: boxes [x, y, w, h], RLE masks, category ids 1..10

``annotations.json`` is written last: its presence, with matching ``info.parameters``, marks a complete split.
"""

from __future__ import annotations

import os
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from hilovit.data.coco import split_is_complete, write_coco_split
from hilovit.data.datasets import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_PACKAGE,
    FASHION_MNIST_ROOT,
    DatasetNotFoundError,
)
from hilovit.data.idx import read_idx

SCENE_CATEGORIES = tuple(
    {"id": i + 1, "name": name, "supercategory": "fashion"} for i, name in enumerate(FASHION_MNIST_CLASSES)
)
_ITEM_SPLIT = {"train": "train", "val": "t10k"}
_SCALE = (0.08, 0.4)  # item side as a fraction of the canvas' shorter side: 20-102 px on 256 px canvases
_THRESHOLD = 48  # item pixels above this grey level belong to its mask
_MAX_COVERED = 0.4  # a new item may hide at most this fraction of an earlier item's visible pixels
_MIN_VISIBLE = 16  # pixels; an item occluded below this is dropped (its pixels become background)
_PLACEMENT_TRIES = 20


@lru_cache(maxsize=4)
def _items(source: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = source / f"{prefix}-images-idx3-ubyte.gz", source / f"{prefix}-labels-idx1-ubyte.gz"
    if not images.is_file() or not labels.is_file():
        raise DatasetNotFoundError(
            f"Fashion-MNIST items not found: expected {images} and {labels} (install them with "
            f"`apt-get install -y {FASHION_MNIST_PACKAGE}`, or pass source=DIR holding these IDX files)"
        )
    return read_idx(images), read_idx(labels)


def _canvas_size(image_size: int | tuple[int, int]) -> tuple[int, int]:
    height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if min(height, width) < 32:
        raise ValueError(f"image_size must be at least 32 pixels per side, got {image_size!r}")
    return int(height), int(width)


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth colour gradient plus mild noise, so that the detector cannot rely on a flat background."""
    corners = rng.uniform(0, 110, size=(2, 2, 3))
    ys, xs = np.linspace(0, 1, height)[:, None, None], np.linspace(0, 1, width)[None, :, None]
    top = corners[0, 0] * (1 - xs) + corners[0, 1] * xs
    bottom = corners[1, 0] * (1 - xs) + corners[1, 1] * xs
    return top * (1 - ys) + bottom * ys + rng.normal(0, 6, size=(height, width, 3))


def _paste_position(
    rng: np.random.Generator, size: int, height: int, width: int, labels: np.ndarray, visible: list[int]
) -> tuple[int, int] | None:
    """Top-left corner where an item of ``size`` hides little of the items already placed (None: no such place)."""
    for _ in range(_PLACEMENT_TRIES):
        top, left = int(rng.integers(0, height - size + 1)), int(rng.integers(0, width - size + 1))
        window = labels[top : top + size, left : left + size]
        covered = np.bincount(window.ravel(), minlength=len(visible) + 1)[1:]
        if all(c <= _MAX_COVERED * v for c, v in zip(covered, visible, strict=True)):
            return top, left
    return None


def _compose(
    rng: np.random.Generator, items: np.ndarray, item_labels: np.ndarray, height: int, width: int, count: int
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """One canvas: RGB image, instance map (0 background, k = k-th pasted item) and the class of each item."""
    canvas = _background(rng, height, width)
    instances = np.zeros((height, width), dtype=np.int32)
    classes: list[int] = []
    low, high = (max(8, round(f * min(height, width))) for f in _SCALE)
    for _ in range(count):
        index, size = int(rng.integers(len(items))), int(rng.integers(low, high + 1))
        visible = np.bincount(instances.ravel(), minlength=len(classes) + 1)[1:].tolist()
        position = _paste_position(rng, size, height, width, instances, visible)
        if position is None:
            continue
        top, left = position
        item = np.asarray(Image.fromarray(items[index]).resize((size, size), Image.BILINEAR), dtype=np.float64)
        colour = rng.uniform(120, 255, size=3)
        alpha = (item / 255.0)[..., None]
        region = canvas[top : top + size, left : left + size]
        canvas[top : top + size, left : left + size] = region * (1 - alpha) + colour * alpha
        instances[top : top + size, left : left + size][item > _THRESHOLD] = len(classes) + 1
        classes.append(int(item_labels[index]) + 1)
    hidden = np.bincount(instances.ravel(), minlength=len(classes) + 1) < _MIN_VISIBLE
    hidden[0] = False
    instances[hidden[instances]] = 0  # nearly hidden items count as background
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8), instances, classes


def _annotations(instances: np.ndarray, classes: list[int], image_id: int, next_id: int) -> list[dict]:
    annotations = []
    for k, category in enumerate(classes, start=1):
        mask = instances == k
        if not mask.any():
            continue
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
        rle["counts"] = rle["counts"].decode("ascii")
        annotations.append(
            {
                "id": next_id + len(annotations),
                "image_id": image_id,
                "category_id": category,
                "bbox": [x, y, w, h],
                "area": float(mask_utils.area(rle)),
                "iscrowd": 0,
                "segmentation": rle,
            }
        )
    return annotations


def _scene_parameters(split: str, num_images: int, size: tuple[int, int], seed: int, items: tuple[int, int]) -> dict:
    return {"split": split, "num_images": num_images, "image_size": list(size), "seed": seed, "items": list(items)}


def generate_scenes(
    root: str | os.PathLike[str],
    split: str,
    num_images: int,
    image_size: int | tuple[int, int] = 256,
    seed: int = 0,
    items_per_image: tuple[int, int] = (2, 6),
    source: str | os.PathLike[str] | None = None,
) -> Path:
    """Write ``num_images`` scenes of ``split`` ("train": Fashion-MNIST train items, "val": t10k items) under
    ``root/<split>`` and return that directory.

    ``image_size`` is one side or ``(height, width)``; ``items_per_image`` the inclusive range of items tried per
    canvas (an item is skipped when no place leaves the earlier ones visible enough); ``source`` the directory of
    the Fashion-MNIST IDX files (default: the Debian package's). The same arguments give byte-identical files.
    """
    if split not in _ITEM_SPLIT:
        raise ValueError(f"split must be one of {sorted(_ITEM_SPLIT)}, got {split!r}")
    if num_images < 1:
        raise ValueError(f"num_images must be positive, got {num_images}")
    low, high = items_per_image
    if not 1 <= low <= high:
        raise ValueError(f"items_per_image must be (low, high) with 1 <= low <= high, got {items_per_image!r}")
    height, width = _canvas_size(image_size)
    items, item_labels = _items(Path(source or FASHION_MNIST_ROOT), _ITEM_SPLIT[split])
    directory = Path(root) / split
    (directory / "annotations.json").unlink(missing_ok=True)
    for sub in ("images", "semantic"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for index in range(num_images):
        rng = np.random.default_rng([seed, zlib.crc32(split.encode()), index])
        count = int(rng.integers(low, high + 1))
        canvas, instances, classes = _compose(rng, items, item_labels, height, width, count)
        name = f"{index:06d}.png"
        Image.fromarray(canvas).save(directory / "images" / name)
        semantic = np.asarray([0, *classes], dtype=np.uint8)[instances]
        Image.fromarray(semantic).save(directory / "semantic" / name)
        images.append({"id": index + 1, "file_name": name, "height": height, "width": width})
        annotations += _annotations(instances, classes, index + 1, len(annotations) + 1)
    info = {
        "description": "Fashion-MNIST scenes (hilovit.data.scenes)",
        "parameters": _scene_parameters(split, num_images, (height, width), seed, (low, high)),
    }
    write_coco_split(directory, images, annotations, SCENE_CATEGORIES, info)
    return directory


def ensure_scenes(
    root: str | os.PathLike[str],
    split: str,
    num_images: int,
    image_size: int | tuple[int, int] = 256,
    seed: int = 0,
    items_per_image: tuple[int, int] = (2, 6),
    source: str | os.PathLike[str] | None = None,
) -> Path:
    """``generate_scenes`` unless ``root/<split>`` already holds a complete split made with the same arguments."""
    directory = Path(root) / split
    expected = _scene_parameters(split, num_images, _canvas_size(image_size), seed, tuple(items_per_image))
    if split_is_complete(directory, expected, ("images", "semantic")):
        return directory
    return generate_scenes(root, split, num_images, image_size, seed, items_per_image, source)
