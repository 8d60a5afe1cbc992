"""Predictions drawn on images: boxes, labels, scores and instance masks, or a class overlay for segmentation."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import Tensor
from torchvision.transforms.v2.functional import pil_to_tensor, to_dtype, to_pil_image
from torchvision.utils import draw_bounding_boxes, draw_segmentation_masks

from hilovit.data.images import IMAGE_SUFFIXES, image_files_in, is_image_file, open_image, verify_image
from hilovit.train.dense_tasks import load_dense_model, segmentation_input
from hilovit.validation import PROBABILITY


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
    """The image files named, directories expanded to their images (sorted), each listed once and verified to be
    a readable image.

    Raises:
        FileNotFoundError: a path does not exist, or a directory holds no image.
        ValueError: a file is not an image (by its suffix or its content).
    """
    expected = f"expected {'/'.join(IMAGE_SUFFIXES)}"
    files: dict[Path, Path] = {}  # resolved -> as given: a file named twice is predicted once
    for path in map(Path, paths):
        if path.is_dir():
            found = image_files_in(path)
            if not found:
                raise FileNotFoundError(f"no images found in {path} ({expected})")
        elif not path.is_file():
            raise FileNotFoundError(f"{path} is neither an image file nor a directory")
        elif not is_image_file(path):
            raise ValueError(f"{path} is not an image file ({expected})")
        else:
            found = [path]
        for file in found:
            files.setdefault(file.resolve(), file)
    for file in files.values():
        verify_image(file)
    return list(files.values())


def output_paths(files: Sequence[Path], output: str | os.PathLike[str], exist_ok: bool = False) -> list[Path]:
    """Where the prediction of each of ``files`` is written: ``output/<stem>.png``, with ``-2``, ``-3`` ...
    added to the stem when inputs share it (``a/x.png`` and ``b/x.jpg`` give ``x.png`` and ``x-2.png``).

    Raises:
        NotADirectoryError: ``output`` is a file.
        ValueError: ``output`` is a folder holding input images (predictions would mix with or overwrite them),
            or an output file exists and not ``exist_ok``.
    """
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise NotADirectoryError(f"output {output} is a file; expected a folder for the predictions")
    if output.resolve() in {file.resolve().parent for file in files}:
        raise ValueError(
            f"output folder {output} holds input images; expected a folder apart from the inputs, so that "
            "predictions never overwrite or mix with them"
        )
    stems, taken, paths = {file.stem for file in files}, set(), []
    for file in files:
        name, count = file.stem, 1
        while name in taken or (count > 1 and name in stems):  # a suffixed name never takes another's own
            count += 1
            name = f"{file.stem}-{count}"
        taken.add(name)
        paths.append(output / f"{name}.png")
    existing = [path for path in paths if path.exists()]
    if existing and not exist_ok:
        raise ValueError(
            f"{len(existing)} of the {len(paths)} predictions would overwrite files in {output} (e.g. "
            f"{existing[0].name}); choose another output folder or pass exist_ok (--exist-ok) to overwrite them"
        )
    return paths


@torch.inference_mode()
def predict_images(
    checkpoint: str | os.PathLike[str],
    images: Iterable[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    score_thresh: float = 0.3,
    exist_ok: bool = False,
) -> list[Path]:
    """Run a trained checkpoint on ``images`` and write ``output/<name>.png`` with the predictions drawn, named
    by :func:`output_paths`; the written paths, in the order of the inputs.

    ``score_thresh`` is the lowest score of a detection drawn, in [0, 1]; ``exist_ok`` allows overwriting earlier
    predictions. Inputs, output names and the threshold are checked before the model loads.
    """
    PROBABILITY.check("score_thresh", score_thresh)
    files = image_files(images)
    targets = output_paths(files, output, exist_ok)
    model, state = load_dense_model(checkpoint)
    classes, task = state["classes"], state["task"]
    Path(output).mkdir(parents=True, exist_ok=True)
    for file, target in zip(files, targets, strict=True):
        with open_image(file) as opened:
            pixels = pil_to_tensor(opened.convert("RGB"))
        image = to_dtype(pixels, torch.float32, scale=True)
        if task == "detect":
            drawn = draw_detections(pixels, model([image])[0], classes, score_thresh)
        else:
            drawn = draw_segmentation(pixels, model(segmentation_input(image[None]))[0].argmax(0), len(classes))
        to_pil_image(drawn).save(target)
    return targets
