"""The model under test (random weights, seeded, or a trained checkpoint's) and its calibration and evaluation
images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from hilovit.attention import HiLo2d
from hilovit.export.calibration import ImageSet, ImageSource
from hilovit.models import create_model, create_model_from_file, load_official, read_arch
from hilovit.models.registry import model_entry
from hilovit.speed.deploy.settings import DeploySettings

__all__ = ["HILO_LAYER", "Target", "build_target"]

#: the HiLo layer measured by ``bench deploy hilo``: LITv2-S's stage-3 layer (384 channels, 12 heads, window 2)
HILO_LAYER = {"dim": 384, "num_heads": 12, "window_size": 2, "alpha": 0.9, "qkv_bias": True}
TASKS = ("classification", "backbone")


@dataclass
class Target:
    """The model under test and the data it takes."""

    name: str
    model: nn.Module
    img_size: int
    arch: dict | None
    calibration: ImageSet
    evaluation: ImageSet


def _check_task(name: str) -> None:
    if name == "hilo":
        return
    task = model_entry(name).task
    if task not in TASKS:
        raise ValueError(
            f"bench deploy measures classifiers, dense backbones (litv2_*_backbone) and the HiLo layer ('hilo'); "
            f"{name} is a {task} model: measure its backbone, e.g. {name.split('_', 1)[-1]}_backbone"
        )


def _trained(path: Path) -> tuple[nn.Module, dict, int | None, tuple | None]:
    """Model, architecture, image size and normalisation of a training checkpoint or a hilovit safetensors file."""
    if path.suffix == ".safetensors":
        return create_model_from_file(path), read_arch(path), None, None
    from hilovit.train.checkpoint import check_task, load_train_checkpoint, trained_weights

    state = load_train_checkpoint(path)
    check_task(state, "classification", path)
    arch = dict(state["arch"])
    model = create_model(**arch)
    load_official(model, trained_weights(state))
    return model, arch, state["config"]["img_size"], state["normalization"]


def build_target(settings: DeploySettings) -> Target:
    """The model (random weights, seeded, or the checkpoint's) and its calibration and evaluation inputs."""
    torch.manual_seed(0)
    if settings.model == "hilo":
        side = settings.img_size or 14
        generator = torch.Generator().manual_seed(0)

        def features(count: int) -> ImageSet:
            return ImageSet(torch.randn(count, HILO_LAYER["dim"], side, side, generator=generator), None)

        calibration = features(settings.calibration_images)
        return Target("hilo", HiLo2d(**HILO_LAYER), side, None, calibration, features(settings.eval_images or 256))
    _check_task(settings.model)
    size, norm, arch = settings.img_size, None, None
    if settings.checkpoint is not None:
        model, arch, trained_size, norm = _trained(settings.checkpoint)
        if arch.get("model_name") != settings.model:
            raise ValueError(
                f"{settings.checkpoint} holds a {arch.get('model_name')} model, not {settings.model}: "
                f"run `hilovit bench deploy {arch.get('model_name')} --checkpoint {settings.checkpoint}`"
            )
        size = size or trained_size
    else:
        model, arch = create_model(settings.model), {"model_name": settings.model}
    size = size or 224
    in_chans = (arch or {}).get("in_chans", 3)
    mean, std = norm if norm is not None else (None, None)
    source = ImageSource(settings.calibration, img_size=size, in_chans=in_chans, mean=mean, std=std)
    calibration = source.calibration(settings.calibration_images)
    evaluation = source.evaluation(settings.eval_images, settings.calibration_images)
    if settings.checkpoint is None:  # random weights: fidelity only, no accuracy claim
        evaluation = ImageSet(evaluation.images, None)
    return Target(settings.model, model.eval(), size, arch, calibration, evaluation)
