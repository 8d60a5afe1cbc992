"""Dense models: Semantic FPN exports with dynamic sizes; torchvision's detectors are refused with the reason."""

from __future__ import annotations

import pytest
import torch

from hilovit.dense import HiLoBlock2d, retinanet_litv2, semantic_fpn_litv2
from hilovit.export import ExportError, to_onnx

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def test_semantic_fpn_onnx(tmp_path):
    torch.manual_seed(0)
    model = semantic_fpn_litv2("nano", num_classes=5, channels=16, backbone_options=dict(depths=(1, 1, 1, 1)))
    sizes = [(64, 64), (96, 160), (97, 131)]
    result = to_onnx(model, torch.randn(2, 3, 64, 64), tmp_path / "sfpn.onnx", sizes=sizes, optimize=False)
    assert result.parity.passed, "\n".join(result.parity.lines())
    assert [check.input_shape for check in result.parity.checks] == [(b, 3, *size) for b in (1, 3) for size in sizes]


def test_detector_is_refused_with_reason(tmp_path):
    with pytest.raises(ExportError, match=r"RetinaNet cannot be exported: .*data-dependent number of boxes.*backbone"):
        to_onnx(retinanet_litv2("nano", num_classes=3), torch.randn(1, 3, 64, 64), tmp_path / "retinanet.onnx")


def test_hilo_block_with_its_channel_check_exports_with_dynamic_sizes(tmp_path):
    torch.manual_seed(0)
    block = HiLoBlock2d(32, num_heads=4, window_size=2)
    sizes = [(8, 8), (5, 7), (12, 9)]
    result = to_onnx(block, torch.randn(2, 32, 8, 8), tmp_path / "block.onnx", sizes=sizes)
    assert result.parity.passed, "\n".join(result.parity.lines())
