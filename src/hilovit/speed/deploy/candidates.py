"""The candidates ready to run: PyTorch eager and compiled, the exported ONNX file in ONNX Runtime and OpenVINO,
and its int8 models."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch import Tensor, nn

from hilovit.export import to_onnx
from hilovit.export.int8 import QuantizedModel, quantize
from hilovit.export.runtimes import require, runtime_runner
from hilovit.speed.deploy.settings import CANDIDATES, DeploySettings
from hilovit.speed.deploy.target import Target

__all__ = ["Candidate", "prepare"]


@dataclass
class Candidate:
    """A runtime ready to load: ``load()`` gives a fresh runner, ``file_bytes`` its artifact's size."""

    name: str
    load: Callable[[], Callable[[Tensor], object]]
    file_bytes: int | None
    artifact: QuantizedModel | Path | None


def _state_bytes(model: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def prepare(settings: DeploySettings, target: Target, folder: Path, notes: list[str]) -> dict[str, Candidate]:
    """Export, quantise and load every requested candidate (files under ``folder``)."""
    wanted = settings.candidates
    for name in wanted:  # fail before the (long) export when a requested runtime is missing
        runtime = CANDIDATES[name][0]
        if runtime in ("onnxruntime", "openvino"):
            require(runtime)
        if name == "openvino-int8":
            require("nncf")
    threads = torch.get_num_threads()
    model = target.model
    candidates = {"pytorch": Candidate("pytorch", lambda: model, _state_bytes(model), None)}
    if "pytorch-compile" in wanted:
        compiled = torch.compile(model)
        candidates["pytorch-compile"] = Candidate("pytorch-compile", lambda: compiled, _state_bytes(model), None)
    if not any(CANDIDATES[name][0] in ("onnxruntime", "openvino") for name in wanted):
        return candidates
    # a batch-2 example: an export traced at batch 1 may keep the batch fixed at 1 in reshapes
    example = target.calibration.images[:2]
    if len(example) < 2:
        example = example.repeat(2, 1, 1, 1)
    onnx_path = to_onnx(model, example, folder / f"{target.name}.onnx", check=False).path
    for name in ("onnxruntime", "openvino"):
        if name in wanted:
            candidates[name] = Candidate(
                name, partial(runtime_runner, name, onnx_path, threads), onnx_path.stat().st_size, onnx_path
            )
    calibration = target.calibration.batches(min(settings.batch_size, 8))
    for runtime in ("onnxruntime", "openvino"):
        name = f"{runtime}-int8"
        if name in wanted:
            quantized = quantize(onnx_path, calibration, runtime=runtime)
            if not quantized.dynamic_sizes:
                notes.append(f"{name}: the int8 file has fixed sizes ({quantized.path})")
            notes.append(f"{name}: kept in fp32: {quantized.kept_fp32}")
            candidates[name] = Candidate(
                name, partial(runtime_runner, runtime, quantized.path, threads), quantized.size_bytes, quantized
            )
    return candidates
