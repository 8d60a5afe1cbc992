"""Deployment runtimes for an exported file: ONNX Runtime and OpenVINO (CPU), each as ``Tensor -> list[Tensor]``.

Both are optional dependencies; asking for one that is not installed raises :class:`MissingRuntimeError`,
which names the package and the extra that installs it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor

from hilovit.export.onnx import onnxruntime_runner

__all__ = ["RUNTIMES", "MissingRuntimeError", "openvino_runner", "require", "runtime_runner"]

#: runtime -> (module to import, pip requirement that provides it)
RUNTIMES: dict[str, tuple[str, str]] = {
    "onnxruntime": ("onnxruntime", "hilovit[onnx]"),
    "openvino": ("openvino", "hilovit[deploy]"),
    "nncf": ("nncf", "hilovit[deploy]"),
}

Runner = Callable[[Tensor], list[Tensor]]


class MissingRuntimeError(ImportError):
    """A deployment runtime (or its quantiser) is not installed; the message names the package to install."""


def require(package: str) -> ModuleType:
    """Import ``package`` (a key of :data:`RUNTIMES`) or raise :class:`MissingRuntimeError` naming it."""
    if package not in RUNTIMES:
        raise ValueError(f"unknown runtime package {package!r}: expected one of {', '.join(RUNTIMES)}")
    module, extra = RUNTIMES[package]
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingRuntimeError(
            f"{package} is not installed, and this step needs it: pip install '{extra}' (or pip install {module})"
        ) from error


def openvino_runner(model: str | Path | object, threads: int | None = None) -> Runner:
    """A CPU OpenVINO compiled model of ``model`` (an ``.onnx``/``.xml`` path or an ``openvino.Model``).

    Inference runs in fp32 where the model is fp32 (``INFERENCE_PRECISION_HINT=f32``: without it OpenVINO runs
    bf16 on CPUs that have it), latency mode, ``threads`` inference threads (None: OpenVINO's default).
    """
    ov = require("openvino")
    config: dict[str, object] = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
    if threads is not None:
        config["INFERENCE_NUM_THREADS"] = threads
    source = str(model) if isinstance(model, str | Path) else model
    compiled = ov.Core().compile_model(source, "CPU", config)
    request = compiled.create_infer_request()

    def run(x: Tensor) -> list[Tensor]:
        results = request.infer({0: x.numpy()}, share_inputs=True)
        return [torch.from_numpy(results[output].copy()) for output in compiled.outputs]

    return run


def runtime_runner(runtime: str, path: str | Path, threads: int | None = None) -> Runner:
    """A runner of the file at ``path`` in ``runtime`` (``onnxruntime`` or ``openvino``)."""
    if runtime == "onnxruntime":
        require("onnxruntime")
        return onnxruntime_runner(path, threads)
    if runtime == "openvino":
        return openvino_runner(path, threads)
    raise ValueError(f"unknown runtime {runtime!r}: expected onnxruntime or openvino")
