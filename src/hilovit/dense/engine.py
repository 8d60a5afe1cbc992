"""Training and evaluation of the dense models: detection (COCO AP) and semantic segmentation (mIoU).

Same conventions as the classification loop (:mod:`hilovit.train.loop`): one atomic checkpoint ``last.pt`` with
the random states, so that ``resume`` continues exactly (the data order comes from
:class:`~hilovit.train.sampler.ResumableSampler`); an epoch count or a time budget; ``log.csv``, ``curves.png``
and ``report.json`` in the output directory.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.progress import Progress
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.v2.functional import normalize

from hilovit.data.coco import CocoDetection, collate_detection
from hilovit.data.transforms import IMAGENET_MEAN_STD
from hilovit.dense.data import default_image_size, detection_dataset, segmentation_dataset, split_directories
from hilovit.dense.detection import fasterrcnn_litv2, maskrcnn_litv2, retinanet_litv2
from hilovit.dense.metrics import coco_evaluate, confusion_matrix, detections_to_coco, segmentation_scores
from hilovit.dense.segmentation import semantic_fpn_litv2
from hilovit.train import checkpoint as ckpt
from hilovit.train.loop import progress_bar, seed_everything
from hilovit.train.optim import param_groups
from hilovit.train.report import plot_curves, write_history
from hilovit.train.sampler import ResumableSampler

TASKS = ("detect", "segment")
BUILDERS: dict[str, dict[str, Callable[..., nn.Module]]] = {
    "detect": {
        "retinanet_litv2": retinanet_litv2,
        "fasterrcnn_litv2": fasterrcnn_litv2,
        "maskrcnn_litv2": maskrcnn_litv2,
    },
    "segment": {"semantic_fpn_litv2": semantic_fpn_litv2},
}
HEADLINE = {"detect": ("AP", "AP50", "AP75"), "segment": ("mIoU", "pixel_accuracy")}
IGNORE_INDEX = 255


@dataclass
class DenseConfig:
    """One detection or segmentation run. ``model`` is ``<family>_<variant>``, e.g. ``retinanet_litv2_nano``;
    ``data`` None means the Fashion-MNIST scenes (``scene_images`` train/val canvases), else ``"treecrowns"`` or
    a directory (see :mod:`hilovit.dense.data`); ``img_size`` None is the dataset's default."""

    task: str = "detect"
    model: str = "retinanet_litv2_nano"
    fpn: str = "plain"
    hilo_head: bool = False
    data: str | None = None
    img_size: int | None = None
    scene_images: tuple[int, int] = (1000, 100)
    epochs: int = 12
    budget_s: float | None = None
    max_steps: int | None = None
    batch_size: int = 4
    lr: float = 2e-4
    weight_decay: float = 0.05
    warmup_steps: int = 50
    hflip: float = 0.5
    seed: int = 0
    workers: int = 0
    device: str = "cpu"
    output: str = "runs/dense"
    resume: str | None = None
    progress: bool = True


def build_model(arch: dict[str, Any]) -> nn.Module:
    """The network described by ``arch`` (the ``arch`` entry of a checkpoint)."""
    task, name = arch["task"], arch["model"]
    family, _, variant = name.rpartition("_")
    if family not in BUILDERS[task]:
        expected = ", ".join(f"{f}_<nano|tiny|s|m|b>" for f in BUILDERS[task])
        raise ValueError(f"unknown {task} model {name!r}; expected one of {expected}")
    if task == "segment":
        return semantic_fpn_litv2(variant, len(arch["classes"]), fpn=arch["fpn"])
    options = {"hilo_head": True} if arch["hilo_head"] else {}  # the builders reject it but for RetinaNet
    size = arch["img_size"]
    return BUILDERS[task][family](
        variant, len(arch["classes"]) - 1, fpn=arch["fpn"], min_size=size, max_size=size, **options
    )


def segmentation_input(images: Tensor) -> Tensor:
    mean, std = IMAGENET_MEAN_STD
    return normalize(images, list(mean), list(std))


@torch.inference_mode()
def evaluate_detection(model: nn.Module, dataset: CocoDetection, batch_size: int, device: torch.device) -> dict:
    """COCO box (and, for Mask R-CNN, mask) AP of ``model`` on ``dataset``; mask figures are prefixed ``mask_``."""
    was_training = model.training
    model.eval()
    outputs, image_ids = [], []
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate_detection)
    for images, targets in loader:
        for output in model([image.to(device) for image in images]):
            outputs.append({k: v.cpu() for k, v in output.items()})
        image_ids += [target["image_id"] for target in targets]
    model.train(was_training)
    results = detections_to_coco(outputs, image_ids, dataset.label_to_category)
    metrics = coco_evaluate(dataset.coco, results, "bbox")
    if outputs and "masks" in outputs[0]:
        metrics |= {f"mask_{k}": v for k, v in coco_evaluate(dataset.coco, results, "segm").items()}
    return metrics


@torch.inference_mode()
def evaluate_segmentation(model: nn.Module, dataset: Dataset, batch_size: int, device: torch.device) -> dict:
    """Cross-entropy, mIoU, pixel accuracy and per-class IoU of ``model`` on ``dataset``."""
    was_training = model.training
    model.eval()
    num_classes = len(dataset.classes)
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    loss_sum, pixels = 0.0, 0
    for images, labels in DataLoader(dataset, batch_size=batch_size):
        logits = model(segmentation_input(images.to(device))).cpu()
        loss_sum += float(F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX, reduction="sum"))
        pixels += int((labels != IGNORE_INDEX).sum())
        confusion += confusion_matrix(logits.argmax(1), labels, num_classes, IGNORE_INDEX)
    model.train(was_training)
    return {"loss": loss_sum / max(pixels, 1)} | segmentation_scores(confusion)


class DenseTrainer:
    """The state of one run; :meth:`fit` trains, checkpoints, evaluates and writes the outputs."""

    def __init__(self, cfg: DenseConfig) -> None:
        if cfg.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {cfg.task!r}")
        self.cfg, self.out, self.device = cfg, Path(cfg.output), torch.device(cfg.device)
        img_size = cfg.img_size or default_image_size(cfg.data)
        directories = split_directories(cfg.data, img_size, tuple(cfg.scene_images))
        if cfg.task == "detect":
            masks = cfg.model.startswith("maskrcnn")
            self.train_set = detection_dataset(directories["train"], True, masks, cfg.hflip)
            self.val_set = detection_dataset(directories["val"], False, masks)
        else:
            self.train_set = segmentation_dataset(directories["train"], True, cfg.hflip)
            self.val_set = segmentation_dataset(directories["val"], False)
        self.arch = {
            "task": cfg.task,
            "model": cfg.model,
            "fpn": cfg.fpn,
            "hilo_head": cfg.hilo_head,
            "classes": list(self.train_set.classes),
            "img_size": img_size,
        }
        seed_everything(cfg.seed)
        self.model = build_model(self.arch).to(self.device)
        self.optimizer = torch.optim.AdamW(param_groups(self.model, cfg.weight_decay, 1.0), lr=cfg.lr)
        warmup = max(cfg.warmup_steps, 1)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: min(1.0, (step + 1) / warmup))
        self.sampler = ResumableSampler(
            self.train_set, num_replicas=1, rank=0, shuffle=True, seed=cfg.seed, drop_last=True
        )
        self.steps_per_epoch = len(self.train_set) // cfg.batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"the training set ({len(self.train_set)} images) is smaller than one batch ({cfg.batch_size})"
            )
        self.epoch = self.step_in_epoch = self.step = 0
        self.train_time = 0.0
        self.history: list[dict[str, float]] = []
        if cfg.resume:
            self.load(Path(cfg.resume))

    # -- checkpoints ------------------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.out / "last.pt"

    def save(self) -> None:
        ckpt.save_atomic(
            {
                "format": ckpt.FORMAT,
                "arch": self.arch,
                "config": asdict(self.cfg),
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "epoch": self.epoch,
                "step_in_epoch": self.step_in_epoch,
                "step": self.step,
                "train_time": self.train_time,
                "history": self.history,
                "rng": ckpt.rng_state(),
            },
            self.checkpoint_path,
        )

    def load(self, path: Path) -> None:
        state = ckpt.load_train_checkpoint(path)
        ckpt.check_architecture(state["arch"], self.arch, path)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.step_in_epoch, self.step = state["epoch"], state["step_in_epoch"], state["step"]
        self.train_time, self.history = state["train_time"], state["history"]
        ckpt.set_rng_state(state["rng"])

    # -- training ---------------------------------------------------------------------------------------------
    def loss(self, batch: Any) -> Tensor:
        """The training loss of one batch: the detector's summed losses, or pixel cross-entropy."""
        if self.cfg.task == "detect":
            images, targets = batch
            targets = [{k: v.to(self.device) if isinstance(v, Tensor) else v for k, v in t.items()} for t in targets]
            return sum(self.model([image.to(self.device) for image in images], targets).values())
        images, labels = batch
        logits = self.model(segmentation_input(images.to(self.device)))
        return F.cross_entropy(logits, labels.to(self.device), ignore_index=IGNORE_INDEX)

    def evaluate(self) -> dict[str, Any]:
        evaluate = evaluate_detection if self.cfg.task == "detect" else evaluate_segmentation
        return evaluate(self.model, self.val_set, self.cfg.batch_size, self.device)

    def _stop_requested(self) -> bool:
        over_budget = self.cfg.budget_s is not None and self.train_time >= self.cfg.budget_s
        return over_budget or (self.cfg.max_steps is not None and self.step >= self.cfg.max_steps)

    def _loader(self) -> DataLoader:
        # Its own generator seeds the workers, so that starting (or resuming) an epoch draws nothing from the global
        # generators that the augmentation uses.
        return DataLoader(
            self.train_set,
            batch_size=self.cfg.batch_size,
            sampler=self.sampler,
            drop_last=True,
            num_workers=self.cfg.workers,
            collate_fn=collate_detection if self.cfg.task == "detect" else None,
            generator=torch.Generator().manual_seed(self.cfg.seed + 1000 * self.epoch),
        )

    def _train_epoch(self, progress: Progress) -> tuple[float, bool]:
        self.sampler.set_epoch(self.epoch, skip=self.step_in_epoch * self.cfg.batch_size)
        task = progress.add_task(
            f"epoch {self.epoch + 1}/{self.cfg.epochs}",
            total=self.steps_per_epoch,
            completed=self.step_in_epoch,
            info="",
        )
        self.model.train()
        loss_sum, count, stop = 0.0, 0, False
        started = time.perf_counter()
        for batch in self._loader():
            loss = self.loss(batch)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            loss_sum, count = loss_sum + float(loss.detach()), count + 1
            self.step, self.step_in_epoch = self.step + 1, self.step_in_epoch + 1
            self.train_time += time.perf_counter() - started
            progress.update(task, advance=1, info=f"loss {loss_sum / count:.4f}")
            stop = self._stop_requested()
            if stop:
                self.save()
                break
            started = time.perf_counter()
        progress.remove_task(task)
        return loss_sum / max(count, 1), stop

    def _log_epoch(self, train_loss: float) -> dict[str, Any]:
        metrics = self.evaluate()
        row = {
            "epoch": round(self.epoch + self.step_in_epoch / self.steps_per_epoch, 3),
            "step": self.step,
            "lr": float(f"{self.optimizer.param_groups[0]['lr']:.4g}"),
            "train_loss": round(train_loss, 5),
            "test_loss": round(metrics.get("loss", math.nan), 5),
            **{k: round(metrics[k], 3) for k in HEADLINE[self.cfg.task]},
            "train_time_s": round(self.train_time, 2),
        }
        self.history.append(row)
        write_history(self.history, self.out / "log.csv")
        if self.cfg.progress:
            print(", ".join(f"{k} {v}" for k, v in row.items()), flush=True)
        return metrics

    def fit(self) -> dict[str, Any]:
        """Train to ``epochs`` (or until ``max_steps`` / the time budget), evaluate and write the report."""
        self.out.mkdir(parents=True, exist_ok=True)
        metrics = None
        with progress_bar(self.cfg.progress) as progress:
            stop = self._stop_requested()
            while self.epoch < self.cfg.epochs and not stop:
                train_loss, stop = self._train_epoch(progress)
                if stop and self.step_in_epoch < self.steps_per_epoch:
                    metrics = self._log_epoch(train_loss)
                    break
                self.epoch, self.step_in_epoch = self.epoch + 1, 0
                metrics = self._log_epoch(train_loss)
                self.save()
        metrics = metrics or self.evaluate()
        report = {"steps": self.step, "train_time_s": round(self.train_time, 1), "metrics": metrics, "arch": self.arch}
        (self.out / "report.json").write_text(json.dumps(report, indent=2))
        if self.history:
            title = f"{self.cfg.model} ({self.cfg.fpn} FPN) on {self.cfg.data or 'scenes'}"
            plot_curves(self.history, self.out / "curves.png", title=title, metric=HEADLINE[self.cfg.task][0])
        return report


def load_model(path: str | Path, device: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The trained network of a checkpoint written by :class:`DenseTrainer`, in eval mode, and the checkpoint."""
    state = ckpt.load_train_checkpoint(path)
    if "task" not in state.get("arch", {}):
        raise ckpt.TrainCheckpointError(f"{path} is not a detection or segmentation checkpoint")
    model = build_model(state["arch"])
    model.load_state_dict(state["model"])
    return model.to(device).eval(), state
