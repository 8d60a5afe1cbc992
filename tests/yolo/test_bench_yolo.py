"""The equal-budget quality rows of benchmarks/bench_yolo.py: steps counted, no ratio to an untrained base."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("ultralytics")


@pytest.fixture(scope="module")
def bench(load_benchmark: Callable[[str], ModuleType]) -> ModuleType:
    return load_benchmark("bench_yolo")


def test_quality_rows_count_the_training_steps(
    bench: ModuleType, scenes: Path, tmp_path: Path, no_network: list[str]
) -> None:
    """One epoch of yolov8n and its HiLo-backbone twin on the 4 training scenes at batch 4: one step each."""
    args = argparse.Namespace(epochs=1, budget_s=None, train_imgsz=32, batch=4, seed=0)
    rows = bench.quality_rows(["yolov8", "yolov8-hilo-backbone"], "n", scenes, args, tmp_path)
    assert [row[0] for row in rows] == ["yolov8n", "yolov8n-hilo-backbone"]
    assert [(row[4], row[5]) for row in rows] == [("1", "1"), ("1", "1")]  # steps, epochs
    assert no_network == []


def test_no_ratio_to_a_base_the_table_shows_as_zero(bench: ModuleType) -> None:
    assert bench.map_ratio(0.0003, 0.00004) == "-"  # both print as 0.0000 or near it: noise, not 7.50x
    assert bench.map_ratio(0.0003, 0.0) == "-"
    assert bench.map_ratio(0.2, 0.1) == "2.00x"
