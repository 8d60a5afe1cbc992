"""COCO -> YOLO conversion on a hand-written COCO file, and the scenes dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from hilovit.yolo.data import coco_to_yolo, write_data_yaml


def _coco(tmp_path: Path, annotations: list[dict], categories: list[dict] | None = None) -> tuple[Path, Path]:
    images = tmp_path / "images"
    images.mkdir(parents=True)
    for name, (height, width) in {"a.png": (40, 80), "b.png": (30, 30)}.items():
        Image.fromarray(np.zeros((height, width, 3), dtype=np.uint8)).save(images / name)
    coco = {
        "images": [
            {"id": 1, "file_name": "a.png", "height": 40, "width": 80},
            {"id": 2, "file_name": "b.png", "height": 30, "width": 30},
        ],
        "annotations": annotations,
        "categories": [{"id": 7, "name": "bag"}, {"id": 3, "name": "dress"}] if categories is None else categories,
    }
    file = tmp_path / "annotations.json"
    file.write_text(json.dumps(coco))
    return file, images


def _box(id_: int, image: int, category: int, bbox: list[float], crowd: int = 0) -> dict:
    return {"id": id_, "image_id": image, "category_id": category, "bbox": bbox, "iscrowd": crowd}


@pytest.mark.parametrize("link", [True, False])
def test_coco_to_yolo_labels_and_layout(tmp_path: Path, link: bool) -> None:
    annotations = [
        _box(1, 1, 3, [8, 4, 16, 8]),  # dress -> class 0 (category ids sorted)
        _box(2, 1, 7, [70, 30, 20, 20]),  # bag -> class 1, clipped to the 80x40 image
        _box(3, 1, 7, [0, 0, 5, 5], crowd=1),  # crowd: skipped
        _box(4, 1, 3, [90, 10, 5, 5]),  # entirely outside: skipped
    ]
    file, images = _coco(tmp_path, annotations)
    image_dir, names = coco_to_yolo(file, images, tmp_path / "yolo" / "train", link=link)
    assert names == ["dress", "bag"]
    assert image_dir == tmp_path / "yolo" / "train" / "images"
    assert (image_dir / "a.png").is_symlink() is link and (image_dir / "b.png").read_bytes()
    rows = [line.split() for line in (tmp_path / "yolo/train/labels/a.txt").read_text().splitlines()]
    assert [row[0] for row in rows] == ["0", "1"]
    np.testing.assert_allclose([float(v) for v in rows[0][1:]], [16 / 80, 8 / 40, 16 / 80, 8 / 40], atol=1e-6)
    np.testing.assert_allclose([float(v) for v in rows[1][1:]], [75 / 80, 35 / 40, 10 / 80, 10 / 40], atol=1e-6)
    assert (tmp_path / "yolo/train/labels/b.txt").read_text() == ""  # background image

    data = yaml.safe_load(write_data_yaml(tmp_path / "yolo", {"train": image_dir, "val": image_dir}, names).read_text())
    assert data == {"path": str((tmp_path / "yolo").resolve()), "train": "train/images", "val": "train/images",
                    "names": {0: "dress", 1: "bag"}}  # fmt: skip


def test_coco_to_yolo_errors(tmp_path: Path) -> None:
    file, images = _coco(tmp_path, [_box(1, 1, 5, [0, 0, 4, 4])])
    with pytest.raises(ValueError, match="category_id 5"):
        coco_to_yolo(file, images, tmp_path / "out")
    file, images = _coco(tmp_path / "x", [], categories=[])
    with pytest.raises(ValueError, match="no 'categories'"):
        coco_to_yolo(file, images, tmp_path / "out")
    (images / "b.png").unlink()
    file.write_text(json.dumps(dict(json.loads(file.read_text()), categories=[{"id": 1, "name": "a"}])))
    with pytest.raises(FileNotFoundError, match=r"b\.png"):
        coco_to_yolo(file, images, tmp_path / "out")


def test_scenes_dataset(scenes: Path) -> None:
    data = yaml.safe_load(scenes.read_text())
    assert data["names"][0] == "T-shirt/top" and len(data["names"]) == 10
    labels = sorted((scenes.parent / "train" / "labels").glob("*.txt"))
    assert len(labels) == 4
    rows = np.array([line.split() for f in labels for line in f.read_text().splitlines()], dtype=float)
    assert len(rows) > 4 and set(rows[:, 0]) <= set(range(10))
    assert ((rows[:, 1:] > 0) & (rows[:, 1:] <= 1)).all()


def test_bundled_dataset_is_the_dense_tasks_split_in_yolo_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hilovit.dense.data import split_directories
    from hilovit.yolo.data import bundled_yolo_dataset

    monkeypatch.setenv("HILOVIT_CACHE", str(tmp_path / "cache"))
    data = bundled_yolo_dataset("scenes", tmp_path / "yolo", img_size=64, scene_images=(3, 2))
    config = yaml.safe_load(data.read_text())
    assert (config["train"], config["val"], len(config["names"])) == ("train/images", "val/images", 10)
    coco = split_directories("scenes", 64, (3, 2))
    for split, count in (("train", 3), ("val", 2)):
        annotations = json.loads((coco[split] / "annotations.json").read_text())["annotations"]
        rows = [
            line
            for file in (tmp_path / "yolo" / split / "labels").glob("*.txt")
            for line in file.read_text().splitlines()
        ]
        assert len(list((tmp_path / "yolo" / split / "images").iterdir())) == count and len(rows) == len(annotations)
