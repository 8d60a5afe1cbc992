"""Per-layer int8 sensitivity: quantise one group of ONNX nodes at a time and measure what it costs.

The groups follow LITv2's parts: linear layers (weights), attention products (two activations), convolutions
(patch embedding, depthwise ConvFFN, DTM offsets), LayerNorm, softmax, Deformable Token Merging's bilinear
sampling (``GatherND``/``ReduceSum``) and the residual adds. A group whose quantisation moves the outputs far from
fp32 is one to keep in fp32; a group onnxruntime cannot quantise (no int8 kernel) reports ``quantized=False``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from hilovit.export.fidelity import Fidelity, fidelity, run_batches
from hilovit.export.int8 import quantize_nodes
from hilovit.export.runtimes import require, runtime_runner

__all__ = ["GROUPS", "Sensitivity", "node_groups", "sensitivity"]


def _weighted(node, weights: set[str]) -> bool:
    return any(name in weights for name in node.input[:2])


#: group -> (op types, whether a node of those types belongs to the group given the graph's initializer names)
GROUPS: dict[str, tuple[tuple[str, ...], Callable[[object, set[str]], bool]]] = {
    "linear layers": (("MatMul", "Gemm"), _weighted),
    "attention products": (("MatMul",), lambda node, weights: not _weighted(node, weights)),
    "convolutions": (("Conv",), lambda node, weights: True),
    "layer norms": (("LayerNormalization",), lambda node, weights: True),
    "softmax": (("Softmax",), lambda node, weights: True),
    "DTM sampling": (("GatherND", "ReduceSum"), lambda node, weights: True),
    "residual adds": (("Add",), lambda node, weights: not _weighted(node, weights)),
}


@dataclass(frozen=True)
class Sensitivity:
    """One group quantised alone: how many nodes, whether onnxruntime quantised any, and the outputs' fidelity."""

    group: str
    nodes: int
    quantized: bool
    fidelity: Fidelity


def node_groups(onnx_path: str | Path) -> dict[str, tuple[tuple[str, ...], list[str]]]:
    """group -> (its op types, the names of its nodes in the graph); groups without nodes are left out."""
    require("onnxruntime")
    import onnx

    graph = onnx.load(str(onnx_path)).graph
    weights = {init.name for init in graph.initializer} | {
        node.output[0] for node in graph.node if node.op_type == "Constant"
    }
    groups = {}
    for group, (types, member) in GROUPS.items():
        names = [node.name for node in graph.node if node.op_type in types and member(node, weights)]
        if names:
            groups[group] = (types, names)
    return groups


def _quantize_linear_count(path: Path) -> int:
    import onnx

    return sum(node.op_type == "QuantizeLinear" for node in onnx.load(str(path)).graph.node)


def sensitivity(
    onnx_path: str | Path,
    calibration: Sequence[Tensor],
    inputs: Sequence[Tensor],
    reference: Sequence[Tensor],
) -> list[Sensitivity]:
    """Quantise each group of :func:`node_groups` alone (onnxruntime QDQ, calibrated on ``calibration``) and compare
    its outputs on ``inputs`` with ``reference`` (the fp32 outputs, from :func:`run_batches`). Worst first."""
    results = []
    for group, (types, names) in node_groups(onnx_path).items():
        path = quantize_nodes(onnx_path, calibration, names, types)
        try:
            quantized = _quantize_linear_count(path) > 0
            outputs = run_batches(runtime_runner("onnxruntime", path), inputs)
        finally:
            shutil.rmtree(path.parent, ignore_errors=True)
        results.append(Sensitivity(group, len(names), quantized, fidelity(reference, outputs)))
    return sorted(results, key=lambda result: result.fidelity.cosine)
