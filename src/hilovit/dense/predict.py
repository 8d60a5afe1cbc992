"""Predictions drawn on images: boxes, labels, scores and instance masks, or a class overlay for segmentation."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor
from torchvision.transforms.v2.functional import pil_to_tensor, to_dtype, to_pil_image
from torchvision.utils import draw_bounding_boxes, draw_segmentation_masks

from hilovit.data.coco import IMAGE_SUFFIXES
from hilovit.dense.engine import load_model, segmentation_input


def draw_detections(image: Tensor, output: dict[str, Tensor], classes: Sequence[str], score_thresh: float) -> Tensor:
    """``image`` (uint8, 3 x H x W) with the detections scoring at least ``score_thresh``: masks, then boxes
    labelled ``name score``."""
    keep = output["scores"] >= score_thresh
    if "masks" in output and keep.any():
        image = draw_segmentation_masks(image, output["masks"][keep, 0] > 0.5, alpha=0.4)
    scores, labels = output["scores"][keep].tolist(), output["labels"][keep].tolist()
    names = [f"{classes[label]} {score:.2f}" for label, score in zip(labels, scores, strict=True)]
    return draw_bounding_boxes(image, output["boxes"][keep], names, colors="yellow", width=2)


def draw_segmentation(image: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """``image`` (uint8) with every predicted class but background (0) overlaid in its own colour."""
    masks = labels[None] == torch.arange(1, num_classes)[:, None, None]
    return draw_segmentation_masks(image, masks, alpha=0.5) if masks.any() else image


def image_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The image files named, directories expanded to their images (sorted).

    Raises:
        FileNotFoundError: a path does not exist, or a directory holds no image.
        ValueError: a file is not an image (by its suffix).
    """
    expected = f"expected {'/'.join(IMAGE_SUFFIXES)}"
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise FileNotFoundError(f"no images found in {path} ({expected})")
            files += found
        elif not path.is_file():
            raise FileNotFoundError(f"{path} is neither an image file nor a directory")
        elif path.suffix.lower() not in IMAGE_SUFFIXES:
            raise ValueError(f"{path} is not an image file ({expected})")
        else:
            files.append(path)
    return files


@torch.inference_mode()
def predict_images(
    checkpoint: str | os.PathLike[str],
    images: Iterable[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    score_thresh: float = 0.3,
) -> list[Path]:
    """Run a trained checkpoint on ``images`` and write ``output/<name>.png`` with the predictions drawn."""
    files = image_files(images)  # checked before the model loads
    model, state = load_model(checkpoint)
    classes, task = state["arch"]["classes"], state["arch"]["task"]
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for file in files:
        with Image.open(file) as opened:
            pixels = pil_to_tensor(opened.convert("RGB"))
        image = to_dtype(pixels, torch.float32, scale=True)
        if task == "detect":
            drawn = draw_detections(pixels, model([image])[0], classes, score_thresh)
        else:
            drawn = draw_segmentation(pixels, model(segmentation_input(image[None]))[0].argmax(0), len(classes))
        written.append(out / f"{file.stem}.png")
        to_pil_image(drawn).save(written[-1])
    return written
