"""Peak memory of one call, on CUDA (allocator statistics) and on CPU (profiler allocation events)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from contextlib import nullcontext

import torch


def _cuda_peak(fn: Callable[[], object], device: torch.device) -> int:
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    fn()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


def _cpu_peak(fn: Callable[[], object]) -> int:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    handle, path = tempfile.mkstemp(suffix=".json")
    os.close(handle)
    try:
        prof.export_chrome_trace(path)
        with open(path) as trace_file:
            events = json.load(trace_file)["traceEvents"]
    finally:
        os.unlink(path)
    allocated = [e["args"] for e in events if e.get("name") == "[memory]" and e["args"].get("Device Type") == 0]
    if not allocated:
        return 0
    baseline = allocated[0]["Total Allocated"] - allocated[0]["Bytes"]
    return max(a["Total Allocated"] for a in allocated) - baseline


def peak_memory_bytes(fn: Callable[[], object], device: torch.device | str = "cpu", *, inference: bool = True) -> int:
    """Bytes allocated at the peak of `fn()` above what was allocated before it (run once).

    With `inference=True` the call runs under `torch.inference_mode()`; pass False for a training step.
    """
    device = torch.device(device)
    with torch.inference_mode() if inference else nullcontext():
        if device.type == "cuda":
            return _cuda_peak(fn, device)
        return _cpu_peak(fn)


def is_out_of_memory(error: BaseException) -> bool:
    """Whether `error` is an allocation failure (CUDA out of memory, or the CPU allocator giving up)."""
    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and any(
        text in str(error) for text in ("out of memory", "can't allocate memory", "Cannot allocate memory")
    )
