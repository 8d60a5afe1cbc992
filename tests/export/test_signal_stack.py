"""kept_signal_stack: after overlapping OpenVINO compiled models are released, a signal handled by Python still
runs (without it, OpenVINO 2026.4 leaves the alternate signal stack on freed memory and the process dies)."""

from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest

from hilovit.export.signal_stack import _StackT, kept_signal_stack

OVERLAPPING_MODELS_THEN_CTRL_C = """
import gc, signal
import numpy as np, openvino as ov, openvino.opset13 as ops
from hilovit.export.signal_stack import kept_signal_stack

def compiled():
    x = ops.parameter([1, 4], np.float32)
    return ov.Core().compile_model(ov.Model([ops.relu(x)], [x]), "CPU")

with kept_signal_stack():
    first, second = compiled(), compiled()
    first(np.ones((1, 4), np.float32))
    del first, second
signal.signal(signal.SIGINT, lambda *_: print("handled", flush=True))
signal.raise_signal(signal.SIGINT)
"""


def _current_stack() -> tuple[int | None, int, int]:
    stack = _StackT()
    assert ctypes.CDLL(None).sigaltstack(None, ctypes.byref(stack)) == 0
    return stack.ss_sp, stack.ss_flags, stack.ss_size


@pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "sigaltstack"), reason="no sigaltstack in this C library")
def test_the_alternate_stack_of_the_caller_comes_back():
    before = _current_stack()
    memory = ctypes.create_string_buffer(1 << 16)
    other = _StackT(ctypes.cast(memory, ctypes.c_void_p).value, 0, len(memory))
    with kept_signal_stack():
        assert ctypes.CDLL(None).sigaltstack(ctypes.byref(other), None) == 0  # what a library may do inside
        assert _current_stack()[0] == other.ss_sp
    assert _current_stack() == before


def test_ctrl_c_after_overlapping_openvino_models_is_handled():
    pytest.importorskip("openvino")
    done = subprocess.run(
        [sys.executable, "-c", OVERLAPPING_MODELS_THEN_CTRL_C], capture_output=True, text=True, timeout=120
    )
    assert (done.returncode, done.stdout) == (0, "handled\n"), done.stderr[-2000:]
