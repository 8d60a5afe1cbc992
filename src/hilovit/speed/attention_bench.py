"""`hilovit bench attention`: the paper's single-layer comparison of attention mechanisms, on this device.

Defaults follow the paper: a 14 x 14 map, dim 768, 12 heads, batch 64. Every mechanism gets the same
input and is timed interleaved with the others (``hilovit.speed.time_interleaved``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import torch
from rich.console import Console
from torch import nn

from hilovit.attention.baselines import (
    GlobalAttention,
    SpatialReductionAttention,
    TimmPVTv2Attention,
    TimmSwinAttention,
    WindowAttention,
)
from hilovit.attention.hilo import HiLo
from hilovit.speed.measure import DTYPES, MODES, Case, Point, Row, autocast_runner, by_point, parameter_count
from hilovit.speed.report import describe
from hilovit.speed.results_files import Report
from hilovit.speed.sweep import sweep_report

# name -> (label, builder(settings)); HiLo, one candidate per alpha, is built by build_mechanisms.
PEERS: dict[str, tuple[str, Callable[[AttentionSettings], nn.Module]]] = {
    "msa": ("MSA (ViT)", lambda s: GlobalAttention(s.dim, s.num_heads)),
    "sra": ("SRA (PVT, r={s.sr_ratio})", lambda s: SpatialReductionAttention(s.dim, s.num_heads, s.sr_ratio)),
    "window": ("local window ({s.window})", lambda s: WindowAttention(s.dim, s.num_heads, s.window)),
    "shifted_window": (
        "shifted window ({s.window}, Swin mask)",
        lambda s: WindowAttention(s.dim, s.num_heads, s.window, shift_size=s.window // 2),
    ),
    "timm_swin": (
        "timm Swin WindowAttention (shifted)",
        lambda s: TimmSwinAttention(s.dim, s.num_heads, s.window, shift_size=s.window // 2),
    ),
    "timm_pvt_v2": (
        "timm PVTv2 Attention (r={s.sr_ratio})",
        lambda s: TimmPVTv2Attention(s.dim, s.num_heads, s.sr_ratio),
    ),
}
MECHANISMS = ("msa", "sra", "window", "shifted_window", "hilo", "timm_swin", "timm_pvt_v2")


@dataclass(frozen=True)
class AttentionSettings:
    """What `hilovit bench attention` measures; the defaults are the paper's single-layer setting."""

    dim: int = 768
    num_heads: int = 12
    sizes: tuple[int, ...] = (14,)
    batches: tuple[int, ...] = (64,)
    modes: tuple[str, ...] = ("forward",)
    mechanisms: tuple[str, ...] = tuple(MECHANISMS)
    alphas: tuple[float, ...] = (0.5, 0.9)
    hilo_window: int = 2
    window: int = 7
    sr_ratio: int = 2
    baseline: str = "msa"
    device: str = "cpu"
    dtype: str = "float32"
    threads: int | None = None
    warmup: int = 2
    repeats: int = 7
    breakdown: bool = False

    def __post_init__(self) -> None:
        unknown = [name for name in self.mechanisms if name not in MECHANISMS]
        if unknown:
            raise ValueError(f"unknown mechanism(s) {', '.join(unknown)}: expected any of {', '.join(MECHANISMS)}")
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r}: expected one of {', '.join(DTYPES)}")
        bad_modes = [mode for mode in self.modes if mode not in MODES]
        if bad_modes:
            raise ValueError(f"unknown mode(s) {', '.join(bad_modes)}: expected any of {', '.join(MODES)}")
        if self.dim % self.num_heads:
            raise ValueError(f"dim={self.dim} must be divisible by num_heads={self.num_heads}")
        small = [size for size in self.sizes if size < self.sr_ratio]
        if small and {"sra", "timm_pvt_v2"} & set(self.mechanisms):
            raise ValueError(f"size(s) {small} are smaller than SRA's reduction ratio {self.sr_ratio}")
        if self.baseline not in self.candidate_names():
            raise ValueError(f"baseline {self.baseline!r} is not measured: expected one of {self.candidate_names()}")

    def candidate_names(self) -> list[str]:
        names = []
        for mechanism in self.mechanisms:
            names += [hilo_name(alpha) for alpha in self.alphas] if mechanism == "hilo" else [mechanism]
        return names


def hilo_name(alpha: float) -> str:
    return f"hilo@{alpha:g}"


def build_mechanisms(settings: AttentionSettings) -> dict[str, tuple[str, nn.Module]]:
    """Candidate name -> (label, layer), in the order of `settings.mechanisms`, seeded for repeatability."""
    torch.manual_seed(0)
    layers: dict[str, tuple[str, nn.Module]] = {}
    for mechanism in settings.mechanisms:
        if mechanism != "hilo":
            label, build = PEERS[mechanism]
            layers[mechanism] = (label.format(s=settings), build(settings))
            continue
        for alpha in settings.alphas:
            layer = HiLo(settings.dim, settings.num_heads, qkv_bias=True, window_size=settings.hilo_window, alpha=alpha)
            layers[hilo_name(alpha)] = (f"HiLo (ws={settings.hilo_window}, alpha={alpha:g})", layer)
    return layers


def attention_cases(
    layers: dict[str, tuple[str, nn.Module]], dim: int, point: Point, device: torch.device, dtype: torch.dtype
) -> list[Case]:
    """The layers ready to run at `point` on one shared random input (which requires grad when training)."""
    H, W = point.height, point.width
    x = torch.randn(point.batch, H * W, dim, device=device, requires_grad=point.training)
    one = x[:1].detach()
    cases = []
    for name, (label, layer) in layers.items():
        layer.train(point.training)
        run = autocast_runner(partial(layer, x, H, W), device, dtype)
        count = autocast_runner(partial(layer, one, H, W), device, dtype)
        cases.append(Case(name, label, run, parameter_count(layer), layer.flops(H, W), count))
    return cases


def bench_attention(settings: AttentionSettings, console: Console | None = None) -> Report:
    """Measure every mechanism at every (mode, batch, size) point of `settings`."""
    device, dtype = torch.device(settings.device), DTYPES[settings.dtype]
    layers = {name: (label, layer.to(device)) for name, (label, layer) in build_mechanisms(settings).items()}
    return sweep_report(settings, lambda point: attention_cases(layers, settings.dim, point, device, dtype), console)


def hilo_summary(rows: Sequence[Row]) -> list[str]:
    """Per point: the fastest HiLo's throughput over each other mechanism's."""
    lines = []
    for point, group in by_point(rows).items():
        measured = [row for row in group if row.images_per_s is not None]
        hilo = [row for row in measured if row.name.startswith("hilo@")]
        if not hilo:
            continue
        best = max(hilo, key=lambda row: row.images_per_s)
        others = ", ".join(
            f"{row.label} {best.images_per_s / row.images_per_s:.2f}x"
            for row in measured
            if not row.name.startswith("hilo@")
        )
        lines.append(f"{describe(point)}: {best.label} throughput over {others}")
    return lines
