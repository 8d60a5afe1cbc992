"""The tasks of the one :class:`~hilovit.train.loop.Trainer`, by name (:data:`TASK_TRAINERS`), and :func:`train`.

Classification is the Trainer itself; detection and semantic segmentation are in :mod:`hilovit.train.dense_tasks`.
Video classification and volumetric segmentation differ from classification only in the data, the evaluation and
the throughput input; the loop, checkpoints (atomic, exact resume), DDP, AMP, progress, history and report are the
Trainer's. Dataset options come from ``cfg.data_kwargs``:

* :class:`VideoTrainer`: moving Fashion-MNIST (``cfg.data`` the Fashion-MNIST IDX directory, default the Debian
  package); ``data_kwargs`` are :class:`~hilovit.data.moving_fmnist.MovingFashionMNIST` options (``frames``,
  ``size``, ``object_size``, ``speeds``, ``seed``); ``train_subset`` / ``test_subset`` set the clip counts.
* :class:`VolumeTrainer`: ``cfg.data`` names a volume (``mni152`` or ``nuclei``); ``data_kwargs`` hold ``crop``
  (3 sides), ``crops_per_epoch``, ``val_fraction`` and the loader's own options (``resolution``, ``threshold``
  for MNI152). Training draws random crops (flipped with probability ``hflip`` per axis) from the training slab;
  evaluation runs on the whole validation slab and reports Dice per class, mean foreground Dice and accuracy.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

import torch

from hilovit.data.moving_fmnist import MovingFashionMNIST
from hilovit.data.volumes import VOLUMES, RandomCrops, WholeVolume, load_volume, split_by_region
from hilovit.train import distributed as dist_env
from hilovit.train.config import ConfigError, TrainConfig, refuse_options
from hilovit.train.dense_tasks import DetectionTrainer, SemanticTrainer
from hilovit.train.loop import TrainData, Trainer, TrainResult
from hilovit.train.metrics import SegmentationEvaluation, pixel_confusion

__all__ = ["TASK_TRAINERS", "VideoTrainer", "VolumeTrainer", "train"]

_UNNORMALISED = ((0.0,), (1.0,))  # inputs are already in [0, 1]
_CROP_OPTIONS = ("crop", "crops_per_epoch", "val_fraction")  # VolumeTrainer's own data_kwargs


def _check_data_kwargs(options: dict[str, Any], known: Iterable[str], data: str) -> None:
    """ConfigError naming the ``data_kwargs`` keys that ``data`` does not take, and the ones it does."""
    known = tuple(known)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(f"unknown data_kwargs key(s) {', '.join(unknown)} for {data}; known: {', '.join(known)}")


def _keywords(function: Callable[..., Any], *taken: str) -> tuple[str, ...]:
    """The parameters of ``function`` that data_kwargs may set: all but the ones ``taken`` from elsewhere."""
    return tuple(name for name in inspect.signature(function).parameters if name not in taken)


class VideoTrainer(Trainer):
    """Classify the motion of moving Fashion-MNIST clips ``(B, 1, T, S, S)``."""

    task = "video"

    def build_data(self) -> TrainData:
        cfg = self.cfg
        refuse_options(cfg, "video", channels_last=False, auto_augment=None, re_prob=0.0, color_jitter=0.0)
        options = dict(cfg.data_kwargs)
        _check_data_kwargs(options, _keywords(MovingFashionMNIST, "split", "root", "clips"), "moving Fashion-MNIST")
        train = MovingFashionMNIST("train", cfg.data, clips=cfg.train_subset, **options)
        test = MovingFashionMNIST("test", cfg.data, clips=cfg.test_subset, **options)
        return TrainData(train, test, train.classes, train.channels, _UNNORMALISED)

    def example_input(self, batch: int) -> torch.Tensor:
        clip = self.data.test[0][0]
        return torch.randn(batch, *clip.shape, device=self.env.device)


class VolumeTrainer(Trainer):
    """Segment a labelled volume: random crops for training, the held-out slab for evaluation."""

    task = "volume"

    def build_data(self) -> TrainData:
        cfg = self.cfg
        refuse_options(
            cfg, "volumes", channels_last=False, mixup=0.0, cutmix=0.0, label_smoothing=0.0, train_subset=None
        )
        name, options = cfg.data or "mni152", dict(cfg.data_kwargs)
        if name in VOLUMES:  # else load_volume names the known volumes
            _check_data_kwargs(options, (*_CROP_OPTIONS, *_keywords(VOLUMES[name])), f"the {name} volume")
        crop = options.pop("crop", (32, 32, 32))
        crops_per_epoch = options.pop("crops_per_epoch", 64)
        val_fraction = options.pop("val_fraction", 0.25)
        train, val = split_by_region(load_volume(name, **options), val_fraction)
        crops = RandomCrops(train, crop, crops_per_epoch, flip=cfg.hflip)
        return TrainData(crops, WholeVolume(val), train.classes, 1, _UNNORMALISED)

    def example_input(self, batch: int) -> torch.Tensor:
        return torch.randn(batch, 1, *self.data.train.crop, device=self.env.device)

    def evaluate(self) -> SegmentationEvaluation:
        loss, confusion = pixel_confusion(
            self.eval_model, self.test_batches(), len(self.data.classes), self.env, self.autocast
        )
        return SegmentationEvaluation(loss, confusion)


TASK_TRAINERS: dict[str, type[Trainer]] = {
    "classification": Trainer,
    "video": VideoTrainer,
    "volume": VolumeTrainer,
    "detect": DetectionTrainer,
    "segment": SemanticTrainer,
}


def train(cfg: TrainConfig) -> TrainResult:
    """Run ``cfg`` with the trainer of ``cfg.task`` in this process, joining the torchrun process group when
    there is one."""
    env = dist_env.setup(cfg.device)
    try:
        return TASK_TRAINERS[cfg.task](cfg, env).fit()
    finally:
        dist_env.teardown(env)
