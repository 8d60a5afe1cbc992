"""One sweep point: candidates probed for memory (out-of-memory caught per candidate), then timed interleaved."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from hilovit.attention.flops import count_flops
from hilovit.speed.memory import is_out_of_memory, peak_memory_bytes
from hilovit.speed.timing import time_interleaved

MODES = ("forward", "forward+backward")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class Point:
    """Where candidates are compared: pass, batch and map/image size."""

    mode: str
    batch: int
    height: int
    width: int

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}: expected one of {', '.join(MODES)}")
        if self.batch < 1 or self.height < 1 or self.width < 1:
            raise ValueError(f"batch and size must be >= 1, got batch={self.batch}, {self.height}x{self.width}")

    @property
    def training(self) -> bool:
        return self.mode == "forward+backward"


@dataclass(frozen=True)
class Case:
    """One candidate at one point, ready to run.

    Args:
        name: key (a mechanism or model name); ratios refer to the baseline's name.
        label: what the table shows.
        run: the forward pass of the whole batch.
        params: parameter count.
        macs: analytic multiply-accumulates per image (None where the candidate has no formula).
        count: the forward pass of one image, run under the FLOP counter for the cross-check.
    """

    name: str
    label: str
    run: Callable[[], Tensor]
    params: int
    macs: int | None
    count: Callable[[], object]


@dataclass(frozen=True)
class Row:
    """One measured (or failed) candidate at one point; figures are None when `error` is set."""

    name: str
    label: str
    mode: str
    batch: int
    height: int
    width: int
    params: int
    gmacs: float | None
    counted_gmacs: float | None
    images_per_s: float | None = None
    latency_p50_ms: float | None = None
    latency_p90_ms: float | None = None
    spread: float | None = None
    peak_mib: float | None = None
    ratio: float | None = None
    error: str | None = None

    @property
    def point(self) -> Point:
        return Point(self.mode, self.batch, self.height, self.width)


def by_point(rows: Sequence[Row]) -> dict[Point, list[Row]]:
    """Rows grouped by sweep point, in measured order."""
    groups: dict[Point, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.point, []).append(row)
    return groups


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def autocast_runner(fn: Callable[[], Tensor], device: torch.device, dtype: torch.dtype) -> Callable[[], Tensor]:
    """`fn` under autocast to `dtype` (no autocast for float32)."""
    if dtype == torch.float32:
        return fn

    def run() -> Tensor:
        with torch.autocast(device.type, dtype=dtype):
            return fn()

    return run


def timed_step(run: Callable[[], Tensor], training: bool) -> Callable[[], object]:
    """`run` itself, or with `training` run followed by the backward pass of its output's sum."""
    if not training:
        return run

    def forward_backward() -> None:
        run().float().sum().backward()

    return forward_backward


def counted_macs(case: Case) -> int:
    """Multiply-accumulates per image that the FLOP counter sees (CPU SDPA included)."""
    with torch.no_grad():
        return count_flops(case.count) // 2


def _free(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def measure_point(
    point: Point,
    cases: Sequence[Case],
    *,
    device: torch.device,
    baseline: str,
    warmup: int = 2,
    repeats: int = 7,
) -> list[Row]:
    """Peak memory of each case (one call; out-of-memory recorded in that case's row), then the survivors
    timed interleaved; `ratio` is throughput over the baseline's at this point (None if it failed)."""
    steps = {case.name: timed_step(case.run, point.training) for case in cases}
    peaks: dict[str, int] = {}
    errors: dict[str, str] = {}
    for case in cases:
        try:
            peaks[case.name] = peak_memory_bytes(steps[case.name], device, inference=not point.training)
        except RuntimeError as error:  # torch.OutOfMemoryError included
            if not is_out_of_memory(error):
                raise
            errors[case.name] = "out of memory"
            _free(device)
    timings = time_interleaved(
        {name: step for name, step in steps.items() if name not in errors},
        device=device,
        warmup=warmup,
        repeats=repeats,
        inference=not point.training,
    )
    rows = []
    base = timings.get(baseline)
    for case in cases:
        common = dict(
            name=case.name,
            label=case.label,
            mode=point.mode,
            batch=point.batch,
            height=point.height,
            width=point.width,
            params=case.params,
            gmacs=None if case.macs is None else case.macs / 1e9,
            counted_gmacs=counted_macs(case) / 1e9,
        )
        if case.name in errors:
            rows.append(Row(**common, error=errors[case.name]))
            continue
        t = timings[case.name]
        rows.append(
            Row(
                **common,
                images_per_s=point.batch / t.median_s,
                latency_p50_ms=t.median_s * 1e3,
                latency_p90_ms=t.quantile_s(0.9) * 1e3,
                spread=t.spread,
                peak_mib=peaks[case.name] / 2**20,
                ratio=None if base is None else base.median_s / t.median_s,
            )
        )
    return rows
