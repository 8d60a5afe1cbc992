"""The one model registry: every model hilovit builds, listed and built by name (torchvision's ``get_model``).

* LITv2 classifiers (``litv2_*``) are timm models and are built through ``timm.create_model``, so timm's
  arguments (``pretrained_cfg_overlay``, ``features_only``, ...) work here too;
* the 3-D models (``hilo3d_video_nano``, ``hilo3d_unet_nano``) are registered here only: timm's tools and model
  tests take 2-D images, so they stay out of timm's global registry;
* the dense models, ``retinanet_litv2_<v>``, ``fasterrcnn_litv2_<v>``, ``maskrcnn_litv2_<v>``,
  ``semantic_fpn_litv2_<v>`` and the bare backbones ``litv2_<v>_backbone``, are registered by
  :mod:`hilovit.dense.builders` (imported on first use) with :func:`register_model`.

Builders take keyword arguments only; a keyword the model does not take, or an unknown name, is a ValueError that
names it and lists what is accepted (close matches first). A file that records its architecture (a hilovit
safetensors file or training checkpoint) rebuilds its model alone: :func:`create_model_from_file`.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import timm
from torch import nn

from hilovit.models.checkpoints import check_state_dict, read_arch, read_checkpoint
from hilovit.models.litv2 import LITv2
from hilovit.models.video import HiLoVideoNet, hilo3d_video_nano
from hilovit.models.volume import HiLoUNet3d, hilo3d_unet_nano
from hilovit.validation import unknown_name

__all__ = [
    "TASKS",
    "ModelEntry",
    "create_model",
    "create_model_from_file",
    "keyword_parameters",
    "list_models",
    "model_entry",
    "register_model",
]

Builder = Callable[..., nn.Module]

#: What registered models do; ``list_models(task=...)`` selects by it.
TASKS = ("classification", "video", "volume", "detect", "segment", "backbone")
#: Modules that register models when imported (they build on hilovit.models, so they cannot be imported here).
PROVIDERS = ("hilovit.dense.builders",)
#: timm families: name prefix -> (task, model class whose constructor keywords the builder takes).
TIMM_FAMILIES: dict[str, tuple[str, type[nn.Module]]] = {
    "litv2_": ("classification", LITv2),
}
# timm.create_model's own keywords, and the feature-extraction ones its model builders take.
_TIMM_KEYWORDS = frozenset(
    {name for name in inspect.signature(timm.create_model).parameters if name not in ("model_name", "kwargs")}
    | {"features_only", "out_indices"}
)


@dataclass(frozen=True)
class ModelEntry:
    """One registered model: its name, task, keyword-only builder and the keywords that builder takes."""

    name: str
    task: str
    build: Builder
    keywords: frozenset[str]


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, *, task: str, keywords: Iterable[str]) -> Callable[[Builder], Builder]:
    """Decorator: register a keyword-only builder as ``name``, for ``task``, taking ``keywords``."""

    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")

    def register(build: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelEntry(name, task, build, frozenset(keywords))
        return build

    return register


def keyword_parameters(target: Callable[..., Any]) -> set[str]:
    """The keywords ``target(...)`` takes by name; for a class, following ``**kwargs`` up the base classes that
    receive them."""
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    if not isinstance(target, type):
        return {p.name for p in inspect.signature(target).parameters.values() if p.kind in named}
    keywords: set[str] = set()
    for klass in target.__mro__:
        if "__init__" not in vars(klass) or klass is nn.Module:
            continue
        parameters = list(inspect.signature(klass.__init__).parameters.values())[1:]  # without self
        keywords |= {p.name for p in parameters if p.kind in named}
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            break
    return keywords


register_model("hilo3d_video_nano", task="video", keywords=keyword_parameters(HiLoVideoNet))(hilo3d_video_nano)
register_model("hilo3d_unet_nano", task="volume", keywords=keyword_parameters(HiLoUNet3d))(hilo3d_unet_nano)


def _timm_builder(name: str) -> Builder:
    def build(**kwargs: Any) -> nn.Module:
        return timm.create_model(name, **kwargs)

    build.__name__ = name
    return build


def _registry() -> dict[str, ModelEntry]:
    """Every entry, the timm families and the providers' models included."""
    for module in PROVIDERS:
        importlib.import_module(module)
    for prefix, (task, cls) in TIMM_FAMILIES.items():
        for name in timm.list_models(f"{prefix}*"):
            if name not in _REGISTRY:
                keywords = keyword_parameters(cls) | _TIMM_KEYWORDS
                _REGISTRY[name] = ModelEntry(name, task, _timm_builder(name), frozenset(keywords))
    return _REGISTRY


def list_models(pattern: str = "*", *, task: str | None = None) -> list[str]:
    """Sorted names of the registered models that match the shell-style ``pattern`` (and ``task``, one of
    :data:`TASKS`, when given)."""
    entries = _registry().values()
    return sorted(e.name for e in entries if fnmatch.fnmatchcase(e.name, pattern) and task in (None, e.task))


def model_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``; ValueError with the close matches when there is none."""
    registry = _registry()
    if name not in registry:
        raise ValueError(unknown_name("model", name, registry))
    return registry[name]


def create_model(model_name: str, **kwargs: Any) -> nn.Module:
    """Build the registered model ``model_name`` with ``kwargs`` (its constructor's keywords).

    Raises:
        ValueError: an unknown name or keyword (the message names it, the close matches and what is accepted),
            or a bad value (as the model's own checks report it).
    """
    entry = model_entry(model_name)
    unknown = sorted(set(kwargs) - entry.keywords)
    if unknown:
        raise ValueError(unknown_name(f"{model_name} keyword", unknown[0], entry.keywords))
    return entry.build(**kwargs)


def create_model_from_file(path: str | os.PathLike[str], **overrides: Any) -> nn.Module:
    """The model a hilovit file records (safetensors metadata or a training checkpoint's ``arch``), built with
    its recorded keywords (``overrides`` replace them) and loaded strictly from the file.

    Raises:
        FileNotFoundError: no such file.
        CheckpointFormatError: not a checkpoint (e.g. a text file).
        ValueError: the file records no architecture (build the model by name, then
            :func:`~hilovit.models.load_official`).
        CheckpointMismatchError: the weights do not fit the recorded model.
    """
    arch = read_arch(path)
    if arch is None:
        raise ValueError(
            f"'{path}' records no architecture (it was not written by hilovit with one): build the model by name, "
            "hilovit.models.create_model(name, ...), then load it with hilovit.models.load_official(model, path)"
        )
    model = create_model(**{**arch, **overrides})
    state = read_checkpoint(path)
    check_state_dict(state, model)
    model.load_state_dict(state, strict=True)
    return model
