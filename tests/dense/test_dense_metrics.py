"""COCO AP through pycocotools and segmentation mIoU / pixel accuracy on hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from hilovit.data.coco import CocoDetection
from hilovit.data.scenes import generate_scenes
from hilovit.dense.metrics import (
    COCO_STATS,
    coco_evaluate,
    confusion_matrix,
    detections_to_coco,
    segmentation_scores,
)


def test_confusion_matrix_and_scores_by_hand():
    target = torch.tensor([[0, 0, 1], [1, 2, 255]])
    prediction = torch.tensor([[0, 1, 1], [1, 2, 0]])
    confusion = confusion_matrix(prediction, target, num_classes=3, ignore_index=255)
    assert confusion.tolist() == [[1, 1, 0], [0, 2, 0], [0, 0, 1]]
    scores = segmentation_scores(confusion)
    # IoU: class 0 = 1 / (2 + 1 - 1), class 1 = 2 / (3 + 2 - 2), class 2 = 1 / 1
    assert scores["IoU"] == pytest.approx([50.0, 200 / 3, 100.0])
    assert scores["mIoU"] == pytest.approx((50 + 200 / 3 + 100) / 3)
    assert scores["pixel_accuracy"] == pytest.approx(80.0)


def test_classes_absent_everywhere_do_not_count_in_miou():
    target = torch.tensor([0, 0, 1, 1])
    scores = segmentation_scores(confusion_matrix(target, target, num_classes=4, ignore_index=None))
    assert scores["mIoU"] == 100.0 and math.isnan(scores["IoU"][3])


def test_confusion_matrix_rejects_bad_labels():
    with pytest.raises(ValueError, match=r"outside 0\.\.2"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 7]), num_classes=3)
    with pytest.raises(ValueError, match="differ in shape"):
        confusion_matrix(torch.zeros(2, 2), torch.zeros(4), num_classes=3)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    directory = generate_scenes(tmp_path_factory.mktemp("scenes"), "val", 3, image_size=64)
    return CocoDetection(directory / "images", directory / "annotations.json")


def _ground_truth_as_outputs(dataset, shift=0.0):
    outputs = []
    for index in range(len(dataset)):
        _, target = dataset[index]
        outputs.append(
            {
                "boxes": target["boxes"] + shift,
                "scores": torch.ones(len(target["labels"])),
                "labels": target["labels"],
                "masks": target["masks"][:, None].float(),
            }
        )
    return outputs, dataset.image_ids


def test_ground_truth_scores_full_ap_and_shifted_boxes_score_less(scenes):
    outputs, ids = _ground_truth_as_outputs(scenes)
    results = detections_to_coco(outputs, ids, scenes.label_to_category)
    for iou_type in ("bbox", "segm"):
        stats = coco_evaluate(scenes.coco, results, iou_type)
        assert set(stats) == set(COCO_STATS)
        assert stats["AP"] == pytest.approx(100.0) and stats["AP50"] == pytest.approx(100.0)
    shifted = detections_to_coco(*_ground_truth_as_outputs(scenes, shift=4.0), scenes.label_to_category)
    assert coco_evaluate(scenes.coco, shifted)["AP"] < 90.0


def test_no_detections_score_zero(scenes):
    assert coco_evaluate(scenes.coco, [])["AP"] == 0.0
    with pytest.raises(ValueError, match="iou_type"):
        coco_evaluate(scenes.coco, [], "keypoints")
