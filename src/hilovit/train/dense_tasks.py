"""Detection (RetinaNet / Faster R-CNN / Mask R-CNN, COCO AP) and semantic segmentation (Semantic FPN, mIoU) on
the one :class:`~hilovit.train.loop.Trainer`.

Data: ``cfg.data`` None or ``scenes`` (Fashion-MNIST scenes generated on first use, ``cfg.scene_images`` train
and validation canvases of ``cfg.img_size`` pixels), ``treecrowns`` or a directory (:mod:`hilovit.dense.data`).
Models come from the registry (``retinanet_litv2_nano``, ``semantic_fpn_litv2_s``, ...) with ``cfg.fpn`` and,
for RetinaNet, ``cfg.hilo_head``. Detection is evaluated by pycocotools on rank 0 and the figures broadcast;
segmentation is evaluated on every process's shard and the confusion summed.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.v2.functional import normalize

from hilovit.data.coco import CocoDetection, collate_detection
from hilovit.data.transforms import IMAGENET_MEAN_STD
from hilovit.dense.data import detection_dataset, segmentation_dataset, split_directories
from hilovit.dense.metrics import (
    DetectionEvaluation,
    SemanticEvaluation,
    coco_evaluate,
    detections_to_coco,
)
from hilovit.models import create_model
from hilovit.train import checkpoint as ckpt
from hilovit.train import distributed as dist_env
from hilovit.train.config import refuse_options
from hilovit.train.loop import TrainData, Trainer
from hilovit.train.metrics import pixel_confusion

__all__ = ["DetectionTrainer", "SemanticTrainer", "evaluate_detection", "load_dense_model", "segmentation_input"]

IGNORE_INDEX = 255
_CLASSIFICATION_ONLY = dict(  # options that mean nothing for the dense tasks, with the value they must keep
    channels_last=False,
    mixup=0.0,
    cutmix=0.0,
    label_smoothing=0.0,
    auto_augment=None,
    re_prob=0.0,
    color_jitter=0.0,
    train_subset=None,
    test_subset=None,
)


def segmentation_input(images: Tensor) -> Tensor:
    """Images in [0, 1] normalised as the segmenter expects (ImageNet statistics; detectors normalise inside)."""
    mean, std = IMAGENET_MEAN_STD
    return normalize(images, list(mean), list(std))


@torch.inference_mode()
def evaluate_detection(
    model: nn.Module,
    dataset: CocoDetection,
    batch_size: int,
    device: torch.device,
    autocast: torch.autocast | None = None,
) -> dict[str, float]:
    """COCO box (and, for Mask R-CNN, mask) AP of ``model`` on ``dataset``; mask figures are prefixed ``mask_``."""
    was_training = model.training
    model.eval()
    outputs, image_ids = [], []
    loader = DataLoader(
        dataset, batch_size, collate_fn=collate_detection, generator=torch.Generator()
    )  # no global draw
    for images, targets in loader:
        with autocast or torch.autocast(device.type, enabled=False):
            predicted = model([image.to(device) for image in images])
        outputs += [
            {k: (v.float() if v.is_floating_point() else v).cpu() for k, v in output.items()} for output in predicted
        ]
        image_ids += [target["image_id"] for target in targets]
    model.train(was_training)
    results = detections_to_coco(outputs, image_ids, dataset.label_to_category)
    metrics = coco_evaluate(dataset.coco, results, "bbox")
    if outputs and "masks" in outputs[0]:
        metrics |= {f"mask_{k}": v for k, v in coco_evaluate(dataset.coco, results, "segm").items()}
    return metrics


class DenseTaskTrainer(Trainer):
    """What detection and segmentation share: the scene / tree-crown / directory data and the architecture."""

    def datasets(self, directories: dict[str, os.PathLike[str]]) -> tuple[Dataset, Dataset]:
        """The training and validation sets read from ``directories["train"]`` and ``["val"]``."""
        raise NotImplementedError

    def num_classes(self) -> int:
        """The ``num_classes`` the model builder takes."""
        return len(self.data.classes)

    def build_data(self) -> TrainData:
        cfg = self.cfg
        refuse_options(cfg, self.task, **_CLASSIFICATION_ONLY)
        train, val = self.datasets(split_directories(cfg.data, cfg.img_size, tuple(cfg.scene_images)))
        return TrainData(train, val, tuple(train.classes), 3, IMAGENET_MEAN_STD)

    def architecture(self) -> dict[str, Any]:
        """The builder's arguments; ``model_kwargs`` reach it too (e.g. ``hilo_rpn_head``, ``hilo_box_head``)."""
        cfg = self.cfg
        return {"model_name": cfg.model, "num_classes": self.num_classes(), "fpn": cfg.fpn, **cfg.model_kwargs}

    def example_input(self, batch: int) -> Tensor:
        return torch.rand(batch, 3, self.cfg.img_size, self.cfg.img_size, device=self.env.device)


class DetectionTrainer(DenseTaskTrainer):
    """Object detection: the detector's own summed losses; COCO AP on the validation set."""

    task = "detect"
    collate = staticmethod(collate_detection)

    def datasets(self, directories: dict[str, os.PathLike[str]]) -> tuple[Dataset, Dataset]:
        masks = self.cfg.model.startswith("maskrcnn")
        train = detection_dataset(directories["train"], True, masks, self.cfg.hflip)
        return train, detection_dataset(directories["val"], False, masks)

    def num_classes(self) -> int:
        return len(self.data.classes) - 1  # the detectors count object classes, background excluded

    def architecture(self) -> dict[str, Any]:
        size = self.cfg.img_size
        arch = super().architecture() | {"min_size": size, "max_size": size}
        return arch | ({"hilo_head": True} if self.cfg.hilo_head else {})  # the builders but RetinaNet reject it

    def prepare(self, batch: Any) -> tuple[Any, ...]:
        images, targets = batch
        device = self.env.device
        targets = [{k: v.to(device) if isinstance(v, Tensor) else v for k, v in t.items()} for t in targets]
        return [image.to(device) for image in images], targets

    def loss(self, batch: tuple[Any, ...]) -> Tensor:
        images, targets = batch
        return sum(self.train_model(images, targets).values())

    def evaluate(self) -> DetectionEvaluation:
        metrics = None
        if self.env.is_main:
            metrics = evaluate_detection(
                self.eval_model, self.data.test, self.world_batch, self.env.device, self.autocast
            )
        return DetectionEvaluation(dist_env.broadcast_object(metrics, self.env))


class SemanticTrainer(DenseTaskTrainer):
    """Semantic segmentation: pixel cross-entropy (label 255 ignored); mIoU and pixel accuracy."""

    task = "segment"

    def datasets(self, directories: dict[str, os.PathLike[str]]) -> tuple[Dataset, Dataset]:
        train = segmentation_dataset(directories["train"], True, self.cfg.hflip)
        return train, segmentation_dataset(directories["val"], False)

    def prepare(self, batch: Any) -> tuple[Any, ...]:
        images, labels = batch
        return segmentation_input(images.to(self.env.device)), labels.to(self.env.device)

    def loss(self, batch: tuple[Any, ...]) -> Tensor:
        images, labels = batch
        return F.cross_entropy(self.train_model(images), labels, ignore_index=IGNORE_INDEX)

    def evaluate(self) -> SemanticEvaluation:
        batches = ((segmentation_input(images), labels) for images, labels in self.test_batches())
        loss, confusion = pixel_confusion(
            self.eval_model, batches, len(self.data.classes), self.env, self.autocast, IGNORE_INDEX
        )
        return SemanticEvaluation(loss, confusion)


def load_dense_model(path: str | os.PathLike[str], device: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The trained network of a detection or segmentation checkpoint (its EMA weights when it kept them), in
    eval mode, and the checkpoint (``state["task"]``, ``state["classes"]``, ...)."""
    state = ckpt.load_train_checkpoint(path)
    task = ckpt.checkpoint_task(state)
    if task not in ("detect", "segment"):
        raise ckpt.TrainCheckpointError(
            f"{path} is a {task} checkpoint, not a detection or segmentation one; use `{ckpt.EVAL_COMMANDS[task]}`"
        )
    model = create_model(**state["arch"])
    model.load_state_dict(ckpt.trained_weights(state))
    return model.to(device).eval(), state
