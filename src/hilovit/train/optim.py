"""Optimizer, schedule, mixup and loss of a run, built from timm's parts."""

from __future__ import annotations

import fnmatch

import torch
from timm.data import Mixup
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.scheduler.scheduler import Scheduler
from torch import nn

from hilovit.train.config import TrainConfig

OFFSET_PARAMS = "*.dconv.conv_offset.*"


def param_groups(model: nn.Module, weight_decay: float, offset_lr_scale: float) -> list[dict]:
    """Parameters split by weight decay (none for biases, norms and ``no_weight_decay()``) and by learning rate
    (``offset_lr_scale`` times the base for the DTM offset convs, matched by ``OFFSET_PARAMS``)."""
    skip = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        decay = param.ndim > 1 and name not in skip
        offset = fnmatch.fnmatch(name, OFFSET_PARAMS)
        groups.setdefault((decay, offset), []).append(param)
    return [
        {"params": ps, "weight_decay": weight_decay if decay else 0.0, "lr_scale": offset_lr_scale if offset else 1.0}
        for (decay, offset), ps in groups.items()
    ]


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg.weight_decay, cfg.offset_lr_scale)
    return create_optimizer_v2(groups, opt=cfg.opt, lr=cfg.peak_lr, weight_decay=cfg.weight_decay)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, updates_per_epoch: int) -> Scheduler:
    """timm's scheduler, stepped once per optimizer update (``step_update``): warm-up then ``cfg.sched``.

    It sets every group's learning rate to the schedule's value times the group's ``lr_scale``, from step 0 on.
    """
    scheduler, _ = create_scheduler_v2(
        optimizer,
        sched=cfg.sched,
        num_epochs=cfg.epochs,
        warmup_epochs=cfg.warmup_epochs,
        warmup_lr=cfg.warmup_lr,
        min_lr=cfg.min_lr,
        step_on_epochs=False,
        updates_per_epoch=updates_per_epoch,
    )
    scheduler.step_update(0)
    return scheduler


def build_mixup(cfg: TrainConfig, num_classes: int) -> Mixup | None:
    """timm's batch mixup/cutmix with label smoothing, or None when both are off."""
    if cfg.mixup <= 0 and cfg.cutmix <= 0:
        return None
    return Mixup(
        mixup_alpha=cfg.mixup, cutmix_alpha=cfg.cutmix, label_smoothing=cfg.label_smoothing, num_classes=num_classes
    )


def build_loss(cfg: TrainConfig, mixup: Mixup | None) -> nn.Module:
    """Soft-target cross-entropy after mixup (which smooths the labels), else label-smoothed cross-entropy."""
    if mixup is not None:
        return SoftTargetCrossEntropy()
    if cfg.label_smoothing > 0:
        return LabelSmoothingCrossEntropy(cfg.label_smoothing)
    return nn.CrossEntropyLoss()
