"""Dense-prediction metrics: COCO AP (pycocotools' COCOeval, boxes or masks) and segmentation mIoU / pixel accuracy.

COCO figures are percentages; a figure COCOeval cannot compute (e.g. APs without small objects) is NaN.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from hilovit.train.metrics import ConfusionEvaluation, confusion_counts

COCO_STATS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
IOU_TYPES = ("bbox", "segm")


def detections_to_coco(
    outputs: Sequence[Mapping[str, Tensor]],
    image_ids: Sequence[int],
    label_to_category: Sequence[int],
    mask_threshold: float = 0.5,
) -> list[dict[str, Any]]:
    """torchvision detector outputs (``boxes`` xyxy, ``scores``, ``labels``, optional ``masks`` N x 1 x H x W
    probabilities) as COCO result records; masks become RLE after thresholding."""
    from pycocotools import mask as mask_utils

    records = []
    for output, image_id in zip(outputs, image_ids, strict=True):
        boxes = output["boxes"].detach().cpu().float()
        boxes[:, 2:] -= boxes[:, :2]
        scores, labels = output["scores"].tolist(), output["labels"].tolist()
        records += [
            {"image_id": image_id, "category_id": label_to_category[label], "bbox": box, "score": score}
            for box, score, label in zip(boxes.tolist(), scores, labels, strict=True)
        ]
        if output.get("masks") is not None and len(scores):
            binary = (output["masks"][:, 0] > mask_threshold).cpu().numpy().astype(np.uint8)
            rles = mask_utils.encode(np.asfortranarray(binary.transpose(1, 2, 0)))
            for record, rle in zip(records[-len(scores) :], rles, strict=True):
                record["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
    return records


def coco_evaluate(coco_gt: Any, results: Sequence[dict[str, Any]], iou_type: str = "bbox") -> dict[str, float]:
    """COCOeval's twelve summary figures (``COCO_STATS``, in %) of ``results`` against the ``pycocotools`` index
    ``coco_gt``; no detections at all scores 0."""
    from pycocotools.cocoeval import COCOeval

    if iou_type not in IOU_TYPES:
        raise ValueError(f"iou_type must be one of {IOU_TYPES}, got {iou_type!r}")
    if not results:
        return dict.fromkeys(COCO_STATS, 0.0)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(list(results)), iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {name: 100 * float(v) if v >= 0 else math.nan for name, v in zip(COCO_STATS, evaluator.stats, strict=True)}


def confusion_matrix(prediction: Tensor, target: Tensor, num_classes: int, ignore_index: int | None = 255) -> Tensor:
    """``num_classes x num_classes`` pixel counts (rows: true class, columns: predicted) of integer label maps of
    the same shape; pixels whose target is ``ignore_index`` are left out."""
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in shape")
    keep = target != ignore_index if ignore_index is not None else torch.ones_like(target, dtype=torch.bool)
    truth, predicted = target[keep].long(), prediction[keep].long()
    if truth.numel() and (truth.min() < 0 or truth.max() >= num_classes):
        raise ValueError(f"target holds labels outside 0..{num_classes - 1} (ignore_index {ignore_index})")
    if predicted.numel() and (predicted.min() < 0 or predicted.max() >= num_classes):
        raise ValueError(f"prediction holds labels outside 0..{num_classes - 1}")
    return confusion_counts(predicted, truth, num_classes)


def segmentation_scores(confusion: Tensor) -> dict[str, Any]:
    """mIoU (over the classes present in target or prediction), pixel accuracy and per-class IoU, in %."""
    confusion = confusion.double()
    hits = confusion.diag()
    union = confusion.sum(0) + confusion.sum(1) - hits
    iou = torch.where(union > 0, hits / union.clamp(min=1), torch.nan)
    total = confusion.sum()
    return {
        "mIoU": 100 * float(iou.nanmean()) if total else math.nan,
        "pixel_accuracy": 100 * float(hits.sum() / total) if total else math.nan,
        "IoU": [100 * float(v) for v in iou],
    }


@dataclass(frozen=True)
class DetectionEvaluation:
    """COCO figures of a detector (:data:`COCO_STATS`, in %, masks' prefixed ``mask_``)."""

    metrics: dict[str, float]
    headline: ClassVar[str] = "AP"
    confusion: ClassVar[None] = None

    def scalars(self) -> dict[str, float]:
        """AP, AP50 and AP75 of the boxes (and of the masks, for Mask R-CNN); there is no test loss."""
        shown = ("AP", "AP50", "AP75", "mask_AP", "mask_AP50", "mask_AP75")
        return {"test_loss": math.nan} | {key: self.metrics[key] for key in shown if key in self.metrics}


@dataclass(frozen=True)
class SemanticEvaluation(ConfusionEvaluation):
    """Pixel loss and confusion of a semantic segmenter; mIoU and pixel accuracy derive from the confusion."""

    headline: ClassVar[str] = "mIoU"

    def scalars(self) -> dict[str, float]:
        scores = segmentation_scores(self.confusion)
        return {"test_loss": self.loss, "mIoU": scores["mIoU"], "pixel_accuracy": scores["pixel_accuracy"]}
