"""Fashion-MNIST scenes: deterministic files, COCO annotations that agree with the masks and the label maps."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from hilovit.data.scenes import SCENE_CATEGORIES, ensure_scenes, generate_scenes


def _files(directory):
    return {p.relative_to(directory): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes(tmp_path):
    first = generate_scenes(tmp_path / "a", "train", 3, image_size=64, seed=5)
    second = generate_scenes(tmp_path / "b", "train", 3, image_size=64, seed=5)
    other = generate_scenes(tmp_path / "c", "train", 3, image_size=64, seed=6)
    assert first == tmp_path / "a" / "train"
    assert _files(first) == _files(second)
    assert _files(first) != _files(other)


def test_annotations_match_masks_and_label_maps(tmp_path):
    directory = generate_scenes(tmp_path, "val", 4, image_size=(96, 128), items_per_image=(3, 5))
    coco = json.loads((directory / "annotations.json").read_text())
    assert coco["categories"] == list(SCENE_CATEGORIES) and len(coco["categories"]) == 10
    assert [image["file_name"] for image in coco["images"]] == [f"{i:06d}.png" for i in range(4)]
    assert len({a["id"] for a in coco["annotations"]}) == len(coco["annotations"]) >= 4
    for image in coco["images"]:
        assert (image["height"], image["width"]) == (96, 128)
        rgb = np.asarray(Image.open(directory / "images" / image["file_name"]))
        semantic = np.asarray(Image.open(directory / "semantic" / image["file_name"]))
        assert rgb.shape == (96, 128, 3) and semantic.shape == (96, 128) and semantic.max() <= 10
        expected = np.zeros_like(semantic)
        for annotation in (a for a in coco["annotations"] if a["image_id"] == image["id"]):
            assert annotation["iscrowd"] == 0 and 1 <= annotation["category_id"] <= 10
            mask = mask_utils.decode(annotation["segmentation"]).astype(bool)
            ys, xs = np.nonzero(mask)
            x, y, w, h = annotation["bbox"]
            assert (x, y, x + w, y + h) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            assert annotation["area"] == mask.sum()
            assert not expected[mask].any(), "instance masks must not overlap"
            expected[mask] = annotation["category_id"]
        np.testing.assert_array_equal(semantic, expected)


def test_ensure_scenes_reuses_complete_splits_only(tmp_path):
    directory = ensure_scenes(tmp_path, "train", 2, image_size=48)
    annotations = directory / "annotations.json"
    stamp = annotations.stat().st_mtime_ns
    assert ensure_scenes(tmp_path, "train", 2, image_size=48) == directory
    assert annotations.stat().st_mtime_ns == stamp
    (directory / "images" / "000001.png").unlink()
    ensure_scenes(tmp_path, "train", 2, image_size=48)
    assert (directory / "images" / "000001.png").is_file()
    ensure_scenes(tmp_path, "train", 3, image_size=48)
    assert len(json.loads(annotations.read_text())["images"]) == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"split": "test"}, "split must be one of"),
        ({"num_images": 0}, "num_images must be positive"),
        ({"image_size": 16}, "at least 32 pixels"),
        ({"items_per_image": (3, 2)}, "items_per_image"),
    ],
)
def test_bad_arguments_are_named(tmp_path, kwargs, message):
    arguments = {"split": "train", "num_images": 1, "image_size": 64} | kwargs
    with pytest.raises(ValueError, match=message):
        generate_scenes(tmp_path, **arguments)
