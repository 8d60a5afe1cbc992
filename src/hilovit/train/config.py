"""Training configuration: a YAML recipe plus ``key=value`` overrides, checked against :class:`TrainConfig`."""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from hilovit.validation import FRACTION, MAPPING, NON_NEGATIVE, POSITIVE, PROBABILITY, Rule, each, interval, one_of

PRECISIONS = ("fp32", "bf16", "fp16")
TASKS = ("classification", "video", "volume", "detect", "segment")
FPNS = ("plain", "hilo")


class ConfigError(ValueError):
    """A recipe or override that is not YAML, has an unknown key, or a value of the wrong type or range."""


@dataclass
class TrainConfig:
    """Every knob of a run of any task; the defaults are the paper's ImageNet classification recipe (LITv2,
    DeiT-style), the bundled recipes (:func:`bundled_recipes`) set the other tasks' values.

    ``task`` picks the trainer (:data:`TASKS`): ``classification``, ``video``, ``volume``, ``detect``
    (RetinaNet / Faster / Mask R-CNN) or ``segment`` (Semantic FPN). ``fpn`` (``plain`` or ``hilo``),
    ``hilo_head`` (RetinaNet only) and ``scene_images`` (train and validation canvases of the generated
    Fashion-MNIST scenes) are the dense tasks' options.

    ``batch_size`` is the global batch of one optimizer step (all processes, all accumulation micro-batches);
    the learning rate is ``lr`` when given, else ``base_lr * batch_size / 512``.

    Checkpoints (``output/last.pt``, written atomically; a crash while writing keeps the previous one) are saved
    at every epoch end, when the run stops, every ``checkpoint_every`` optimizer steps (0: off) and every
    ``checkpoint_minutes`` minutes of wall-clock time (null: off; default 10), and on SIGINT / SIGTERM, after
    which the run exits 0 and prints the command that resumes it. A run refuses to write into a non-empty
    ``output`` unless ``exist_ok`` or ``resume`` is set. A non-finite loss stops the run before the optimizer
    step, keeping the last checkpoint.

    Reproducibility: a run bounded by ``epochs`` or ``max_steps`` resumed from any checkpoint ends with the same
    weights as an uninterrupted run (same number of processes). A run bounded by ``time_budget`` is not
    deterministic: where it stops, and its learning-rate schedule, depend on the machine's speed.
    """

    task: str = "classification"
    # model
    model: str = "litv2_s"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    drop_path: float | None = None
    fpn: str = "plain"
    hilo_head: bool = False
    # data
    data: str | None = None
    data_kwargs: dict[str, Any] = field(default_factory=dict)  # options of the video/volume datasets
    img_size: int = 224
    train_subset: int | None = None
    test_subset: int | None = None
    workers: int = 0
    scene_images: list[int] = field(default_factory=lambda: [1000, 100])
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
    exist_ok: bool = False
    resume: str | None = None
    checkpoint_every: int = 0
    checkpoint_minutes: float | None = 10.0
    max_steps: int | None = None
    time_budget: float | None = None
    progress: bool = True
    throughput_batch: int = 256

    @property
    def peak_lr(self) -> float:
        return self.lr if self.lr is not None else self.base_lr * self.batch_size / 512

    def validate(self) -> TrainConfig:
        """Check every field's type (from its annotation) and value (:data:`VALUE_RULES`); ConfigError naming
        the first bad key, its value and what it must be."""
        for name, type_rule in _TYPE_RULES.items():
            value = getattr(self, name)
            type_rule.check(name, value, ConfigError)
            if value is not None and name in VALUE_RULES:
                VALUE_RULES[name].check(name, value, ConfigError)
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_AT_LEAST_ONE = interval(1)
_FINITE_POSITIVE = Rule(lambda v: POSITIVE.accepts(v) and v != float("inf"), "a finite number > 0")
_SCALE = Rule(
    lambda v: each(interval(0, 1, low_open=True), length=2).accepts(v) and v[0] <= v[1],
    "[min, max] with 0 < min <= max <= 1",
)

#: The valid values of each field beyond its type (None, where the type allows it, is always valid).
VALUE_RULES: dict[str, Rule] = {
    "task": one_of(TASKS),
    "fpn": one_of(FPNS),
    "scene_images": each(_AT_LEAST_ONE, length=2),
    "drop_path": FRACTION,
    "img_size": _AT_LEAST_ONE,
    "train_subset": _AT_LEAST_ONE,
    "test_subset": _AT_LEAST_ONE,
    "workers": NON_NEGATIVE,
    "scale": _SCALE,
    "hflip": PROBABILITY,
    "color_jitter": NON_NEGATIVE,
    "re_prob": PROBABILITY,
    "mixup": NON_NEGATIVE,
    "cutmix": NON_NEGATIVE,
    "label_smoothing": FRACTION,
    "epochs": _AT_LEAST_ONE,
    "batch_size": _AT_LEAST_ONE,
    "accum_steps": _AT_LEAST_ONE,
    "lr": POSITIVE,
    "base_lr": POSITIVE,
    "min_lr": NON_NEGATIVE,
    "warmup_lr": NON_NEGATIVE,
    "warmup_epochs": NON_NEGATIVE,
    "weight_decay": NON_NEGATIVE,
    "clip_grad": NON_NEGATIVE,  # 0: no clipping
    "offset_lr_scale": NON_NEGATIVE,
    "ema_decay": interval(0, 1, low_open=True, high_open=True),
    "precision": one_of(PRECISIONS),
    "checkpoint_every": NON_NEGATIVE,  # 0: off
    "checkpoint_minutes": _FINITE_POSITIVE,
    "max_steps": _AT_LEAST_ONE,
    "time_budget": _FINITE_POSITIVE,
    "throughput_batch": _AT_LEAST_ONE,
}


def refuse_options(cfg: TrainConfig, task: str, **disallowed: Any) -> None:
    """ConfigError naming the first option that is set but means nothing (or something wrong) for ``task``;
    ``disallowed`` maps each such option to the value it must keep."""
    for key, off in disallowed.items():
        if getattr(cfg, key) != off:
            raise ConfigError(f"{key}={getattr(cfg, key)!r} is not supported for {task}; set {key}={off!r}")


def _type_rule(hint: Any) -> Rule:
    """The rule of a field annotation: ``int``, ``float``, ``bool``, ``str``, ``list[...]``, ``dict[...]``,
    ``None`` and unions of them."""
    if isinstance(hint, types.UnionType):
        rules = [_type_rule(option) for option in typing.get_args(hint)]
        return Rule(lambda v: any(r.accepts(v) for r in rules), " or ".join(r.expected for r in rules))
    origin = typing.get_origin(hint) or hint
    if origin is list:
        return each(_type_rule(typing.get_args(hint)[0]))
    simple = {
        int: interval(integer=True),
        float: interval(),
        bool: Rule(lambda v: isinstance(v, bool), "true or false"),
        str: Rule(lambda v: isinstance(v, str), "a string"),
        dict: MAPPING,
        type(None): Rule(lambda v: v is None, "null"),
    }
    return simple[origin]


_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
_TYPE_RULES = {name: _type_rule(hint) for name, hint in typing.get_type_hints(TrainConfig).items()}


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
    except (TypeError, ValueError):
        return value  # not a number: validate() says so, naming the key


def parse_yaml(text: str, origin: str) -> Any:
    """``text`` parsed as YAML; a ConfigError naming ``origin`` (and the line and column) when it is not YAML."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"{origin} is not valid YAML{where}: {problem}") from error


def parse_override(item: str) -> tuple[str, Any]:
    """``"key=value"`` -> ``(key, value)`` with the value parsed as YAML (``lr=1e-3``, ``scale=[0.5,1]``)."""
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {item!r} is not of the form key=value")
    _check_keys({key: None}, f"override {item!r}")
    return key, _coerce(key, parse_yaml(text, f"the value of override {item!r}"))


def bundled_recipes() -> list[str]:
    """The names of the recipes shipped in the package (``hilovit/configs/<name>.yaml``)."""
    folder = resources.files("hilovit") / "configs"
    return sorted(entry.name.removesuffix(".yaml") for entry in folder.iterdir() if entry.name.endswith(".yaml"))


def read_recipe(recipe: str | os.PathLike[str]) -> tuple[str, str]:
    """``(text, origin)`` of a recipe: a YAML file, else a bundled recipe by name (``litv2_nano_fmnist``)."""
    path = Path(recipe)
    if path.is_file():
        return path.read_text(), f"recipe {path}"
    name = path.name.removesuffix(".yaml")
    if str(recipe) in (name, f"{name}.yaml") and name in bundled_recipes():
        return (resources.files("hilovit") / "configs" / f"{name}.yaml").read_text(), f"recipe {name}"
    raise ConfigError(
        f"recipe {str(recipe)!r} is neither a YAML file nor a bundled recipe; bundled: {', '.join(bundled_recipes())}"
    )


def load_config(
    recipe: str | os.PathLike[str] | None = None,
    overrides: Iterable[str] = (),
    base: dict[str, Any] | None = None,
) -> TrainConfig:
    """The values of ``base`` (a saved config), else of the recipe (a YAML mapping of :class:`TrainConfig`
    keys: a file or a bundled recipe's name), then the overrides, validated."""
    values: dict[str, Any] = {}
    if base is not None:
        values.update(base)
    elif recipe is not None:
        text, origin = read_recipe(recipe)
        loaded = parse_yaml(text, origin) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{origin} must hold a mapping of config keys, got {type(loaded).__name__}")
        _check_keys(loaded, origin)
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
