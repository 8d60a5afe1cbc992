"""ultralytics trainers that register hilovit's modules in every process that trains, DDP workers included.

For multi-GPU training ultralytics pickles the trainer's class and model into a file and starts fresh processes
(``ultralytics.utils.dist.generate_ddp_file``); each unpickles the class, which imports its module, and constructs
the trainer. These classes call :func:`hilovit.yolo.register` on construction, so a DDP worker gets the HiLo
modules, the patched YAML parser and the offline set-up before it builds, loads or validates a model. Pass one to
ultralytics' ``train``::

    YOLO(hilovit.yolo.model_yaml("yolov8-hilo", "n")).train(data=..., trainer=HiLoDetectionTrainer)
    RTDETR(hilovit.yolo.model_yaml("rtdetr-hilo-l")).train(data=..., trainer=HiLoRTDETRTrainer)

``hilovit yolo train`` picks the right one (:func:`trainer_for`).
"""

from __future__ import annotations

from typing import Any

from ultralytics.engine.model import Model
from ultralytics.engine.trainer import BaseTrainer
from ultralytics.models.rtdetr.train import RTDETRTrainer
from ultralytics.models.yolo.detect import DetectionTrainer

__all__ = ["HiLoDetectionTrainer", "HiLoRTDETRTrainer", "RegisteringTrainer", "trainer_for"]


class RegisteringTrainer:
    """Mixin for an ultralytics trainer: :func:`hilovit.yolo.register` before the trainer is set up."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        import hilovit.yolo

        hilovit.yolo.register()
        super().__init__(*args, **kwargs)


class HiLoDetectionTrainer(RegisteringTrainer, DetectionTrainer):
    """ultralytics' YOLO ``DetectionTrainer`` that registers hilovit's modules first (see the module doc)."""


class HiLoRTDETRTrainer(RegisteringTrainer, RTDETRTrainer):
    """ultralytics' ``RTDETRTrainer`` that registers hilovit's modules first (see the module doc)."""


def trainer_for(model: Model) -> type[BaseTrainer] | None:
    """The hilovit trainer for an ultralytics detection ``model`` (RT-DETR or YOLO); None for other tasks, which
    then train with ultralytics' own trainer (one process, or DDP workers without hilovit's modules)."""
    return _OURS.get(model.task_map[model.task]["trainer"])


_OURS: dict[type[BaseTrainer], type[BaseTrainer]] = {
    DetectionTrainer: HiLoDetectionTrainer,
    RTDETRTrainer: HiLoRTDETRTrainer,
}
