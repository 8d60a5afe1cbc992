"""Where a deployed model's time goes, by operator: ONNX Runtime's profiler and OpenVINO's performance counters.

OpenVINO's rows name the kernel it chose (e.g. ``FullyConnected brgemm_avx512_I8``), which shows whether an int8
model really runs int8 kernels and which fp32 operators remain.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from hilovit.export.runtimes import require

__all__ = ["RuntimeOpTime", "profile_runtime"]


@dataclass(frozen=True)
class RuntimeOpTime:
    """Milliseconds per call spent in one kind of operator, and its share of the operators' total."""

    op: str
    ms: float
    share: float


def _ranked(totals: dict[str, float], calls: int) -> list[RuntimeOpTime]:
    whole = sum(totals.values()) or 1.0
    ranked = sorted(totals.items(), key=lambda item: -item[1])
    return [RuntimeOpTime(op, seconds * 1e3 / calls, seconds / whole) for op, seconds in ranked]


def _onnxruntime_op_seconds(path: Path, x: Tensor, threads: int | None, calls: int) -> dict[str, float]:
    ort = require("onnxruntime")
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as folder:
        options.profile_file_prefix = os.path.join(folder, "profile")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: x.numpy()}
        session.run(None, feed)  # warm-up: its events are left out below
        for _ in range(calls):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    runs = sorted((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])
    warm = runs[0]["ts"] + runs[0]["dur"] if runs else 0
    totals: dict[str, float] = {}
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time") and event["ts"] >= warm:
            op = event["args"]["op_name"]
            totals[op] = totals.get(op, 0.0) + event["dur"] * 1e-6
    return totals


def _openvino_op_seconds(path: Path, x: Tensor, threads: int | None, calls: int) -> dict[str, float]:
    ov = require("openvino")
    config: dict[str, object] = {"PERF_COUNT": True, "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
    if threads is not None:
        config["INFERENCE_NUM_THREADS"] = threads
    request = ov.Core().compile_model(str(path), "CPU", config).create_infer_request()
    request.infer({0: x.numpy()})
    totals: dict[str, float] = {}
    for _ in range(calls):
        request.infer({0: x.numpy()})
        for info in request.profiling_info:
            if info.status == info.Status.EXECUTED:
                op = f"{info.node_type} {info.exec_type}"
                totals[op] = totals.get(op, 0.0) + info.real_time.total_seconds()
    return totals


def profile_runtime(
    runtime: str, path: str | Path, x: Tensor, threads: int | None = None, calls: int = 3
) -> list[RuntimeOpTime]:
    """Operator kinds of the model file at ``path`` run by ``runtime`` on ``x``, slowest first (per call)."""
    measure = {"onnxruntime": _onnxruntime_op_seconds, "openvino": _openvino_op_seconds}.get(runtime)
    if measure is None:
        raise ValueError(f"no operator profile for runtime {runtime!r}: expected onnxruntime or openvino")
    return _ranked(measure(Path(path), x, threads, calls), calls)
