"""COCO-format detection/instance-segmentation data and image + label-map segmentation data, checked on load.

:class:`CocoDetection` items are ``(image, target)``: a float image in [0, 1] (3 x H x W) and torchvision's target
dict ``{"boxes": N x 4 xyxy, "labels": N (1..K, contiguous), "masks": N x H x W uint8, "image_id": int}``, the
form torchvision's detectors take. Transforms are ``torchvision.transforms.v2`` transforms, which move the boxes
and masks with the image (e.g. ``v2.RandomHorizontalFlip``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from hilovit.data.datasets import DatasetNotFoundError
from hilovit.data.images import IMAGE_SUFFIXES, image_files_in, open_image, verify_image
from hilovit.validation import FINITE, NON_NEGATIVE, POSITIVE, each, interval

_IMAGE_KEYS = ("id", "file_name", "width", "height")
_ANNOTATION_KEYS = ("id", "image_id", "category_id", "bbox")
_BOX_TOLERANCE = 0.5  # pixels a box may stick out of its image (rounding in other tools); it is clipped
_SIDE = interval(1, integer=True)

PairTransform = Callable[[Tensor, Any], tuple[Tensor, Any]]


class CocoFormatError(ValueError):
    """An annotation file that is not valid COCO, or that disagrees with its images."""


def _require_keys(record: dict, keys: Sequence[str], what: str, path: Path) -> None:
    missing = [key for key in keys if key not in record]
    if missing:
        raise CocoFormatError(f"{path}: {what} lacks {', '.join(map(repr, missing))} (expected keys {list(keys)})")


def _check_image(image: dict, path: Path) -> None:
    name = f"{path}: image id {image['id']!r}"
    _SIDE.check(f"{name}: width", image["width"], CocoFormatError)
    _SIDE.check(f"{name}: height", image["height"], CocoFormatError)


def _check_segmentation(segmentation: Any, name: str, image: dict) -> None:
    """Polygons hold finite coordinates; an RLE mask has its image's size (else pycocotools decodes garbage)."""
    if isinstance(segmentation, list):
        for polygon in segmentation:
            each(FINITE).check(f"{name}: segmentation polygon", polygon, CocoFormatError)
    elif isinstance(segmentation, dict) and "size" in segmentation:
        size = [image["height"], image["width"]]
        if segmentation["size"] != size:
            raise CocoFormatError(
                f"{name}: segmentation size {segmentation['size']!r} differs from its image's [height, width] {size}"
            )


def _check_annotation(annotation: dict, image: dict, path: Path) -> None:
    """Finite values, a box of positive size inside its image (as declared: the files are checked against the
    declared size when a dataset opens them)."""
    name = f"{path}: annotation id {annotation['id']} of image id {image['id']!r}"
    box = annotation["bbox"]
    each(FINITE, length=4).check(f"{name}: bbox [x, y, width, height]", box, CocoFormatError)
    each(POSITIVE, length=2).check(f"{name}: bbox size [width, height]", box[2:], CocoFormatError)
    x, y, w, h = box
    tol = _BOX_TOLERANCE
    if x < -tol or y < -tol or x + w > image["width"] + tol or y + h > image["height"] + tol:
        raise CocoFormatError(
            f"{name} has bbox {box} outside its image of {image['width']}x{image['height']} pixels, "
            "expected 0 <= x, x + width <= image width, 0 <= y, y + height <= image height"
        )
    if "area" in annotation:
        FINITE.check(f"{name}: area", annotation["area"], CocoFormatError)
        NON_NEGATIVE.check(f"{name}: area", annotation["area"], CocoFormatError)
    _check_segmentation(annotation.get("segmentation"), name, image)


def read_coco(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed annotation file, after checking that it is COCO and self-consistent (unique ids, known
    categories and images, finite values, positive sizes, boxes inside their images); errors name the file, the
    offending entry with its image id, the values and what was expected."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"annotation file {path} does not exist")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CocoFormatError(
            f"{path} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from error
    if not isinstance(data, dict):
        raise CocoFormatError(f"{path}: expected a JSON object with images, annotations and categories")
    _require_keys(data, ("images", "annotations", "categories"), "the file", path)
    for category in data["categories"]:
        _require_keys(category, ("id", "name"), f"category {category!r}", path)
    images: dict[Any, dict] = {}
    for image in data["images"]:
        _require_keys(image, _IMAGE_KEYS, f"image {image.get('id', image)!r}", path)
        if image["id"] in images:
            raise CocoFormatError(f"{path}: image id {image['id']!r} appears twice, expected unique image ids")
        _check_image(image, path)
        images[image["id"]] = image
    categories = {category["id"] for category in data["categories"]}
    seen: set[int] = set()
    for annotation in data["annotations"]:
        _require_keys(annotation, _ANNOTATION_KEYS, f"annotation id {annotation.get('id', '?')}", path)
        name = f"annotation id {annotation['id']}"
        if annotation["id"] in seen:
            raise CocoFormatError(f"{path}: {name} appears twice, expected unique annotation ids")
        seen.add(annotation["id"])
        if annotation["category_id"] not in categories:
            raise CocoFormatError(
                f"{path}: {name} has category_id {annotation['category_id']!r}, "
                f"expected one of the declared category ids {sorted(categories)}"
            )
        if annotation["image_id"] not in images:
            raise CocoFormatError(f"{path}: {name} refers to image_id {annotation['image_id']!r}, not in 'images'")
        _check_annotation(annotation, images[annotation["image_id"]], path)
    return data


def coco_api(data: dict[str, Any]) -> Any:
    """A ``pycocotools.coco.COCO`` index over an already-parsed annotation dict (without its console chatter)."""
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def write_coco_split(
    directory: Path,
    images: list[dict],
    annotations: list[dict],
    categories: Sequence[dict],
    info: dict[str, Any],
) -> Path:
    """Write ``directory/annotations.json``: done last by a generator, so that its presence marks a complete split
    (see :func:`split_is_complete`); ``info["parameters"]`` records what made it."""
    coco = {"info": info, "images": images, "annotations": annotations, "categories": list(categories)}
    (directory / "annotations.json").write_text(json.dumps(coco))
    return directory


def split_is_complete(directory: Path, parameters: dict[str, Any], image_dirs: Sequence[str] = ("images",)) -> bool:
    """Whether ``directory`` holds a split written by :func:`write_coco_split` with these ``parameters`` and
    every image file under each of ``image_dirs``."""
    try:
        coco = json.loads((directory / "annotations.json").read_text())
        files = [directory / sub / image["file_name"] for image in coco["images"] for sub in image_dirs]
        return coco["info"]["parameters"] == parameters and all(f.is_file() for f in files)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _load_image(path: Path) -> Tensor:
    with open_image(path) as image:
        return TF.to_dtype(TF.pil_to_tensor(image.convert("RGB")), torch.float32, scale=True)


def detection_transforms(train: bool, hflip: float = 0.5) -> PairTransform | None:
    """Training augmentation (a horizontal flip of image, boxes and masks); None for evaluation."""
    return v2.RandomHorizontalFlip(hflip) if train and hflip > 0 else None


class CocoDetection(Dataset):
    """Images of ``image_dir`` with the boxes (and masks) of the COCO file ``annotation_file``.

    Category ids map to contiguous labels 1..K in the order of ``categories`` (0 is the detectors' background);
    ``classes[label]`` is the name and ``label_to_category`` converts predictions back for COCO evaluation.
    Crowd annotations (``iscrowd`` 1) are left out of the targets. ``masks``: include instance masks (None: when
    every annotation has a segmentation).
    """

    def __init__(
        self,
        image_dir: str | os.PathLike[str],
        annotation_file: str | os.PathLike[str],
        transforms: PairTransform | None = None,
        masks: bool | None = None,
    ) -> None:
        self.image_dir, self.annotation_file = Path(image_dir), Path(annotation_file)
        self.coco = coco_api(read_coco(self.annotation_file))
        self.image_ids = sorted(self.coco.imgs)
        for image_id in self.image_ids:
            self._check_image_file(image_id)
        categories = sorted(self.coco.cats.values(), key=lambda c: c["id"])
        self.label_to_category = [0] + [c["id"] for c in categories]
        self._category_to_label = {c: label for label, c in enumerate(self.label_to_category) if label}
        self.classes = ("background", *(c["name"] for c in categories))
        has_masks = all("segmentation" in a for a in self.coco.anns.values())
        if masks and not has_masks:
            raise CocoFormatError(f"{self.annotation_file}: masks requested but some annotations lack 'segmentation'")
        self.masks = has_masks if masks is None else masks
        self.transforms = transforms

    def _check_image_file(self, image_id: int) -> None:
        """The image of ``image_id`` exists, is a readable image and has the declared size."""
        info = self.coco.imgs[image_id]
        file = self.image_dir / info["file_name"]
        if not file.is_file():
            raise DatasetNotFoundError(f"{self.annotation_file}: image id {image_id}: file {file} does not exist")
        width, height = verify_image(file)
        if (width, height) != (info["width"], info["height"]):
            raise CocoFormatError(
                f"{self.annotation_file}: image id {image_id} declares width x height {info['width']}x"
                f"{info['height']}, but its file {file} is {width}x{height} pixels"
            )

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, index: int) -> tuple[Tensor, dict[str, Tensor]]:
        image_id = self.image_ids[index]
        info = self.coco.imgs[image_id]
        image = _load_image(self.image_dir / info["file_name"])
        height, width = image.shape[-2:]
        annotations = [a for a in self.coco.imgToAnns[image_id] if not a.get("iscrowd", 0)]
        boxes = torch.tensor([a["bbox"] for a in annotations], dtype=torch.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        boxes = tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(height, width))
        target: dict[str, Any] = {
            "boxes": TF.clamp_bounding_boxes(boxes),
            "labels": torch.tensor([self._category_to_label[a["category_id"]] for a in annotations], dtype=torch.int64),
            "image_id": image_id,
        }
        if self.masks:
            masks = [self.coco.annToMask(a) for a in annotations]
            stacked = np.stack(masks) if masks else np.zeros((0, height, width), np.uint8)
            target["masks"] = tv_tensors.Mask(torch.from_numpy(stacked))
        image = tv_tensors.Image(image)
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image.as_subclass(Tensor), {
            k: v.as_subclass(Tensor) if isinstance(v, Tensor) else v for k, v in target.items()
        }


def collate_detection(batch: Sequence[tuple[Tensor, dict]]) -> tuple[list[Tensor], list[dict]]:
    """Images and targets as lists: detection images differ in size, torchvision's detectors batch them."""
    images, targets = zip(*batch, strict=True)
    return list(images), list(targets)


class SegmentationDataset(Dataset):
    """Images of ``image_dir`` with label maps of the same name (``.png``) in ``mask_dir``.

    Items are ``(image, labels)``: a float image in [0, 1] (3 x H x W) and an int64 H x W map whose values are
    0..len(classes)-1 or ``ignore_index``. ``transforms`` are v2 transforms applied to both.
    """

    def __init__(
        self,
        image_dir: str | os.PathLike[str],
        mask_dir: str | os.PathLike[str],
        classes: Sequence[str],
        transforms: PairTransform | None = None,
        ignore_index: int = 255,
    ) -> None:
        self.image_dir, self.mask_dir = Path(image_dir), Path(mask_dir)
        if not self.image_dir.is_dir():
            raise DatasetNotFoundError(f"image directory {self.image_dir} does not exist")
        self.images = image_files_in(self.image_dir)
        if not self.images:
            raise DatasetNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {self.image_dir}")
        missing = [p.name for p in self.images if not self._label_map(p).is_file()]
        if missing:
            raise DatasetNotFoundError(
                f"{len(missing)} image(s) of {self.image_dir} have no label map {self.mask_dir}/<name>.png, "
                f"e.g. {missing[0]}"
            )
        for image in self.images:
            size, label_size = verify_image(image), verify_image(self._label_map(image))
            if size != label_size:
                raise ValueError(
                    f"label map {self._label_map(image)} is {label_size[0]}x{label_size[1]} pixels, its image "
                    f"{image} {size[0]}x{size[1]}; expected the same size"
                )
        self.classes, self.transforms, self.ignore_index = tuple(classes), transforms, ignore_index

    def _label_map(self, image: Path) -> Path:
        return self.mask_dir / f"{image.stem}.png"

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image = _load_image(self.images[index])
        mask_path = self._label_map(self.images[index])
        with open_image(mask_path) as mask_image:
            labels = torch.from_numpy(np.asarray(mask_image, dtype=np.int64))
        bad = labels[(labels >= len(self.classes)) & (labels != self.ignore_index)]
        if bad.numel():
            raise ValueError(
                f"label map {mask_path} holds value {int(bad[0])}, expected 0..{len(self.classes) - 1} "
                f"or ignore_index {self.ignore_index}"
            )
        image, labels = tv_tensors.Image(image), tv_tensors.Mask(labels)
        if self.transforms is not None:
            image, labels = self.transforms(image, labels)
        return image.as_subclass(Tensor), labels.as_subclass(Tensor)
