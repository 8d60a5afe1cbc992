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
from hilovit.data.scenes import generate_scenes


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return generate_scenes(tmp_path_factory.mktemp("scenes"), "train", 2, image_size=(48, 64))


def _write(tmp_path, coco, image_size=(30, 40)):
    Image.new("RGB", image_size[::-1]).save(tmp_path / "a.png")
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(coco) if isinstance(coco, dict) else coco)
    return path


def _coco(**annotation):
    return {
        "images": [{"id": 1, "file_name": "a.png", "width": 40, "height": 30}],
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
        (_coco(bbox=[35, 3, 10, 5]), r"annotation id 7 has bbox \[35, 3, 10, 5\] outside its image id 1 of 40x30"),
        (_coco(bbox=[2, 3, 0, 5]), r"annotation id 7 has bbox \[2, 3, 0, 5\] with non-positive size"),
        (_coco(bbox=[2, 3, 4]), r"annotation id 7 has bbox \[2, 3, 4\], expected 4 numbers"),
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


def test_declared_size_must_match_the_image(tmp_path):
    dataset = CocoDetection(tmp_path, _write(tmp_path, _coco(), image_size=(31, 40)), masks=False)
    with pytest.raises(CocoFormatError, match="image id 1 is 40x31 pixels, the file declares 40x30"):
        dataset[0]


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
