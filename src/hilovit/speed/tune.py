"""`hilovit tune`: measure HiLo configurations of a LITv2 model (or of one HiLo layer) on this device.

The sweep covers the Lo-Fi share ``alpha`` and the window of every HiLo stage, and optionally the
implementation choices (SDPA backend, channels-last, ``torch.compile``). All candidates are timed
interleaved at one input size; the result is the measured speed/FLOPs Pareto front and the fastest
configuration within the constraints, written as plain builder keyword arguments:
``hilovit.models.create_model(name, **json.load(open(path)))`` (or ``HiLo(dim, heads, **kwargs)`` for a layer).

The LITv2 builders take one ``alpha`` for all stages and a window per stage (``local_ws``), so that is
what is tuned.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
from rich.console import Console
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from hilovit.attention.hilo import HiLo
from hilovit.models.litv2 import LITv2Trunk, litv2_config
from hilovit.models.registry import create_model, list_models
from hilovit.speed.environment import environment, fixed_threads
from hilovit.speed.measure import DTYPES, MODES, Case, Point, Row, autocast_runner, measure_point, parameter_count
from hilovit.speed.results_files import Report
from hilovit.validation import unknown_name

SDPA_BACKENDS = {
    "flash": SDPBackend.FLASH_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
    "cudnn": SDPBackend.CUDNN_ATTENTION,
    "math": SDPBackend.MATH,
}
# The stages that hold HiLo, and their windows, in the builders' defaults.
DEFAULT_LOCAL_WS: tuple[int, ...] = tuple(inspect.signature(LITv2Trunk.__init__).parameters["local_ws"].default)


@dataclass(frozen=True)
class TuneConfig:
    """One candidate: builder keyword arguments plus how it is run."""

    kwargs: dict[str, object] = field(hash=False)
    hifi_heads: int | None  # fewest Hi-Fi heads over the stages with a window > 1 (None: no such stage)
    channels_last: bool = False
    compile: bool = False
    sdpa: str | None = None

    @property
    def name(self) -> str:
        parts = [f"{key}={value}" for key, value in self.kwargs.items()]
        parts += [flag for flag, on in (("channels_last", self.channels_last), ("compile", self.compile)) if on]
        if self.sdpa:
            parts.append(f"sdpa={self.sdpa}")
        return " ".join(parts)


@dataclass(frozen=True)
class TuneSettings:
    """What `hilovit tune` sweeps and the constraints on the choice.

    Args:
        target: a LITv2 model name (``litv2_s``, ...) or ``hilo`` for one HiLo layer of `dim`/`num_heads`.
        alphas: Lo-Fi shares to try.
        windows: windows to try for every HiLo stage (``1``: global attention; the layer needs >= 1 too).
        min_hifi_heads: every stage with a window > 1 keeps at least this many Hi-Fi heads.
        max_gmacs: upper bound on multiply-accumulates per image (None: no bound).
    """

    target: str = "litv2_s"
    size: int = 224
    batch: int = 8
    mode: str = "forward"
    dim: int = 768
    num_heads: int = 12
    alphas: tuple[float, ...] = (0.5, 0.75, 0.9, 1.0)
    windows: tuple[int, ...] = (1, 2)
    sdpa: tuple[str, ...] = ()
    channels_last: tuple[bool, ...] = (False,)
    compile: tuple[bool, ...] = (False,)
    min_hifi_heads: int = 0
    max_gmacs: float | None = None
    device: str = "cpu"
    dtype: str = "float32"
    threads: int | None = None
    warmup: int = 2
    repeats: int = 5

    def __post_init__(self) -> None:
        targets = ["hilo", *list_models("litv2_*", task="classification")]
        if self.target not in targets:
            raise ValueError(unknown_name("tune target", self.target, targets))
        unknown = [name for name in self.sdpa if name not in SDPA_BACKENDS]
        if unknown:
            raise ValueError(f"unknown SDPA backend(s) {unknown}: expected any of {', '.join(SDPA_BACKENDS)}")
        if self.dtype not in DTYPES or self.mode not in MODES:
            raise ValueError(
                f"expected dtype in {list(DTYPES)} and mode in {list(MODES)}, got {self.dtype}, {self.mode}"
            )
        if not self.alphas or any(not 0 <= a <= 1 for a in self.alphas):
            raise ValueError(f"alphas must be in [0, 1], got {self.alphas}")
        if not self.windows or min(self.windows) < 1:
            raise ValueError(f"windows must be >= 1, got {self.windows}")


def _lofi_heads(heads: int, window: int, alpha: float) -> int:
    return heads if window == 1 else int(heads * alpha)


def hilo_configs(settings: TuneSettings) -> list[TuneConfig]:
    """Every distinct structure (configurations that build the same heads are tried once), times the
    implementation choices."""
    if settings.target == "hilo":
        stage_heads, base = [settings.num_heads], None
    else:
        heads = litv2_config(settings.target)["num_heads"]
        base = DEFAULT_LOCAL_WS
        stage_heads = [heads[i] for i, window in enumerate(base) if window > 0]
    structures: dict[tuple, dict[str, object]] = {}
    for alpha, windows in itertools.product(
        settings.alphas, itertools.product(settings.windows, repeat=len(stage_heads))
    ):
        key = tuple((w, _lofi_heads(h, w, alpha)) for h, w in zip(stage_heads, windows, strict=True))
        if base is None:
            kwargs: dict[str, object] = {"window_size": windows[0], "alpha": alpha}
        else:
            chosen = iter(windows)
            kwargs = {"alpha": alpha, "local_ws": [next(chosen) if w > 0 else 0 for w in base]}
        hifi = [h - lofi for h, (w, lofi) in zip(stage_heads, key, strict=True) if w > 1]
        structures.setdefault(key, {"kwargs": kwargs, "hifi_heads": min(hifi) if hifi else None})
    return [
        TuneConfig(**structure, channels_last=cl, compile=compiled, sdpa=sdpa)
        for structure in structures.values()
        for cl, compiled, sdpa in itertools.product(settings.channels_last, settings.compile, settings.sdpa or (None,))
    ]


def _build(settings: TuneSettings, config: TuneConfig) -> nn.Module:
    torch.manual_seed(0)
    if settings.target == "hilo":
        return HiLo(settings.dim, settings.num_heads, qkv_bias=True, **config.kwargs)  # type: ignore[arg-type]
    return create_model(settings.target, **config.kwargs)


def _forward(settings: TuneSettings, module: Callable[..., Tensor], x: Tensor) -> Callable[[], Tensor]:
    """`module` on `x`: an image batch for a model, tokens of a ``size x size`` map for a layer."""
    return partial(module, x, settings.size, settings.size) if settings.target == "hilo" else partial(module, x)


def _with_backend(call: Callable[[], Tensor], sdpa: str | None) -> Callable[[], Tensor]:
    """`call` with SDPA restricted to one backend (all backends allowed when `sdpa` is None)."""
    if sdpa is None:
        return call

    def forward() -> Tensor:
        with sdpa_kernel(SDPA_BACKENDS[sdpa]):
            return call()

    return forward


def tune_cases(settings: TuneSettings, configs: Sequence[TuneConfig], point: Point) -> list[Case]:
    """Each configuration built (seeded), on one shared input, run as it says (compiled, channels-last, SDPA)."""
    device, dtype = torch.device(settings.device), DTYPES[settings.dtype]
    size = settings.size
    if settings.target == "hilo":
        x = torch.randn(point.batch, size * size, settings.dim, device=device, requires_grad=point.training)
    else:
        x = torch.randn(point.batch, 3, size, size, device=device)
    cases = []
    for config in configs:
        module = _build(settings, config).to(device).train(point.training)
        inputs = x
        if config.channels_last and x.dim() == 4:
            module = module.to(memory_format=torch.channels_last)
            inputs = x.contiguous(memory_format=torch.channels_last)
        compiled = torch.compile(module) if config.compile else module
        run = _with_backend(_forward(settings, compiled, inputs), config.sdpa)
        count = _forward(settings, module, inputs[:1].detach())
        flops = module.flops(size, size)
        cases.append(
            Case(
                config.name,
                config.name,
                autocast_runner(run, device, dtype),
                parameter_count(module),
                flops,
                autocast_runner(count, device, dtype),
            )
        )
    return cases


def pareto_front(rows: Sequence[Row]) -> list[Row]:
    """Measured rows that no other row beats on both throughput (higher) and MACs (lower), by MACs."""
    measured = [row for row in rows if row.images_per_s is not None and row.gmacs is not None]
    front = [
        row
        for row in measured
        if not any(
            other.images_per_s >= row.images_per_s
            and other.gmacs <= row.gmacs
            and (other.images_per_s > row.images_per_s or other.gmacs < row.gmacs)
            for other in measured
        )
    ]
    return sorted(front, key=lambda row: row.gmacs)


@dataclass(frozen=True)
class TuneResult:
    report: Report
    configs: dict[str, TuneConfig]
    front: list[Row]
    chosen: TuneConfig | None


def allowed(settings: TuneSettings, config: TuneConfig, row: Row) -> bool:
    """Whether a measured configuration meets the constraints (Hi-Fi heads, FLOPs cap)."""
    if row.images_per_s is None:
        return False
    if settings.min_hifi_heads > 0 and (config.hifi_heads or 0) < settings.min_hifi_heads:
        return False
    return settings.max_gmacs is None or (row.gmacs is not None and row.gmacs <= settings.max_gmacs)


def default_name(settings: TuneSettings, configs: dict[str, TuneConfig]) -> str:
    """The configuration the builders use by default (alpha 0.9, their windows), the ratios' reference;
    the first configuration when it was not swept."""
    default = {"alpha": 0.9, "local_ws": list(DEFAULT_LOCAL_WS)}
    if settings.target == "hilo":
        default = {"window_size": 2, "alpha": 0.9}
    plain = [name for name, c in configs.items() if not (c.channels_last or c.compile or c.sdpa)]
    return next((name for name in plain if configs[name].kwargs == default), next(iter(configs)))


def tune(settings: TuneSettings, console: Console | None = None) -> TuneResult:
    """Measure every configuration interleaved at one point; the fastest allowed one is `chosen`."""
    configs = {config.name: config for config in hilo_configs(settings)}
    point = Point(settings.mode, settings.batch, settings.size, settings.size)
    device = torch.device(settings.device)
    baseline = default_name(settings, configs)
    with fixed_threads(settings.threads):
        env = environment(device, DTYPES[settings.dtype])
        if console is not None:
            console.print(f"measuring {len(configs)} configurations interleaved ...", style="dim")
        cases = tune_cases(settings, list(configs.values()), point)
        rows = measure_point(
            point, cases, device=device, baseline=baseline, warmup=settings.warmup, repeats=settings.repeats
        )
    candidates = [row for row in rows if allowed(settings, configs[row.name], row)]
    best = max(candidates, key=lambda row: row.images_per_s, default=None)
    return TuneResult(
        Report(rows, env, dataclasses.asdict(settings)),
        configs,
        pareto_front(rows),
        None if best is None else configs[best.name],
    )


def write_config(path: str | Path, config: TuneConfig) -> None:
    """The chosen builder keyword arguments as JSON: ``hilovit.models.create_model(name, **json.load(f))``."""
    Path(path).write_text(json.dumps(config.kwargs, indent=2) + "\n")
