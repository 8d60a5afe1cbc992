"""Sweeps: every combination of pass, batch and size, measured point by point with a progress bar."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hilovit.speed.measure import Case, Point, Row, measure_point


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
