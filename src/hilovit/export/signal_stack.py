"""The thread's alternate signal stack, kept across OpenVINO work.

OpenVINO's CPU plugin (2026.4) gives each compiled model an alternate signal stack (``sigaltstack``) and, on
release, puts back the one it found. When compiled models overlap in time (a benchmark holding fp32 and int8
models, NNCF calibrating beside a compiled model), the last release can leave the thread's alternate stack
pointing at freed memory; the next signal handled on that stack (Python's own handlers, Ctrl-C included) then
kills the process with SIGSEGV. :func:`kept_signal_stack` puts the thread's own alternate stack back once the
models made inside it are released.
"""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["kept_signal_stack"]


class _StackT(ctypes.Structure):
    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


def _sigaltstack() -> Callable[..., int] | None:
    try:
        return ctypes.CDLL(None, use_errno=True).sigaltstack
    except (OSError, AttributeError, TypeError):  # no C library to load, or no sigaltstack (Windows)
        return None


@contextmanager
def kept_signal_stack() -> Iterator[None]:
    """Run the block, then collect garbage (releasing the OpenVINO models it dropped) and restore the calling
    thread's alternate signal stack as it was on entry. A no-op where the C library has no ``sigaltstack``."""
    sigaltstack = _sigaltstack()
    if sigaltstack is None:
        yield
        return
    saved = _StackT()
    sigaltstack(None, ctypes.byref(saved))
    try:
        yield
    finally:
        gc.collect()
        sigaltstack(ctypes.byref(saved), None)
