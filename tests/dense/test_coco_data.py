"""COCO detection and label-map segmentation datasets: targets, flips, and errors that name what is wrong."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from hilovit.data.coco import CocoDetection, CocoFormatError, SegmentationDataset, collate_detection
from hilovit.data.datasets import DatasetNotFoundError
from hilovit.data.images import ImageFileError
from hilovit.data.scenes import generate_scenes


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return generate_scenes(tmp_path_factory.mktemp("scenes"), "train", 2, image_size=(48, 64))


def _write(tmp_path, coco, image_size=(30, 40)):
    Image.new("RGB", image_size[::-1]).save(tmp_path / "a.png")
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(coco) if isinstance(coco, dict) else coco)
    return path


def _coco(image=None, **annotation):
    return {
        "images": [{"id": 1, "file_name": "a.png", "width": 40, "height": 30} | (image or {})],
        "annotations": [{"id": 7, "image_id": 1, "category_id": 3, "bbox": [2, 3, 10, 5]} | annotation],
        "categories": [{"id": 3, "name": "thing"}],
    }


def test_targets_are_torchvision_style(scenes):
    dataset = CocoDetection(scenes / "images", scenes / "annotations.json")
    image, target = dataset[0]
    assert image.shape == (3, 48, 64) and image.dtype == torch.float32 and 0 <= image.min() <= image.max() <= 1
    count = len(target["labels"])
    assert target["boxes"].shape == (count, 4) and target["masks"].shape == (count, 48, 64)
    assert target["labels"].dtype == torch.int64 and 1 <= target["labels"].min() <= target["labels"].max() <= 10
    assert target["image_id"] == dataset.image_ids[0] and len(dataset.classes) == 11
    for box, mask in zip(target["boxes"], target["masks"], strict=True):
        ys, xs = torch.nonzero(mask, as_tuple=True)
        assert box.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    images, targets = collate_detection([dataset[0], dataset[1]])
    assert len(images) == len(targets) == 2


def test_horizontal_flip_moves_boxes_and_masks(scenes):
    plain = CocoDetection(scenes / "images", scenes / "annotations.json")
    flipped = CocoDetection(scenes / "images", scenes / "annotations.json", transforms=v2.RandomHorizontalFlip(1.0))
    (image, target), (image_f, target_f) = plain[1], flipped[1]
    torch.testing.assert_close(image_f, image.flip(-1))
    torch.testing.assert_close(target_f["masks"], target["masks"].flip(-1))
    expected = torch.stack([64 - target["boxes"][:, 2], target["boxes"][:, 1], 64 - target["boxes"][:, 0]], 1)
    torch.testing.assert_close(target_f["boxes"][:, :3], expected)


def test_image_without_annotations_and_without_masks(tmp_path):
    coco = _coco()
    coco["annotations"] = []
    _, target = CocoDetection(tmp_path, _write(tmp_path, coco), masks=False)[0]
    assert target["boxes"].shape == (0, 4) and target["labels"].shape == (0,) and "masks" not in target


@pytest.mark.parametrize(
    ("coco", "message"),
    [
        ("{not json", r"ann\.json is not valid JSON: .* line 1 column 2"),
        ({"images": [], "annotations": []}, r"the file lacks 'categories'"),
        (_coco(bbox=None) | {"annotations": [{"id": 7, "image_id": 1, "bbox": [1, 1, 2, 2]}]}, r"id 7 lacks 'cat"),
        (
            _coco(bbox=[35, 3, 10, 5]),
            r"annotation id 7 of image id 1 has bbox \[35, 3, 10, 5\] outside its image of 40x30",
        ),
        (
            _coco(bbox=[2, 3, 0, 5]),
            r"annotation id 7 of image id 1: bbox size \[width, height\] must be .* > 0, got \[0, 5\]",
        ),
        (_coco(bbox=[2, 3, -4, 5]), r"annotation id 7 of image id 1: bbox size .* got \[-4, 5\]"),
        (
            _coco(bbox=[2, 3, 4]),
            r"id 7 of image id 1: bbox \[x, y, width, height\] must be a list of 4 items, each a fin",
        ),
        (
            _coco(bbox=[float("nan"), 3, 4, 5]),
            r"id 7 of image id 1: bbox .* each a finite number, got \[nan, 3, 4, 5\]",
        ),
        (
            _coco(bbox=[2, 3, float("inf"), 5]),
            r"id 7 of image id 1: bbox .* each a finite number, got \[2, 3, inf, 5\]",
        ),
        (_coco(bbox=[2, 3, True, 5]), r"id 7 of image id 1: bbox .* each a finite number, got \[2, 3, True, 5\]"),
        (_coco(area=float("nan")), r"annotation id 7 of image id 1: area must be a finite number, got nan"),
        (_coco(area=-1), r"annotation id 7 of image id 1: area must be >= 0, got -1"),
        (_coco(segmentation=[[1, 2, 3, float("nan"), 5, 6]]), r"id 7 of image id 1: segmentation polygon must be"),
        (_coco(segmentation={"size": [9, 9], "counts": "x"}), r"segmentation size \[9, 9\] differs from .* \[30, 40\]"),
        (_coco({"width": -40}), r"image id 1: width must be an integer >= 1, got -40"),
        (_coco({"height": float("nan")}), r"image id 1: height must be an integer >= 1, got nan"),
        (
            _coco() | {"images": [{"id": 1, "file_name": "a.png", "width": 40, "height": 30}] * 2},
            r"image id 1 appears tw",
        ),
        (_coco(category_id=9), r"annotation id 7 has category_id 9, expected one of the declared category ids \[3\]"),
        (_coco(image_id=2), r"annotation id 7 refers to image_id 2"),
    ],
)
def test_bad_annotation_files_name_the_problem(tmp_path, coco, message):
    path = _write(tmp_path, coco)
    with pytest.raises(CocoFormatError, match=message) as error:
        CocoDetection(tmp_path, path)
    assert str(path) in str(error.value)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"annotation file .*nowhere\.json does not exist"):
        CocoDetection(tmp_path, tmp_path / "nowhere.json")
    path = _write(tmp_path, _coco())
    (tmp_path / "a.png").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"image id 1: file .*a\.png does not exist"):
        CocoDetection(tmp_path, path)


@pytest.mark.parametrize(("declared", "actual"), [((40, 30), (40, 31)), ((9999, 30), (40, 30))])
def test_declared_size_must_match_the_image_when_opened(tmp_path, declared, actual):
    coco = _coco({"width": declared[0], "height": declared[1]})
    path = _write(tmp_path, coco, image_size=actual[::-1])
    message = f"ann.json: image id 1 declares width x height {declared[0]}x{declared[1]}, but its file .*a.png is "
    with pytest.raises(CocoFormatError, match=message + f"{actual[0]}x{actual[1]} pixels"):
        CocoDetection(tmp_path, path, masks=False)


def test_an_unreadable_image_is_named_when_opened(tmp_path):
    path = _write(tmp_path, _coco())
    (tmp_path / "a.png").write_text("not an image")
    with pytest.raises(ImageFileError, match=r"a\.png is not a readable image: its content is in no image format"):
        CocoDetection(tmp_path, path)


def test_segmentation_dataset(scenes, tmp_path):
    classes = ["background", *(f"c{i}" for i in range(10))]
    dataset = SegmentationDataset(scenes / "images", scenes / "semantic", classes, v2.RandomHorizontalFlip(1.0))
    image, labels = dataset[0]
    expected = torch.from_numpy(np.asarray(Image.open(scenes / "semantic" / "000000.png"), dtype=np.int64))
    assert image.shape == (3, 48, 64) and labels.dtype == torch.int64
    torch.testing.assert_close(labels, expected.flip(-1))
    with pytest.raises(ValueError, match=r"holds value \d+, expected 0..1 or ignore_index 255"):
        SegmentationDataset(scenes / "images", scenes / "semantic", ["background", "thing"])[0]
    with pytest.raises(DatasetNotFoundError, match="have no label map"):
        SegmentationDataset(scenes / "images", tmp_path, classes)


def test_segmentation_files_are_checked_when_opened(tmp_path):
    for sub in ("images", "semantic"):
        (tmp_path / sub).mkdir()
    Image.new("RGB", (8, 6)).save(tmp_path / "images" / "a.png")
    Image.new("L", (8, 5)).save(tmp_path / "semantic" / "a.png")
    with pytest.raises(ValueError, match=r"label map .*semantic/a\.png is 8x5 pixels, its image .*a\.png 8x6; expec"):
        SegmentationDataset(tmp_path / "images", tmp_path / "semantic", ["background", "thing"])
    (tmp_path / "semantic" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(ImageFileError, match=r"semantic/a\.png is not a readable image"):
        SegmentationDataset(tmp_path / "images", tmp_path / "semantic", ["background", "thing"])
