"""Wall-clock timing that is fair between candidates measured in the same run."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Timing:
    """Seconds per call of one candidate, one sample per repeat."""

    name: str
    samples_s: tuple[float, ...]

    @property
    def median_s(self) -> float:
        return statistics.median(self.samples_s)

    def quantile_s(self, q: float) -> float:
        ordered = sorted(self.samples_s)
        position = q * (len(ordered) - 1)
        low, high = math.floor(position), math.ceil(position)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    @property
    def spread(self) -> float:
        """Inter-quartile range relative to the median: how noisy the samples were."""
        return (self.quantile_s(0.75) - self.quantile_s(0.25)) / self.median_s


def synchronize(device: torch.device | str) -> None:
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cuda_graphed(fn: Callable[[], object], warmup: int = 3) -> Callable[[], None]:
    """Capture `fn` into a CUDA graph and return its replay: GPU work without Python/launch overhead.

    Capture happens under `torch.inference_mode()`; `fn` must be capturable (static shapes, no host sync).
    """
    with torch.inference_mode():
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                fn()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fn()
    return graph.replay


def seconds_per_call(fn: Callable[[], object], number: int, device: torch.device) -> float:
    """Seconds per call over `number` back-to-back calls (CUDA events on GPU)."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(number):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000.0 / number
    synchronize(device)
    begin = time.perf_counter()
    for _ in range(number):
        fn()
    synchronize(device)
    return (time.perf_counter() - begin) / number


def time_interleaved(
    candidates: Mapping[str, Callable[[], object]],
    *,
    device: torch.device | str = "cpu",
    warmup: int = 2,
    repeats: int = 7,
    min_sample_s: float = 0.02,
    inference: bool = True,
) -> dict[str, Timing]:
    """Time each candidate `repeats` times in the order A B C A B C ... so that drift hits all alike.

    Every candidate is first called `warmup` times; calls that take less than `min_sample_s` are
    batched so that one sample lasts at least that long (timer resolution, launch overhead).
    With `inference=True` the calls run under `torch.inference_mode()`.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    device = torch.device(device)
    mode = torch.inference_mode if inference else nullcontext
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    with mode():
        numbers = {}
        for name, fn in candidates.items():
            for _ in range(warmup):
                fn()
            once = seconds_per_call(fn, 1, device)
            numbers[name] = max(1, math.ceil(min_sample_s / max(once, 1e-9)))
        for _ in range(repeats):
            for name, fn in candidates.items():
                samples[name].append(seconds_per_call(fn, numbers[name], device))
    return {name: Timing(name, tuple(values)) for name, values in samples.items()}
