"""Timing and peak memory of the candidates at one input, timed interleaved on the same tensor."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor

from hilovit.speed.deploy.candidates import Candidate
from hilovit.speed.deploy.settings import DeploySettings
from hilovit.speed.memory import peak_memory_bytes
from hilovit.speed.process_memory import peak_rss_growth
from hilovit.speed.timing import time_interleaved

__all__ = ["batch_of", "failure", "measure_batch"]


def failure(error: Exception) -> str:
    """A candidate's error as a table cell: its type and the first line of its message."""
    first = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {first[:120]}"


def batch_of(images: Tensor, batch: int) -> Tensor:
    """``batch`` images: ``images`` repeated as often as needed."""
    repeats = math.ceil(batch / len(images))
    return images.repeat(repeats, 1, 1, 1)[:batch].contiguous()


def _peak_mib(name: str, candidate: Candidate, runner: Callable, x: Tensor) -> float:
    """PyTorch: allocator peak above the inputs; other runtimes: resident-memory growth during the first call of
    a freshly loaded session (its arena included)."""
    if name.startswith("pytorch"):
        return peak_memory_bytes(partial(runner, x)) / 2**20
    fresh = candidate.load()
    return peak_rss_growth(partial(fresh, x)) / 2**20


def measure_batch(
    settings: DeploySettings, candidates: dict[str, Candidate], runners: dict[str, Callable], x: Tensor
) -> dict[str, tuple[float, float, float] | str]:
    """name -> (median s, p90 s, peak MiB) at the input ``x``, or the error that stopped the candidate."""
    results: dict[str, tuple[float, float, float] | str] = {}
    peaks = {}
    for name, runner in runners.items():
        try:
            with torch.inference_mode():
                runner(x)
            peaks[name] = _peak_mib(name, candidates[name], runner, x)
        except Exception as error:  # a runtime failing on this input is a result, not a crash of the benchmark
            results[name] = failure(error)
    timed = {name: partial(runners[name], x) for name in runners if name not in results}
    timings = time_interleaved(timed, warmup=settings.warmup, repeats=settings.repeats)
    for name, timing in timings.items():
        results[name] = (timing.median_s, timing.quantile_s(0.9), peaks[name])
    return results
