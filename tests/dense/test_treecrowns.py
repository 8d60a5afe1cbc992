"""The deepforest tree crowns: 951 boxes, tiling with clipped boxes, a deterministic train/val split."""

from __future__ import annotations

import importlib.util
import json
import shutil

import numpy as np
import pytest

from hilovit.data.coco import CocoDetection
from hilovit.data.treecrowns import (
    DEEPFOREST_BOXES,
    build_treecrowns,
    clip_boxes,
    deepforest_data_dir,
    ensure_treecrowns,
    read_voc_boxes,
    tile_origins,
)

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("deepforest") is None, reason="the tree-crown data comes with the deepforest package"
)


def test_the_package_ships_951_boxes_on_four_images():
    boxes = read_voc_boxes()
    assert len(boxes) == 4 and sum(len(b) for b in boxes.values()) == DEEPFOREST_BOXES == 951
    for b in boxes.values():
        assert (b[:, 2:] > b[:, :2]).all()


def test_tiles_cover_the_image_without_overlap():
    assert tile_origins(1035, 400) == [0, 400, 800]
    assert tile_origins(400, 400) == [0]


def test_boxes_are_clipped_to_the_tile_and_slivers_dropped():
    boxes = np.array([[10, 10, 50, 50], [380, 100, 420, 140], [390, 0, 430, 20], [500, 500, 520, 520]], float)
    kept = clip_boxes(boxes, (0, 0, 400, 400), min_visible=0.5)
    np.testing.assert_array_equal(kept, [[10, 10, 50, 50], [380, 100, 400, 140]])  # 50% kept, 25% dropped
    shifted = clip_boxes(boxes, (400, 0, 800, 400), min_visible=0.5)
    np.testing.assert_array_equal(shifted, [[0, 100, 20, 140], [0, 0, 30, 20]])


def test_build_writes_coco_splits(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("OSBS_029.xml", "OSBS_029.tif", "2019_YELL_2_541000_4977000_image_crop.xml"):
        shutil.copy(deepforest_data_dir() / name, data)
    shutil.copy(deepforest_data_dir() / "2019_YELL_2_541000_4977000_image_crop.png", data)
    directories = build_treecrowns(tmp_path / "tiles", tile=400, data_dir=data)
    sources = read_voc_boxes(data)
    tiles = {split: json.loads((d / "annotations.json").read_text()) for split, d in directories.items()}
    assert sum(len(t["images"]) for t in tiles.values()) == 1 + 4 * 3  # 400x400 and 1249x1035 in 400 px tiles
    assert len(tiles["val"]["images"]) == round(0.2 * 13)
    kept = sum(len(t["annotations"]) for t in tiles.values())
    inside = sum(len(clip_boxes(b, (0, 0, 10**6, 10**6))) for b in sources.values())
    assert 0.95 * inside <= kept <= inside == 61 + 279
    dataset = CocoDetection(directories["train"] / "images", directories["train"] / "annotations.json")
    image, target = dataset[0]
    assert image.shape[1] <= 400 and image.shape[2] <= 400 and "masks" not in target
    assert (target["boxes"][:, 2] <= image.shape[2]).all() and (target["boxes"][:, 3] <= image.shape[1]).all()
    stamp = (directories["val"] / "annotations.json").stat().st_mtime_ns
    assert ensure_treecrowns(tmp_path / "tiles", data_dir=data) == directories
    assert (directories["val"] / "annotations.json").stat().st_mtime_ns == stamp
