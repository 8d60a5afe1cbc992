"""What a measurement depends on: versions, device, threads, dtype."""

from __future__ import annotations

import platform
from collections.abc import Iterator
from contextlib import contextmanager

import torch


def device_name(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def environment(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> dict[str, str | int]:
    import hilovit

    return {
        "hilovit": hilovit.__version__,
        "torch": torch.__version__,
        "device": str(torch.device(device)),
        "device_name": device_name(device),
        "threads": torch.get_num_threads(),
        "dtype": str(dtype).removeprefix("torch."),
        "python": platform.python_version(),
    }


@contextmanager
def fixed_threads(threads: int | None) -> Iterator[None]:
    """Run the block with `threads` intra-op threads (None keeps the current setting)."""
    previous = torch.get_num_threads()
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
