"""Evaluation of a classifier: loss, top-1, top-5 and the confusion matrix, summed over processes."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hilovit.train.distributed import DistEnv, all_sum


@dataclass(frozen=True)
class Evaluation:
    loss: float
    top1: float
    top5: float
    confusion: Tensor  # (true class, predicted class) counts

    @property
    def count(self) -> int:
        return int(self.confusion.sum())


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
        confusion += torch.bincount(targets * num_classes + top[:, 0], minlength=num_classes**2).view_as(confusion)
    all_sum(sums, env)
    all_sum(confusion, env)
    model.train(was_training)
    count = max(int(confusion.sum()), 1)
    return Evaluation(
        float(sums[0]) / count, 100 * float(sums[1]) / count, 100 * float(sums[2]) / count, confusion.cpu()
    )
