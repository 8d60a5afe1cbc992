"""Training configuration: a YAML recipe plus ``key=value`` overrides, checked against :class:`TrainConfig`."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PRECISIONS = ("fp32", "bf16", "fp16")


class ConfigError(ValueError):
    """A recipe or override with an unknown key or a value of the wrong kind."""


@dataclass
class TrainConfig:
    """Every knob of a classification run; the defaults are the paper's ImageNet recipe (LITv2, DeiT-style).

    ``batch_size`` is the global batch of one optimizer step (all processes, all accumulation micro-batches);
    the learning rate is ``lr`` when given, else ``base_lr * batch_size / 512``.
    """

    # model
    model: str = "litv2_s"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    drop_path: float | None = None
    # data
    data: str | None = None
    data_kwargs: dict[str, Any] = field(default_factory=dict)  # options of the video/volume datasets
    img_size: int = 224
    train_subset: int | None = None
    test_subset: int | None = None
    workers: int = 0
    # augmentation and regularisation
    scale: list[float] = field(default_factory=lambda: [0.08, 1.0])
    hflip: float = 0.5
    color_jitter: float = 0.4
    auto_augment: str | None = "rand-m9-mstd0.5-inc1"
    re_prob: float = 0.25
    mixup: float = 0.8
    cutmix: float = 1.0
    label_smoothing: float = 0.1
    # optimisation
    epochs: int = 300
    batch_size: int = 1024
    accum_steps: int = 1
    opt: str = "adamw"
    lr: float | None = None
    base_lr: float = 5e-4
    min_lr: float = 1e-5
    warmup_lr: float = 1e-6
    warmup_epochs: float = 20
    sched: str = "cosine"
    weight_decay: float = 0.05
    clip_grad: float | None = 5.0
    offset_lr_scale: float = 0.01
    ema: bool = False
    ema_decay: float = 0.9998
    # execution
    device: str | None = None
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    seed: int = 0
    # run control and outputs
    output: str = "runs/train"
    resume: str | None = None
    checkpoint_every: int = 0
    max_steps: int | None = None
    time_budget: float | None = None
    progress: bool = True
    throughput_batch: int = 256

    @property
    def peak_lr(self) -> float:
        return self.lr if self.lr is not None else self.base_lr * self.batch_size / 512

    def validate(self) -> TrainConfig:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        for name in ("epochs", "batch_size", "accum_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.time_budget is not None and self.time_budget <= 0:
            raise ConfigError(f"time_budget must be a positive number of seconds, got {self.time_budget}")
        if len(self.scale) != 2:
            raise ConfigError(f"scale must be [min, max], got {self.scale}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def _check_keys(values: dict[str, Any], origin: str) -> None:
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"unknown config key(s) {', '.join(unknown)} in {origin}; known keys: {', '.join(_FIELDS)}")


def _coerce(key: str, value: Any) -> Any:
    """YAML 1.1 reads ``1e-3`` as a string: turn numbers meant for float fields into floats."""
    if value is None or not str(_FIELDS[key].type).startswith("float") or isinstance(value, bool):
        return value
    try:
        return float(value)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{key} must be a number, got {value!r}") from error


def parse_override(item: str) -> tuple[str, Any]:
    """``"key=value"`` -> ``(key, value)`` with the value parsed as YAML (``lr=1e-3``, ``scale=[0.5,1]``)."""
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {item!r} is not of the form key=value")
    _check_keys({key: None}, f"override {item!r}")
    return key, _coerce(key, yaml.safe_load(text))


def load_config(recipe: str | os.PathLike[str] | None = None, overrides: Iterable[str] = ()) -> TrainConfig:
    """The recipe's values (a YAML mapping of :class:`TrainConfig` keys), then the overrides, validated."""
    values: dict[str, Any] = {}
    if recipe is not None:
        path = Path(recipe)
        if not path.is_file():
            raise ConfigError(f"recipe {path} does not exist (expected a YAML file, e.g. configs/litv2_imagenet.yaml)")
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"recipe {path} must hold a mapping of config keys, got {type(loaded).__name__}")
        _check_keys(loaded, f"recipe {path}")
        values.update({key: _coerce(key, value) for key, value in loaded.items()})
    for item in overrides:
        key, value = parse_override(item)
        if key in ("model_kwargs", "data_kwargs") and isinstance(value, dict):
            value = {**values.get(key, {}), **value}
        values[key] = value
    try:
        return TrainConfig(**values).validate()
    except TypeError as error:
        raise ConfigError(f"bad config: {error}") from error
