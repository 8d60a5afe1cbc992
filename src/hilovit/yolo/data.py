"""COCO detection splits in ultralytics' YOLO layout, and the Fashion-MNIST scenes as a YOLO dataset.

ultralytics finds an image's labels by replacing ``/images/`` with ``/labels/`` in its path, so a split is written
as ``<out>/<split>/images/<name>`` (a symlink to, or a copy of, the COCO image) and ``<out>/<split>/labels/<stem>.txt``
with one ``class cx cy w h`` row per box (class 0..K-1 in category-id order, coordinates normalised to [0, 1]).
``data.yaml`` names the splits and classes.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import yaml

__all__ = ["bundled_yolo_dataset", "coco_to_yolo", "scenes_yolo_dataset", "write_data_yaml"]

PathLike = str | os.PathLike[str]


def _category_order(coco: dict, source: Path) -> dict[int, int]:
    ids = sorted(category["id"] for category in coco.get("categories", []))
    if not ids:
        raise ValueError(f"{source} has no 'categories'; a COCO detection file lists them to name the classes")
    return {category_id: index for index, category_id in enumerate(ids)}


def _label_rows(annotations: list[dict], image: dict, classes: dict[int, int], source: Path) -> list[str]:
    width, height = image["width"], image["height"]
    rows = []
    for annotation in annotations:
        if annotation.get("iscrowd", 0):
            continue  # YOLO labels have no crowd regions
        category = annotation["category_id"]
        if category not in classes:
            raise ValueError(f"{source}: annotation {annotation.get('id')} has category_id {category}, not a category")
        x, y, w, h = annotation["bbox"]
        x0, y0 = max(0.0, x), max(0.0, y)
        x1, y1 = min(float(width), x + w), min(float(height), y + h)
        if x1 <= x0 or y1 <= y0:
            continue  # empty after clipping to the image
        cx, cy = (x0 + x1) / 2 / width, (y0 + y1) / 2 / height
        rows.append(f"{classes[category]} {cx:.6f} {cy:.6f} {(x1 - x0) / width:.6f} {(y1 - y0) / height:.6f}")
    return rows


def _place(source: Path, target: Path, link: bool) -> None:
    target.unlink(missing_ok=True)
    if link:
        target.symlink_to(source.resolve())
    else:
        shutil.copy2(source, target)


def coco_to_yolo(
    annotations: PathLike, images: PathLike, out: PathLike, *, link: bool = True
) -> tuple[Path, list[str]]:
    """Write one COCO split (``annotations`` json, image files under ``images``) as ``out/images`` + ``out/labels``.

    Images are symlinked (``link=True``) or copied; every image gets a label file, empty when it has no boxes.
    Crowd annotations are skipped and boxes are clipped to the image. Returns ``out/images`` and the class names
    in label order.
    """
    source, images = Path(annotations), Path(images)
    coco = json.loads(source.read_text())
    classes = _category_order(coco, source)
    names = {category["id"]: category["name"] for category in coco["categories"]}
    by_image: dict[int, list[dict]] = {image["id"]: [] for image in coco["images"]}
    for annotation in coco.get("annotations", []):
        if annotation["image_id"] not in by_image:
            raise ValueError(f"{source}: annotation {annotation.get('id')} refers to unknown image_id")
        by_image[annotation["image_id"]].append(annotation)
    image_dir, label_dir = Path(out) / "images", Path(out) / "labels"
    image_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    for image in coco["images"]:
        file = images / image["file_name"]
        if not file.is_file():
            raise FileNotFoundError(f"{source} lists image {image['file_name']!r}, not found under {images}")
        _place(file, image_dir / file.name, link)
        rows = _label_rows(by_image[image["id"]], image, classes, source)
        (label_dir / f"{file.stem}.txt").write_text("".join(f"{row}\n" for row in rows))
    return image_dir, [names[category_id] for category_id in sorted(classes)]


def write_data_yaml(root: PathLike, splits: Mapping[str, PathLike], names: list[str]) -> Path:
    """Write ``root/data.yaml``: the dataset root, each split's image directory (relative to it) and class names."""
    root = Path(root).resolve()
    config = {
        "path": str(root),
        **{split: os.path.relpath(Path(directory).resolve(), root) for split, directory in splits.items()},
        "names": dict(enumerate(names)),
    }
    file = root / "data.yaml"
    file.write_text(yaml.safe_dump(config, sort_keys=False))
    return file


def scenes_yolo_dataset(
    root: PathLike,
    train_images: int = 64,
    val_images: int = 16,
    image_size: int = 256,
    seed: int = 0,
    *,
    link: bool = True,
) -> Path:
    """Fashion-MNIST scenes (``hilovit.data.scenes``) as a YOLO dataset under ``root/yolo``; returns its data.yaml.

    The COCO splits are generated under ``root/coco`` (kept when already complete with the same arguments).
    """
    from hilovit.data.scenes import ensure_scenes

    coco_dirs = {
        split: ensure_scenes(Path(root) / "coco", split, count, image_size=image_size, seed=seed)
        for split, count in (("train", train_images), ("val", val_images))
    }
    return _coco_splits_to_yolo(coco_dirs, Path(root) / "yolo", link)


def bundled_yolo_dataset(
    data: str, root: PathLike, img_size: int = 256, scene_images: tuple[int, int] = (1000, 100), *, link: bool = True
) -> Path:
    """A dataset of the dense tasks (``scenes``, ``treecrowns``: :func:`hilovit.dense.data.split_directories`, in
    hilovit's cache) in YOLO layout under ``root``, the same images and boxes the torchvision detectors train on;
    returns its data.yaml."""
    from hilovit.dense.data import split_directories

    return _coco_splits_to_yolo(split_directories(data, img_size, scene_images), Path(root), link)


def _coco_splits_to_yolo(coco_dirs: Mapping[str, Path], out: Path, link: bool) -> Path:
    """COCO split directories (``images/`` + ``annotations.json``) as ``out/<split>`` and ``out/data.yaml``."""
    splits, names = {}, []
    for split, coco_dir in coco_dirs.items():
        splits[split], names = coco_to_yolo(coco_dir / "annotations.json", coco_dir / "images", out / split, link=link)
    return write_data_yaml(out, splits, names)
