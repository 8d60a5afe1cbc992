"""Deployment: ONNX and ``torch.export`` files with dynamic batch, height and width, checked against PyTorch.

>>> result = to_onnx(timm.create_model("litv2_s"), torch.randn(1, 3, 224, 224), "litv2_s.onnx")
>>> result.parity.max_abs_diff  # onnxruntime vs eager PyTorch at three sizes, odd ones included
>>> quantize(result.path, calibration_batches, runtime="openvino")  # int8, see hilovit.export.int8
"""

from hilovit.export.capture import ExportError, capture
from hilovit.export.int8 import QuantizedModel, quantize
from hilovit.export.onnx import onnxruntime_runner, to_onnx
from hilovit.export.parity import ExportResult, ParityError, ParityReport, SizeParity
from hilovit.export.torch_export import to_torch_export

__all__ = [
    "ExportError",
    "ExportResult",
    "ParityError",
    "ParityReport",
    "QuantizedModel",
    "SizeParity",
    "capture",
    "onnxruntime_runner",
    "quantize",
    "to_onnx",
    "to_torch_export",
]
