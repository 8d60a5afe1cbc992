"""`hilovit bench models`: LITv2 against any timm model, same batch, resolution and dtype, timed interleaved.

Nothing is downloaded: every model is built with random weights. FLOPs are the paper's count (LITv2's own
``model.flops``) where a model has one; the FLOP counter's count is shown beside it for every model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

import timm
import torch
from rich.console import Console
from torch import nn

from hilovit.models import create_model, list_models
from hilovit.speed.measure import DTYPES, MODES, Case, Point, autocast_runner, parameter_count
from hilovit.speed.results_files import Report
from hilovit.speed.sweep import sweep_report
from hilovit.validation import unknown_name

MODEL_SETS = {
    "s": ("litv2_s", "swin_tiny_patch4_window7_224", "pvt_v2_b2", "convnext_tiny", "resnet50"),
    "m": ("litv2_m", "swin_small_patch4_window7_224", "convnext_small"),
    "b": ("litv2_b", "swin_base_patch4_window7_224", "convnext_base"),
}
LABELS = {
    "litv2_s": "LITv2-S",
    "litv2_m": "LITv2-M",
    "litv2_b": "LITv2-B",
    "swin_tiny_patch4_window7_224": "Swin-T",
    "swin_small_patch4_window7_224": "Swin-S",
    "swin_base_patch4_window7_224": "Swin-B",
    "pvt_v2_b2": "PVTv2-B2",
    "convnext_tiny": "ConvNeXt-T",
    "convnext_small": "ConvNeXt-S",
    "convnext_base": "ConvNeXt-B",
    "resnet50": "ResNet-50",
}


def resolve_models(spec: str, extra: tuple[str, ...] = ()) -> list[str]:
    """``s,m`` / ``all`` / hilovit classifier or timm names (and the names in `extra`) -> ordered, deduplicated
    model names."""
    names: list[str] = []
    hilovit_names = list_models(task="classification")
    for item in (part.strip() for part in spec.split(",")):
        expanded = [n for key in MODEL_SETS for n in MODEL_SETS[key]] if item == "all" else MODEL_SETS.get(item)
        for name in expanded or (item,):
            if name not in extra and name not in hilovit_names and name not in timm.list_models(name):
                known = [*MODEL_SETS, "all", *extra, *hilovit_names]
                raise ValueError(f"{unknown_name('model', name, known)}; or any timm model (timm.list_models())")
            if name not in names:
                names.append(name)
    return names


def default_baseline(names: list[str] | tuple[str, ...]) -> str:
    """Swin-T, the paper's reference, when it is measured; else the first model."""
    return "swin_tiny_patch4_window7_224" if "swin_tiny_patch4_window7_224" in names else names[0]


@dataclass(frozen=True)
class ModelSettings:
    """What `hilovit bench models` measures."""

    models: tuple[str, ...] = MODEL_SETS["s"]
    sizes: tuple[int, ...] = (224,)
    batches: tuple[int, ...] = (32,)
    modes: tuple[str, ...] = ("forward",)
    baseline: str = "swin_tiny_patch4_window7_224"
    device: str = "cpu"
    dtype: str = "float32"
    threads: int | None = None
    channels_last: bool = False
    compile: bool = False
    warmup: int = 2
    repeats: int = 7
    breakdown: bool = False

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r}: expected one of {', '.join(DTYPES)}")
        bad_modes = [mode for mode in self.modes if mode not in MODES]
        if bad_modes:
            raise ValueError(f"unknown mode(s) {', '.join(bad_modes)}: expected any of {', '.join(MODES)}")
        if self.baseline not in self.models:
            raise ValueError(f"baseline {self.baseline!r} is not measured: expected one of {list(self.models)}")


def model_label(name: str) -> str:
    return LABELS.get(name, name)


def build_models(names: list[str] | tuple[str, ...]) -> dict[str, tuple[str, nn.Module]]:
    """Name -> (label, hilovit or timm model with random weights, seeded), in order."""
    models = {}
    for name in names:
        torch.manual_seed(0)
        model = create_model(name) if name in list_models() else timm.create_model(name, pretrained=False)
        models[name] = (model_label(name), model)
    return models


def analytic_macs(model: nn.Module, height: int, width: int) -> int | None:
    """The model's own count (LITv2's ``flops``, as the paper counts), None when it has none."""
    flops = getattr(model, "flops", None)
    return flops(height, width) if callable(flops) else None


def model_cases(
    models: Mapping[str, tuple[str, nn.Module, nn.Module]],
    point: Point,
    device: torch.device,
    dtype: torch.dtype,
    channels_last: bool,
) -> list[Case]:
    """The models (label, module, callable: compiled or the module) ready to run at `point` on one input."""
    x = torch.randn(point.batch, 3, point.height, point.width, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    cases = []
    for name, (label, model, run) in models.items():
        model.train(point.training)
        cases.append(
            Case(
                name,
                label,
                autocast_runner(partial(run, x), device, dtype),
                parameter_count(model),
                analytic_macs(model, point.height, point.width),
                autocast_runner(partial(model, x[:1]), device, dtype),
            )
        )
    return cases


def bench_models(
    settings: ModelSettings,
    console: Console | None = None,
    models: Mapping[str, tuple[str, nn.Module]] | None = None,
) -> Report:
    """Measure the models of `settings` (or the prebuilt `models`, name -> (label, module)) at every point."""
    device, dtype = torch.device(settings.device), DTYPES[settings.dtype]
    models = build_models(settings.models) if models is None else models
    ready = {}
    for name, (label, model) in models.items():
        model = model.to(device)
        if settings.channels_last:
            model = model.to(memory_format=torch.channels_last)
        ready[name] = (label, model, torch.compile(model) if settings.compile else model)
    return sweep_report(
        settings, lambda point: model_cases(ready, point, device, dtype, settings.channels_last), console
    )
