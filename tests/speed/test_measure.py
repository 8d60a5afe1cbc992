"""One sweep point: out-of-memory is reported in its row and the others are still measured."""

import pytest
import torch

from hilovit.speed.measure import Case, Point, measure_point
from hilovit.speed.memory import is_out_of_memory


def case(name, run):
    return Case(name, name.upper(), run, params=0, macs=None, count=lambda: torch.ones(1, 2) @ torch.ones(2, 1))


def out_of_memory():
    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


def test_out_of_memory_is_reported_per_row_and_the_sweep_goes_on():
    x = torch.randn(8, 8, requires_grad=True)
    cases = [case("big", out_of_memory), case("ok", lambda: x @ x)]
    for mode in ("forward", "forward+backward"):
        big, ok = measure_point(Point(mode, 8, 1, 1), cases, device=torch.device("cpu"), baseline="ok", repeats=2)
        assert big.error == "out of memory" and big.images_per_s is None and big.ratio is None
        assert ok.error is None and ok.ratio == 1.0 and ok.counted_gmacs == 2e-9


def test_other_errors_are_not_swallowed():
    def broken():
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        measure_point(Point("forward", 1, 1, 1), [case("b", broken)], device=torch.device("cpu"), baseline="b")


def test_out_of_memory_recognised_on_cpu_and_cuda():
    assert is_out_of_memory(
        RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")
    )
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory."))
    assert not is_out_of_memory(ValueError("out of memory"))


def test_bad_points_are_named():
    with pytest.raises(ValueError, match="unknown mode 'train'"):
        Point("train", 1, 1, 1)
    with pytest.raises(ValueError, match="batch=0"):
        Point("forward", 0, 1, 1)
