"""ONNX (onnxruntime) and torch.export parity at several sizes, odd and non-square included, and clear errors."""

from __future__ import annotations

import onnx
import pytest
import torch
from torch import Tensor, nn

from hilovit import HiLo, HiLo2d
from hilovit.export import ExportError, ParityError, ParityReport, to_onnx, to_torch_export
from hilovit.export.parity import SizeParity
from hilovit.models import LITv2, LITv2Backbone, litv2_config

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")  # the dynamo-based ONNX exporter's translator

# Square, non-square and odd sizes: the padding of every stage differs between them.
IMAGE_SIZES = [(64, 64), (160, 96), (97, 131)]


def _check(report: ParityReport, sizes: list[tuple[int, int]], batches: tuple[int, ...] = (1, 3)) -> None:
    assert report.passed, "\n".join(report.lines())
    assert [check.input_shape[0] for check in report.checks] == [batch for batch in batches for _ in sizes]
    assert [check.input_shape[2:] for check in report.checks] == sizes * len(batches)
    assert report.max_abs_diff <= 1e-4


def test_hilo_layer_onnx_and_torch_export(tmp_path):
    torch.manual_seed(0)
    layer = HiLo2d(32, 4, qkv_bias=True, window_size=2, alpha=0.5)
    example = torch.randn(2, 32, 14, 14)  # even sides: no padding in the example, padding at the odd sizes
    sizes = [(14, 14), (10, 6), (7, 9)]
    onnx_result = to_onnx(layer, example, tmp_path / "hilo.onnx", opset=20, sizes=sizes, check_batches=3)
    assert [entry.version for entry in onnx.load(onnx_result.path).opset_import if entry.domain == ""] == [20]
    _check(onnx_result.parity, sizes, batches=(3,))
    pt2_result = to_torch_export(layer, example, tmp_path / "hilo.pt2", sizes=sizes)
    _check(pt2_result.parity, sizes)
    loaded = torch.export.load(pt2_result.path).module()
    x = torch.randn(1, 32, 5, 3)
    torch.testing.assert_close(loaded(x), layer(x), rtol=0, atol=1e-5)


def test_litv2_classifier_onnx(tmp_path):
    torch.manual_seed(0)
    # three stages (ConvFFN-only, HiLo with window 2, global attention) keep the trace short; litv2_nano has four
    model = LITv2(embed_dim=16, depths=(1, 1, 1), num_heads=(1, 2, 4), local_ws=(0, 2, 1), num_classes=10).train()
    result = to_onnx(model, torch.randn(2, 3, 64, 64), tmp_path / "litv2.onnx", sizes=IMAGE_SIZES, optimize=False)
    _check(result.parity, IMAGE_SIZES)
    assert model.training and all(module.training for module in model.modules()), "modes are restored"
    assert result.parity.model == "LITv2"


def test_litv2_backbone_onnx_runs_gather_dtm(tmp_path):
    torch.manual_seed(0)
    backbone = LITv2Backbone(**litv2_config("litv2_nano"))
    for merge in (layer.downsample for layer in backbone.layers if layer.downsample is not None):
        merge.impl = "torchvision"  # a custom op in ONNX: the export swaps in the gather implementation
        nn.init.normal_(merge.dconv.conv_offset.weight, std=0.5)  # non-trivial offsets
    result = to_onnx(backbone, torch.randn(2, 3, 64, 64), tmp_path / "backbone.onnx", sizes=IMAGE_SIZES, optimize=False)
    _check(result.parity, IMAGE_SIZES)
    assert all(check.outputs == 4 for check in result.parity.checks)
    assert {layer.downsample.impl for layer in backbone.layers[:-1]} == {"torchvision"}


class _DataDependent(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x * 2 if x.sum() > 0 else x  # a branch on values: no single graph


@pytest.mark.parametrize(
    ("model", "example", "error", "match"),
    [
        (lambda x: x, torch.randn(1, 3, 8, 8), TypeError, "torch.nn.Module"),
        (nn.Identity(), [torch.randn(1, 3, 8, 8)], TypeError, "torch.Tensor"),
        (nn.Identity(), torch.randn(3, 8, 8), ValueError, "3-d tensor"),
        (nn.Identity(), torch.ones(1, 3, 8, 8, dtype=torch.long), TypeError, "floating point"),
        (nn.Identity(), torch.randn(1, 3, 1, 8), ValueError, ">= 2"),
        (HiLo(32, 4), torch.randn(1, 32, 4, 4), TypeError, "HiLo2d"),
        (HiLo2d(32, 4), torch.randn(1, 16, 4, 4), ExportError, "HiLo2d fails on the example"),
        (_DataDependent(), torch.randn(1, 3, 8, 8), ExportError, "_DataDependent cannot be exported"),
    ],
)
def test_clear_errors(tmp_path, model, example, error, match):
    with pytest.raises(error, match=match):
        to_onnx(model, example, tmp_path / "model.onnx")


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        (dict(opset=11), "opset must be an int >= 18, got 11"),
        (dict(check_batches=0), r"check batches must be a non-empty list, each an integer >= 1, got \(0,\)"),
        (dict(tolerance=float("nan")), "tolerance must be >= 0, got nan"),
    ],
)
def test_bad_settings(tmp_path, settings, match):
    with pytest.raises(ValueError, match=match):
        to_onnx(nn.Identity(), torch.randn(1, 3, 8, 8), tmp_path / "model.onnx", **settings)


@pytest.mark.parametrize(
    ("export", "sizes", "match"),
    [
        (to_onnx, [64], r"sizes=\[64\]: entry 64 is not a \(height, width\) pair"),
        (to_torch_export, "64x64", r"sizes='64x64': expected a non-empty sequence of \(height, width\) pairs"),
        (to_onnx, [], r"sizes=\[\]: expected a non-empty sequence"),
        (to_torch_export, [(8, 8), (1, 8)], r"entry \(1, 8\) is not a \(height, width\) pair of ints >= 2"),
        (to_onnx, [(8, 8, 8)], r"entry \(8, 8, 8\) is not"),
    ],
)
def test_bad_sizes_are_refused_before_exporting(tmp_path, monkeypatch, export, sizes, match):
    monkeypatch.setattr(torch.export, "export", _must_not_run)
    with pytest.raises(ValueError, match=match):
        export(nn.Identity(), torch.randn(1, 3, 8, 8), tmp_path / "model", sizes=sizes)


def _must_not_run(*args: object, **kwargs: object) -> None:
    raise AssertionError("exported before checking the settings")


def test_parity_failure_is_reported():
    report = ParityReport(
        "m", "onnxruntime", 1e-4, (SizeParity((1, 3, 8, 8), 1, 0.0), SizeParity((1, 3, 9, 9), 1, 2e-3))
    )
    assert not report.passed
    assert report.max_abs_diff == 2e-3
    error = ParityError(report, "m.onnx")
    assert str(error) == (
        "m: onnxruntime differs from eager PyTorch by 2.000e-03 at input 1x3x9x9, above the tolerance 1e-04; "
        "exported file kept for inspection: m.onnx"
    )
    assert "MISMATCH" in "\n".join(error.report.lines())
