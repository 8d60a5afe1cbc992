"""Sweeps: every combination of pass, batch and size, measured point by point with a progress bar."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hilovit.speed.breakdown import breakdown_sweep
from hilovit.speed.environment import environment, fixed_threads
from hilovit.speed.measure import DTYPES, Case, Point, Row, measure_point
from hilovit.speed.results_files import Report


class SweepSettings(Protocol):
    """What :func:`sweep_report` reads of a benchmark's settings (a dataclass)."""

    __dataclass_fields__: dict[str, Any]
    modes: tuple[str, ...]
    batches: tuple[int, ...]
    sizes: tuple[int, ...]
    baseline: str
    device: str
    dtype: str
    threads: int | None
    warmup: int
    repeats: int
    breakdown: bool


def sweep_points(modes: Sequence[str], batches: Sequence[int], sizes: Sequence[int]) -> list[Point]:
    """Square sizes; the first point is the main one (first mode, batch and size)."""
    return [Point(mode, batch, size, size) for mode, batch, size in itertools.product(modes, batches, sizes)]


def run_sweep(
    points: Sequence[Point],
    build_cases: Callable[[Point], Sequence[Case]],
    *,
    device: torch.device,
    baseline: str,
    warmup: int,
    repeats: int,
    console: Console | None = None,
) -> list[Row]:
    """Rows of every point in order; `build_cases(point)` gives the candidates ready to run there."""
    rows: list[Row] = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("measuring", total=len(points))
        for point in points:
            progress.update(task, description=f"{point.mode}, batch {point.batch}, {point.height}x{point.width}")
            cases = build_cases(point)
            rows += measure_point(point, cases, device=device, baseline=baseline, warmup=warmup, repeats=repeats)
            progress.advance(task)
    return rows


def sweep_report(
    settings: SweepSettings, build_cases: Callable[[Point], Sequence[Case]], console: Console | None = None
) -> Report:
    """Every point of ``settings`` measured with ``settings.threads`` intra-op threads (and, when
    ``settings.breakdown``, profiled afterwards), with the environment it ran in."""
    device = torch.device(settings.device)
    points = sweep_points(settings.modes, settings.batches, settings.sizes)
    with fixed_threads(settings.threads):
        env = environment(device, DTYPES[settings.dtype])
        rows = run_sweep(
            points,
            build_cases,
            device=device,
            baseline=settings.baseline,
            warmup=settings.warmup,
            repeats=settings.repeats,
            console=console,
        )
        breakdowns = breakdown_sweep(points, build_cases, device) if settings.breakdown else []
    return Report(rows, env, dataclasses.asdict(settings), breakdowns)
