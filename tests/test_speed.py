import pytest
import torch

from hilovit.speed import Timing, environment, fixed_threads, peak_memory_bytes, time_interleaved


def test_time_interleaved_runs_candidates_in_turn():
    calls = []
    timings = time_interleaved(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, warmup=1, repeats=3, min_sample_s=0
    )
    assert set(timings) == {"a", "b"} and all(len(t.samples_s) == 3 for t in timings.values())
    assert calls[-6:] == ["a", "b"] * 3


def test_timing_statistics():
    t = Timing("x", (1.0, 2.0, 3.0, 4.0, 100.0))
    assert t.median_s == 3.0 and t.quantile_s(0.0) == 1.0 and t.quantile_s(0.25) == 2.0
    assert t.spread == pytest.approx((4.0 - 2.0) / 3.0)


def test_bad_repeats():
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        time_interleaved({"a": lambda: None}, repeats=0)


def test_cpu_peak_memory_sees_a_temporary():
    def work():
        a = torch.ones(1_000_000)  # 4 MB
        return (a * 2).sum()

    assert 8_000_000 <= peak_memory_bytes(work) < 16_000_000


def test_fixed_threads_restores_the_setting():
    before = torch.get_num_threads()
    with fixed_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads must be >= 1"), fixed_threads(0):
        pass


def test_environment_records_what_a_measurement_depends_on():
    env = environment("cpu", torch.bfloat16)
    assert env["dtype"] == "bfloat16" and env["torch"] == torch.__version__ and env["threads"] >= 1
