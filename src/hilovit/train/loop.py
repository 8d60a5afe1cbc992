"""The one training loop of every task: one process or many (torchrun), resumable to the same weights.

:class:`Trainer` trains a classifier; a task (``hilovit.train.tasks``) subclasses it and overrides the hooks
:meth:`~Trainer.build_data`, :meth:`~Trainer.architecture`, :meth:`~Trainer.prepare`, :meth:`~Trainer.loss`,
:meth:`~Trainer.evaluate`, :meth:`~Trainer.example_input` and :attr:`~Trainer.collate`. The loop, DDP, AMP, EMA,
gradient clipping and accumulation, checkpoints, resume, signals, the time budget, logs and reports exist here only.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from timm.utils import ModelEmaV3
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Subset

from hilovit.data import build_dataset, build_transform, dataset_mean_std
from hilovit.models import create_model, save_safetensors
from hilovit.models.registry import model_entry
from hilovit.speed import time_interleaved
from hilovit.train import checkpoint as ckpt
from hilovit.train import distributed as dist_env
from hilovit.train.config import ConfigError, TrainConfig
from hilovit.train.cpu_bf16 import keep_conv3d_in_float32
from hilovit.train.distributed import DistEnv
from hilovit.train.metrics import evaluate
from hilovit.train.optim import build_loss, build_mixup, build_optimizer, build_scheduler
from hilovit.train.report import (
    log_scalars,
    output_directory,
    plot_confusion,
    plot_curves,
    refuse_existing_run,
    tensorboard_writer,
    write_history,
)
from hilovit.train.sampler import ResumableSampler
from hilovit.train.signals import StopSignals

MAX_SKIPPED_STEPS = 5  # updates in a row skipped for non-finite gradients before the run stops


class Scores(Protocol):
    """What an evaluation of any task offers the loop: the logged figures, the headline one and, when the task
    has one, a confusion matrix (rows: true class, columns: predicted)."""

    headline: str
    confusion: Tensor | None

    def scalars(self) -> dict[str, float]: ...


class NonFiniteLossError(ValueError):
    """The loss became NaN or infinite: the run stopped before the optimizer step, keeping its last checkpoint."""


class RunInterrupted(Exception):
    """SIGINT / SIGTERM stopped the run after saving ``checkpoint`` at ``step``."""

    def __init__(self, checkpoint: Path, step: int, signal_name: str) -> None:
        super().__init__(f"{signal_name} at step {step}: checkpoint saved to {checkpoint}")
        self.checkpoint, self.step, self.signal_name = checkpoint, step, signal_name


@dataclass(frozen=True)
class TrainResult:
    """The outcome of :func:`train`: final test metrics, time spent training and inference throughput."""

    evaluation: Scores
    train_time_s: float
    steps: int
    epochs_done: float
    throughput: float  # inputs per second, eval mode, batch ``cfg.throughput_batch``
    output: Path

    def summary(self) -> dict[str, Any]:
        scores = {k: round(v, 2) for k, v in self.evaluation.scalars().items() if k != "test_loss"}
        return scores | {
            "train_time_s": round(self.train_time_s, 1),
            "steps": self.steps,
            "epochs": round(self.epochs_done, 2),
            "throughput_img_s": round(self.throughput, 1),
        }


@dataclass
class TrainData:
    """The datasets of a run and what the model and the checkpoint need to know about them."""

    train: Dataset
    test: Dataset
    classes: tuple[str, ...]
    channels: int
    normalization: tuple[tuple[float, ...], tuple[float, ...]]  # mean, std


def build_data(cfg: TrainConfig) -> TrainData:
    """Train and test splits with their transforms (statistics from the training images)."""
    train_set, test_set = build_dataset(cfg.data, "train"), build_dataset(cfg.data, "test")
    mean, std = dataset_mean_std(train_set)
    common = dict(img_size=cfg.img_size, mean=mean, std=std)
    train_set.transform = build_transform(
        train=True,
        scale=cfg.scale,
        hflip=cfg.hflip,
        color_jitter=cfg.color_jitter,
        auto_augment=cfg.auto_augment,
        re_prob=cfg.re_prob,
        **common,
    )
    test_set.transform = build_transform(train=False, **common)
    data = TrainData(train_set, test_set, tuple(train_set.classes), train_set.channels, (mean, std))
    if cfg.train_subset:
        data.train = Subset(train_set, range(min(cfg.train_subset, len(train_set))))
    if cfg.test_subset:
        data.test = Subset(test_set, range(min(cfg.test_subset, len(test_set))))
    return data


def check_model(name: str, task: str) -> None:
    """ConfigError unless ``name`` is a registered model of ``task`` (the registry lists the close matches)."""
    try:
        entry = model_entry(name)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if entry.task != task:
        raise ConfigError(f"model {name!r} is a {entry.task} model, not a {task} one; train it with its own command")


def model_kwargs(cfg: TrainConfig, num_classes: int, channels: int) -> dict[str, Any]:
    """The ``create_model`` arguments of a classification run; also what a resumed run must match."""
    kwargs = {"num_classes": num_classes, "in_chans": channels, **cfg.model_kwargs}
    if cfg.task == "classification":
        kwargs["img_size"] = cfg.img_size  # recorded with the weights, so that evaluation resizes alike
    if cfg.drop_path is not None:
        kwargs["drop_path_rate"] = cfg.drop_path
    return kwargs


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def progress_bar(enabled: bool) -> Progress:
    """The rich progress bar every training loop shows (disabled: prints nothing)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
        disable=not enabled,
    )


class Trainer:
    """Holds the state of one run; :meth:`fit` trains, checkpoints, evaluates and writes the outputs.

    Tasks subclass it and override the hooks; everything else is shared.
    """

    task = "classification"  # recorded in checkpoints: evaluation and resume refuse another task's
    collate: Callable[[list[Any]], Any] | None = None  # the DataLoader's collate_fn (None: torch's default)

    def __init__(self, cfg: TrainConfig, env: DistEnv) -> None:
        if cfg.task != self.task:
            raise ConfigError(f"task={cfg.task!r} does not match this trainer's task {self.task!r}")
        self.cfg, self.env = cfg, env
        self.out = Path(cfg.output)
        refuse_existing_run(self.out, allowed=cfg.exist_ok or bool(cfg.resume))
        dist_env.barrier(env)  # every process has looked before any writes
        if env.is_main:
            output_directory(self.out)
        self.data = self.build_data()
        self.world_batch = cfg.batch_size // env.world_size
        if self.world_batch * env.world_size != cfg.batch_size or self.world_batch % cfg.accum_steps:
            raise ValueError(
                f"batch_size {cfg.batch_size} must split evenly over {env.world_size} process(es) "
                f"x {cfg.accum_steps} accumulation step(s)"
            )
        seed_everything(cfg.seed)  # the same initial weights on every process
        check_model(cfg.model, self.task)
        self.arch = self.architecture()
        self.model = create_model(**self.arch).to(env.device)
        if env.device.type == "cpu" and cfg.precision == "bf16":
            keep_conv3d_in_float32(self.model)  # see hilovit.train.cpu_bf16
        if env.distributed and env.device.type == "cuda":
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.train_model: nn.Module = self.model
        if env.distributed:
            devices = [env.device.index] if env.device.type == "cuda" else None
            self.train_model = DistributedDataParallel(self.model, device_ids=devices)
        if cfg.compile:
            self.train_model = torch.compile(self.train_model)
        self.ema = ModelEmaV3(self.model, decay=cfg.ema_decay) if cfg.ema else None
        self.sampler = ResumableSampler(
            self.data.train, num_replicas=env.world_size, rank=env.rank, shuffle=True, seed=cfg.seed, drop_last=True
        )
        self.updates_per_epoch = self.sampler.num_samples // self.world_batch
        if self.updates_per_epoch == 0:
            raise ValueError(
                f"the training set ({len(self.data.train)} images) is smaller than one batch ({cfg.batch_size})"
            )
        self.optimizer = build_optimizer(self.model, cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg, self.updates_per_epoch)
        self.mixup = build_mixup(cfg, len(self.data.classes))
        self.criterion = build_loss(cfg, self.mixup)
        self.autocast = (
            torch.autocast(env.device.type, dtype=torch.bfloat16 if cfg.precision == "bf16" else torch.float16)
            if cfg.precision != "fp32"
            else None
        )
        self.scaler = torch.amp.GradScaler(env.device.type, enabled=cfg.precision == "fp16")
        self.epoch = self.step_in_epoch = self.step = 0
        self.saved_step: int | None = None
        self.skipped_steps = 0  # consecutive updates skipped for non-finite gradients
        self.saved_at = time.monotonic()
        self.train_time = 0.0
        self.history: list[dict[str, float]] = []
        self.signals = StopSignals()
        self.interrupted = False
        seed_everything(cfg.seed + env.rank)  # augmentation, mixup and dropout differ between processes
        if cfg.resume:
            self.load(Path(cfg.resume))

    # -- task hooks -------------------------------------------------------------------------------------------
    def build_data(self) -> TrainData:
        """The run's datasets (called once, before the model is built)."""
        return build_data(self.cfg)

    def architecture(self) -> dict[str, Any]:
        """``{"model_name": <registry name>, **keywords}``: what ``create_model`` builds, what the checkpoint and
        ``model.safetensors`` record and what a resumed run must match."""
        return {"model_name": self.cfg.model, **model_kwargs(self.cfg, len(self.data.classes), self.data.channels)}

    def prepare(self, batch: Any) -> tuple[Any, ...]:
        """A training batch from the loader, on the device and ready for :meth:`loss` (here: mixup applied)."""
        images, targets = (part.to(self.env.device, non_blocking=True) for part in batch)
        if self.mixup is not None:
            images, targets = self.mixup(images, targets)
        if self.cfg.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images, targets

    def loss(self, batch: tuple[Any, ...]) -> Tensor:
        """The loss of one (micro-)batch through :attr:`train_model` (under autocast when the run uses AMP)."""
        images, targets = batch
        return self.criterion(self.train_model(images), targets)

    def evaluate(self) -> Scores:
        """The test metrics of :attr:`eval_model`, the same on every process."""
        return evaluate(
            self.eval_model,
            self.test_batches(),
            len(self.data.classes),
            self.env,
            self.autocast,
            self.cfg.channels_last,
        )

    def example_input(self, batch: int) -> Any:
        """A batch shaped like the model's test inputs, for the throughput measurement."""
        return torch.randn(batch, self.data.channels, self.cfg.img_size, self.cfg.img_size, device=self.env.device)

    # -- checkpoints ------------------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.out / "last.pt"

    def _gathered_rng(self) -> list[dict[str, Any]]:
        states = [ckpt.rng_state()]
        if self.env.distributed:
            states = [None] * self.env.world_size
            torch.distributed.all_gather_object(states, ckpt.rng_state())
        return states

    def _sync_buffers(self) -> None:
        """The same BatchNorm statistics on every process (their average): evaluated and saved alike."""
        dist_env.average_buffers(self.model, self.env)
        if self.ema is not None:
            dist_env.average_buffers(self.ema.module, self.env)

    def save(self) -> None:
        """Write ``last.pt`` (rank 0; every process takes part). A failed write (a full disk, say) is a
        :class:`~hilovit.train.checkpoint.CheckpointWriteError`; the previous checkpoint stays as it was."""
        self._sync_buffers()
        rng = self._gathered_rng()
        if self.env.is_main:
            ckpt.save_atomic(
                {
                    "format": ckpt.FORMAT,
                    "task": self.task,
                    "arch": self.arch,
                    "classes": list(self.data.classes),
                    "normalization": self.data.normalization,
                    "config": self.cfg.to_dict(),
                    "model": self.model.state_dict(),
                    "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict(),
                    "scaler": self.scaler.state_dict(),
                    "ema": self.ema.state_dict() if self.ema else None,
                    "epoch": self.epoch,
                    "step_in_epoch": self.step_in_epoch,
                    "step": self.step,
                    "train_time": self.train_time,
                    "history": self.history,
                    "world_size": self.env.world_size,
                    "rng": rng,
                },
                self.checkpoint_path,
            )
        self.saved_step, self.saved_at = self.step, time.monotonic()

    def load_weights(self, state: dict[str, Any], path: Path) -> None:
        """The model (and EMA) weights of a training checkpoint, after checking its task and architecture."""
        ckpt.check_task(state, self.task, path)
        ckpt.check_architecture(state["arch"], self.arch, path)
        self.model.load_state_dict(state["model"])
        if self.ema is not None:
            if state["ema"] is None:
                raise ckpt.TrainCheckpointError(f"cannot resume from {path} with ema=true: it holds no EMA weights")
            self.ema.load_state_dict(state["ema"])

    def load(self, path: Path) -> None:
        """Continue the run saved at ``path``: weights, optimizer, schedule, position and random states."""
        state = ckpt.load_train_checkpoint(path)
        if state["world_size"] != self.env.world_size:
            raise ckpt.TrainCheckpointError(
                f"cannot resume from {path} with {self.env.world_size} process(es): it was written by "
                f"{state['world_size']} (the data order and random states are per process)"
            )
        self.load_weights(state, path)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step_in_epoch, self.step = state["epoch"], state["step_in_epoch"], state["step"]
        self.train_time, self.history = state["train_time"], state["history"]
        self.saved_step = self.step
        ckpt.set_rng_state(state["rng"][self.env.rank])

    # -- training ---------------------------------------------------------------------------------------------
    @property
    def total_updates(self) -> int:
        return self.cfg.epochs * self.updates_per_epoch

    def _schedule_position(self) -> int:
        """Updates done, or the share of the time budget spent when that is further: under a budget the
        schedule ends (cosine at its floor) when the budget does."""
        if self.cfg.time_budget is None:
            return self.step
        spent = round(self.train_time / self.cfg.time_budget * self.total_updates)
        return max(self.step, min(self.total_updates, spent))

    def _poll(self) -> tuple[bool, bool]:
        """(stop, save) after a step, decided alike on every process: the budget, a signal, ``max_steps`` and
        the periodic checkpoints (every ``checkpoint_every`` steps, every ``checkpoint_minutes``)."""
        cfg = self.cfg
        over_budget = cfg.time_budget is not None and self.train_time >= cfg.time_budget
        due = cfg.checkpoint_minutes is not None and time.monotonic() - self.saved_at >= 60 * cfg.checkpoint_minutes
        over_budget, signalled, due = dist_env.any_true(self.env, over_budget, self.signals.received is not None, due)
        self.interrupted = signalled
        stop = over_budget or signalled or (cfg.max_steps is not None and self.step >= cfg.max_steps)
        every = bool(cfg.checkpoint_every) and self.step % cfg.checkpoint_every == 0
        return stop, stop or due or every

    def _check_finite(self, loss: Tensor) -> None:
        """Stop the run on a NaN or infinite loss (on any process), before the optimizer step."""
        value = float(loss)
        (bad,) = dist_env.any_true(self.env, not math.isfinite(value))
        if bad:
            raise NonFiniteLossError(
                f"the loss is {value} at step {self.step + 1}: training stopped before the optimizer step and "
                f"{self._kept()}; lower the learning rate (lr) or set clip_grad"
            )

    def _kept(self) -> str:
        if self.saved_step is None:
            return "no checkpoint was written"
        return f"{self.checkpoint_path} keeps the weights of step {self.saved_step}"

    def _check_gradients(self, norm: Tensor) -> None:
        """Skip the update when the gradients are not finite (the same on every process after DDP's reduction),
        as fp16's grad scaler does; stop the run after :data:`MAX_SKIPPED_STEPS` such steps in a row."""
        if torch.isfinite(norm) or self.scaler.is_enabled():
            self.skipped_steps = 0
            return
        self.skipped_steps += 1
        for param in self.model.parameters():
            param.grad = None  # the optimizer leaves parameters without gradients as they are
        if self.skipped_steps >= MAX_SKIPPED_STEPS:
            raise NonFiniteLossError(
                f"the gradients were not finite in {self.skipped_steps} steps in a row (up to step {self.step + 1}): "
                f"training stopped and {self._kept()}; lower the learning rate (lr), set clip_grad or train without "
                "--amp"
            )

    def _train_step(self, batch: Any) -> Tensor:
        batch = self.prepare(batch)
        accum = self.cfg.accum_steps
        total = torch.zeros((), device=self.env.device)
        for j in range(accum):  # micro-batch j takes every accum-th sample: the split DDP makes over processes
            last = j == accum - 1
            sync = nullcontext() if last or not self.env.distributed else self.train_model.no_sync()
            with sync, self.autocast or nullcontext():
                loss = self.loss(tuple(part[j::accum] for part in batch)) / accum
            self.scaler.scale(loss).backward()
            total += loss.detach().float()
        self._check_finite(total)
        self.scaler.unscale_(self.optimizer)  # a no-op but under fp16
        if self.cfg.clip_grad:
            norm = nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_grad)
        else:
            norm = nn.utils.get_total_norm([p.grad for p in self.model.parameters() if p.grad is not None])
        self._check_gradients(norm)
        self.scaler.step(self.optimizer)  # fp16: skipped when the gradients are not finite
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model, step=self.step)
        return total

    def _loader(self, dataset: Dataset, sampler: Any = None, train: bool = False) -> DataLoader:
        # The loader's own generator seeds its workers, so that starting an epoch (or resuming one) draws nothing
        # from the global generators that augmentation, mixup and dropout use.
        generator = torch.Generator().manual_seed(self.cfg.seed + 1000 * self.epoch + self.env.rank)
        return DataLoader(
            dataset,
            batch_size=self.world_batch,
            sampler=sampler,
            drop_last=train,
            num_workers=self.cfg.workers,
            pin_memory=self.env.device.type == "cuda",
            generator=generator,
            collate_fn=self.collate,
        )

    @property
    def eval_model(self) -> nn.Module:
        """The weights evaluated and saved: the EMA ones when the run keeps an average."""
        return self.ema.module if self.ema is not None else self.model

    def test_batches(self) -> DataLoader:
        """This process's shard of the test set."""
        return self._loader(Subset(self.data.test, range(self.env.rank, len(self.data.test), self.env.world_size)))

    def _train_epoch(self, progress: Progress) -> tuple[float, bool]:
        """Train until the epoch ends or a stop is requested; the mean loss and whether to stop."""
        self.sampler.set_epoch(self.epoch, skip=self.step_in_epoch * self.world_batch)
        task = progress.add_task(
            f"epoch {self.epoch + 1}/{self.cfg.epochs}",
            total=self.updates_per_epoch,
            completed=self.step_in_epoch,
            info="",
        )
        self.train_model.train()
        loss_sum, count, stop = torch.zeros((), device=self.env.device), 0, False
        started = time.perf_counter()
        for batch in self._loader(self.data.train, self.sampler, train=True):
            loss_sum += self._train_step(batch)
            count += 1
            self.step += 1
            self.step_in_epoch += 1
            self.train_time += time.perf_counter() - started
            self.scheduler.step_update(self._schedule_position())
            progress.update(task, advance=1, info=f"loss {float(loss_sum) / count:.4f}")
            stop, save = self._poll()
            if save:
                self.save()
            if stop:
                break
            started = time.perf_counter()
        progress.remove_task(task)
        loss = dist_env.all_sum(loss_sum, self.env).item() / max(count, 1) / self.env.world_size
        return loss, stop

    def _log_epoch(self, train_loss: float) -> Scores:
        self._sync_buffers()
        evaluation = self.evaluate()
        self.history.append(
            {
                "epoch": round(self.epoch + self.step_in_epoch / self.updates_per_epoch, 3),
                "step": self.step,
                "lr": float(f"{self.optimizer.param_groups[0]['lr']:.4g}"),
                "train_loss": round(train_loss, 5),
                **{k: round(v, 5 if k.endswith("loss") else 3) for k, v in evaluation.scalars().items()},
                "train_time_s": round(self.train_time, 2),
            }
        )
        if self.env.is_main:
            write_history(self.history, self.out / "log.csv")
            log_scalars(self.tensorboard, self.history[-1])
            if self.cfg.progress:
                print(", ".join(f"{k} {v}" for k, v in self.history[-1].items()), flush=True)
        return evaluation

    def fit(self) -> TrainResult:
        """Train to ``cfg.epochs`` (or until ``max_steps`` / the time budget), then evaluate and report.

        Raises:
            RunInterrupted: SIGINT or SIGTERM stopped the run (after saving a checkpoint).
            NonFiniteLossError: the loss became NaN or infinite.
        """
        self.tensorboard = tensorboard_writer(self.out / "tensorboard") if self.env.is_main else None
        evaluation = None
        with self.signals, progress_bar(self.cfg.progress and self.env.is_main) as progress:
            stop = self._poll()[0]
            while self.epoch < self.cfg.epochs and not stop:
                train_loss, stop = self._train_epoch(progress)
                if self.interrupted:
                    raise RunInterrupted(self.checkpoint_path, self.step, self.signals.received or "a signal")
                if stop and self.step_in_epoch < self.updates_per_epoch:
                    evaluation = self._log_epoch(train_loss)
                    break
                self.epoch, self.step_in_epoch = self.epoch + 1, 0
                evaluation = self._log_epoch(train_loss)
                self.save()
        if evaluation is None:
            self._sync_buffers()
            evaluation = self.evaluate()
        return self._finish(evaluation)

    def _finish(self, evaluation: Scores) -> TrainResult:
        model = self.eval_model
        throughput = (
            measure_throughput({"model": model}, self.example_input(self.cfg.throughput_batch))["model"]
            if self.env.is_main
            else 0.0
        )
        result = TrainResult(
            evaluation,
            self.train_time,
            self.step,
            self.epoch + self.step_in_epoch / self.updates_per_epoch,
            throughput,
            self.out,
        )
        if self.env.is_main:
            save_safetensors(model, self.out / "model.safetensors", arch=self.arch)
            if self.history:
                title = f"{self.cfg.model} on {self.cfg.data or 'its default data'}"
                plot_curves(self.history, self.out / "curves.png", title=title, metric=evaluation.headline)
            if evaluation.confusion is not None:
                plot_confusion(evaluation.confusion, self.data.classes, self.out / "confusion.png")
            (self.out / "report.json").write_text(json.dumps(result.summary() | {"arch": self.arch}, indent=2))
        return result


def measure_throughput(models: Mapping[str, nn.Module], images: Tensor, repeats: int = 5) -> dict[str, float]:
    """Inference inputs per second of each model on the batch ``images`` (eval mode), timed in one interleaved
    run (:func:`hilovit.speed.time_interleaved`) so that all see the same machine state."""
    batch, device = images.shape[0], images.device
    modes = {name: model.training for name, model in models.items()}
    for model in models.values():
        model.eval()
    calls = {name: (lambda m=model: m(images)) for name, model in models.items()}
    timings = time_interleaved(calls, device=device, warmup=1, repeats=repeats)
    for name, model in models.items():
        model.train(modes[name])
    return {name: batch / timing.median_s for name, timing in timings.items()}
