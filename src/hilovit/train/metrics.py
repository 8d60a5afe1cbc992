"""Evaluation of a classifier (loss, top-1, top-5) or a segmenter (loss, voxel accuracy, Dice), with the confusion
matrix, summed over processes."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hilovit.train.distributed import DistEnv, all_sum


@dataclass(frozen=True)
class ConfusionEvaluation:
    """Mean loss and confusion matrix over a validation set (of images, pixels or voxels); the figures of its
    subclasses derive from them."""

    loss: float
    confusion: Tensor  # (true class, predicted class) counts

    @property
    def count(self) -> int:
        return int(self.confusion.sum())


@dataclass(frozen=True)
class Evaluation(ConfusionEvaluation):
    """A classifier's loss, top-1 and top-5 accuracy (in %) and confusion matrix."""

    top1: float
    top5: float
    headline: ClassVar[str] = "test_top1"

    def scalars(self) -> dict[str, float]:
        """The figures of the per-epoch log, named as its columns."""
        return {"test_loss": self.loss, "test_top1": self.top1, "test_top5": self.top5}


def confusion_counts(predicted: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """``(num_classes, num_classes)`` int64 counts, rows the true class and columns the predicted one."""
    flat = target.reshape(-1) * num_classes + predicted.reshape(-1)
    return torch.bincount(flat, minlength=num_classes**2).view(num_classes, num_classes)


def dice_scores(confusion: Tensor) -> Tensor:
    """Per-class Dice ``2 |P & T| / (|P| + |T|)`` from a confusion matrix, as float64.

    A class absent from both the prediction and the target has no defined Dice: its entry is NaN (left out of
    :func:`mean_dice`, the convention of MONAI's ``ignore_empty``); present in one only, it scores 0.
    """
    confusion = confusion.double()
    overlap = confusion.diagonal()
    sizes = confusion.sum(dim=0) + confusion.sum(dim=1)
    return torch.where(sizes > 0, 2 * overlap / sizes.clamp(min=1), torch.nan)


def mean_dice(scores: Tensor, background: int | None = 0) -> float:
    """Mean of the defined (non-NaN) per-class Dice scores, without class ``background`` (None: keep all)."""
    keep = torch.ones_like(scores, dtype=torch.bool)
    if background is not None:
        keep[background] = False
    return float(scores[keep].nanmean())


@dataclass(frozen=True)
class SegmentationEvaluation(ConfusionEvaluation):
    """Per-voxel loss and confusion over a validation set; accuracy and Dice derive from the confusion."""

    headline: ClassVar[str] = "test_dice"

    @property
    def accuracy(self) -> float:
        return 100 * float(self.confusion.diagonal().sum()) / max(self.count, 1)

    @property
    def dice(self) -> Tensor:
        return dice_scores(self.confusion)

    def scalars(self) -> dict[str, float]:
        """Loss, mean foreground Dice, voxel accuracy and Dice per class (``test_dice_<k>``)."""
        per_class = {f"test_dice_{k}": float(score) for k, score in enumerate(self.dice)}
        return {"test_loss": self.loss, "test_dice": mean_dice(self.dice), "test_acc": self.accuracy} | per_class


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    num_classes: int,
    env: DistEnv,
    autocast: torch.autocast | None = None,
    channels_last: bool = False,
) -> Evaluation:
    """Metrics over all batches of all processes (each process passes its own shard)."""
    was_training = model.training
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64, device=env.device)  # loss sum, top-1 hits, top-5 hits
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=env.device)
    for images, targets in batches:
        images, targets = images.to(env.device, non_blocking=True), targets.to(env.device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast or nullcontext():
            logits = model(images)
        logits = logits.float()
        top = logits.topk(min(5, num_classes), dim=1).indices
        sums[0] += F.cross_entropy(logits, targets, reduction="sum")
        sums[1] += (top[:, 0] == targets).sum()
        sums[2] += (top == targets[:, None]).any(dim=1).sum()
        confusion += confusion_counts(top[:, 0], targets, num_classes)
    all_sum(sums, env)
    all_sum(confusion, env)
    model.train(was_training)
    count = max(int(confusion.sum()), 1)
    return Evaluation(
        loss=float(sums[0]) / count,
        confusion=confusion.cpu(),
        top1=100 * float(sums[1]) / count,
        top5=100 * float(sums[2]) / count,
    )


@torch.inference_mode()
def pixel_confusion(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    num_classes: int,
    env: DistEnv,
    autocast: torch.autocast | None = None,
    ignore_index: int | None = None,
) -> tuple[float, Tensor]:
    """Mean per-pixel (per-voxel) cross-entropy and the pixel confusion matrix of a segmenter over all batches of
    all processes; targets equal to ``ignore_index`` are left out of both."""
    was_training = model.training
    model.eval()
    loss = torch.zeros((), dtype=torch.float64, device=env.device)
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=env.device)
    for images, targets in batches:
        images, targets = images.to(env.device, non_blocking=True), targets.to(env.device, non_blocking=True)
        with autocast or nullcontext():
            logits = model(images)
        logits = logits.float()
        keep = targets != ignore_index if ignore_index is not None else torch.ones_like(targets, dtype=torch.bool)
        loss += F.cross_entropy(
            logits, targets, reduction="sum", ignore_index=-100 if ignore_index is None else ignore_index
        )
        confusion += confusion_counts(logits.argmax(dim=1)[keep], targets[keep], num_classes)
    all_sum(loss, env)
    all_sum(confusion, env)
    model.train(was_training)
    return float(loss) / max(int(confusion.sum()), 1), confusion.cpu()
