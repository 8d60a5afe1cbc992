"""Peak resident memory of one call, for runtimes whose allocations PyTorch does not see (ONNX Runtime, OpenVINO)."""

from __future__ import annotations

import os
import resource
import sys
import threading
from collections.abc import Callable
from pathlib import Path

_STATM = Path("/proc/self/statm")
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int:
    """This process's resident set size now (Linux), else its peak so far (``getrusage``)."""
    if _STATM.exists():
        return int(_STATM.read_text().split()[1]) * _PAGE
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def peak_rss_growth(fn: Callable[[], object], interval_s: float = 0.0005) -> int:
    """Bytes the resident set grew above its size before ``fn()`` at the peak of the call (sampled every
    ``interval_s`` on a thread; the runtimes release the GIL while they compute)."""
    before = resident_bytes()
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, resident_bytes())
            done.wait(interval_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
    return max(0, max(peak, resident_bytes()) - before)
