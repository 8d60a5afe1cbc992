"""int8 static post-training quantisation of an exported ONNX model, calibrated on real images.

>>> batches = ImageSource(None, img_size=224).calibration(64).batches(8)   # bundled Fashion-MNIST, as RGB
>>> q = quantize("litv2_s.onnx", batches, runtime="onnxruntime")   # QDQ graph for ONNX Runtime
>>> q = quantize("litv2_s.onnx", batches, runtime="openvino")      # NNCF, OpenVINO IR (.xml + .bin)

* ``onnxruntime``: ``onnxruntime.quantization.quantize_static`` in QDQ format, per-channel int8 weights, uint8
  activations (min-max calibration). Only the op types in ``op_types`` are quantised, by default the matrix
  products (:data:`QUANTIZED_OPS`: linear layers, attention products, convolutions); LayerNorm, softmax, GELU,
  the residual adds and Deformable Token Merging's bilinear sampling (``GatherND``/``Mul``/``ReduceSum``) stay
  fp32. :func:`sensitivity` measures, group by group, what quantising each part costs.
* ``openvino``: ``nncf.quantize`` of the ONNX model read by OpenVINO, ``ModelType.TRANSFORMER`` (NNCF keeps
  LayerNorm/softmax/GELU inputs in floating point for transformers), symmetric per-tensor activations, no
  SmoothQuant, saved as OpenVINO IR. Per-channel activation quantisers and SmoothQuant are off because on LITv2
  they attach to the ConvFFN's depthwise convolution, whose channels-first view makes the "channel" axis the
  image height: the int8 model then only runs at the calibration size (an OpenVINO shape error elsewhere), and
  SmoothQuant also cost accuracy (cosine to fp32 0.957 with it, 0.999 without, litv2_nano at 64 px).

Both int8 models keep the ONNX file's dynamic batch, height and width (:attr:`QuantizedModel.dynamic_sizes`
records what the saved file declares). The quantisers run in a temporary working directory, removed afterwards:
some of their steps write scratch files to relative paths (ONNX Runtime's symbolic shape inference saves
``sym_shape_infer_temp.onnx`` and its external ``<uuid>.data`` into the current directory when it fails), which
must not land in the caller's folder.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from hilovit.export.runtimes import require
from hilovit.export.signal_stack import kept_signal_stack

__all__ = ["INT8_RUNTIMES", "QUANTIZED_OPS", "QuantizedModel", "quantize"]

INT8_RUNTIMES = ("onnxruntime", "openvino")
#: ONNX op types quantised for ONNX Runtime by default: the matrix products. Everything else stays fp32.
QUANTIZED_OPS = ("MatMul", "Gemm", "Conv")


@dataclass(frozen=True)
class QuantizedModel:
    """An int8 model file: ``path`` is the ``.onnx`` (onnxruntime) or the ``.xml`` next to its ``.bin`` (openvino).

    ``dynamic_sizes`` is True when the file keeps a free batch, height and width; ``kept_fp32`` says which
    parts were left in floating point.
    """

    path: Path
    runtime: str
    dynamic_sizes: bool
    kept_fp32: str

    @property
    def files(self) -> tuple[Path, ...]:
        return (self.path, self.path.with_suffix(".bin")) if self.runtime == "openvino" else (self.path,)

    @property
    def size_bytes(self) -> int:
        return sum(path.stat().st_size for path in self.files)


@contextlib.contextmanager
def _scratch_cwd() -> Iterator[None]:
    """Run the block in a fresh temporary working directory, removed afterwards (give it absolute paths)."""
    with tempfile.TemporaryDirectory(prefix="hilovit_quantize_") as folder, contextlib.chdir(folder):
        yield


def _check_batches(calibration: Sequence[Tensor]) -> list[Tensor]:
    batches = [calibration] if isinstance(calibration, Tensor) else list(calibration)
    if not batches or not all(isinstance(b, Tensor) and b.dim() == 4 and b.is_floating_point() for b in batches):
        raise ValueError(
            "calibration must be a non-empty sequence of float (B, C, H, W) tensors (real, normalised images), "
            f"got {type(calibration).__name__} of {[type(b).__name__ for b in batches[:3]]}"
        )
    return [b.detach().cpu().float().contiguous() for b in batches]


def _onnx_dynamic(path: Path) -> bool:
    import onnx

    shape = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape
    return all(dim.dim_param or not dim.HasField("dim_value") for dim in list(shape.dim)[:1] + list(shape.dim)[2:])


def _onnxruntime_int8(
    source: Path,
    batches: list[Tensor],
    output: Path,
    op_types: Sequence[str],
    nodes: Sequence[str] | None = None,
) -> None:
    require("onnxruntime")
    import onnxruntime
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    name = onnxruntime.InferenceSession(str(source), providers=["CPUExecutionProvider"]).get_inputs()[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feed = iter([{name: batch.numpy()} for batch in batches])

        def get_next(self) -> dict | None:
            return next(self.feed, None)

    quantize_static(
        source,
        output,
        Reader(),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=list(op_types),
        nodes_to_quantize=None if nodes is None else list(nodes),
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )


def _openvino_int8(source: Path, batches: list[Tensor], output: Path) -> bool:
    ov = require("openvino")
    nncf = require("nncf")
    from nncf.quantization.advanced_parameters import QuantizationParameters

    model = ov.convert_model(str(source))
    quantized = nncf.quantize(
        model,
        nncf.Dataset([batch.numpy() for batch in batches]),
        model_type=nncf.ModelType.TRANSFORMER,
        preset=nncf.QuantizationPreset.PERFORMANCE,
        subset_size=len(batches),
        advanced_parameters=nncf.AdvancedQuantizationParameters(
            smooth_quant_alphas=nncf.AdvancedSmoothQuantParameters(matmul=-1),
            activations_quantization_params=QuantizationParameters(per_channel=False),
        ),
    )
    ov.save_model(quantized, str(output), compress_to_fp16=False)
    shape = quantized.inputs[0].get_partial_shape()
    return all(shape[axis].is_dynamic for axis in (0, 2, 3))


def quantize(
    onnx_path: str | Path,
    calibration: Sequence[Tensor] | Tensor,
    output: str | Path | None = None,
    *,
    runtime: str = "onnxruntime",
    op_types: Sequence[str] = QUANTIZED_OPS,
) -> QuantizedModel:
    """Static int8 post-training quantisation of the fp32 ONNX file ``onnx_path`` for ``runtime``.

    Args:
        onnx_path: an fp32 model from :func:`~hilovit.export.to_onnx` (dynamic batch, height and width).
        calibration: batches of real, normalised images as the model takes them (e.g.
            ``ImageSource(...).calibration(64).batches(8)``); their sizes may differ between batches.
        output: the file to write (default: next to ``onnx_path``, ``<stem>_int8.onnx`` for onnxruntime,
            ``<stem>_int8.xml`` + ``.bin`` for openvino).
        runtime: ``onnxruntime`` (QDQ ONNX) or ``openvino`` (NNCF, OpenVINO IR).
        op_types: ONNX op types quantised for onnxruntime (default :data:`QUANTIZED_OPS`); ignored by openvino,
            where NNCF's transformer scheme chooses.

    Raises:
        ValueError: an unknown runtime or bad calibration batches.
        FileNotFoundError: no file at ``onnx_path``.
        MissingRuntimeError: the runtime (or NNCF) is not installed; the message names the package.
    """
    if runtime not in INT8_RUNTIMES:
        raise ValueError(f"unknown int8 runtime {runtime!r}: expected one of {', '.join(INT8_RUNTIMES)}")
    source = Path(onnx_path)
    if not source.is_file():
        raise FileNotFoundError(f"no ONNX file at {source} (export one with hilovit.export.to_onnx)")
    batches = _check_batches(calibration)
    suffix = ".onnx" if runtime == "onnxruntime" else ".xml"
    target = Path(output) if output is not None else source.with_name(f"{source.stem}_int8{suffix}")
    if target.suffix != suffix:
        raise ValueError(f"output {target} for {runtime} must end in {suffix}")
    target.parent.mkdir(parents=True, exist_ok=True)
    source, target = source.resolve(), target.resolve()
    with torch.inference_mode(), _scratch_cwd(), kept_signal_stack():
        if runtime == "onnxruntime":
            _onnxruntime_int8(source, batches, target, op_types)
            dynamic = _onnx_dynamic(target)
            kept = f"all but {', '.join(op_types)}"
        else:
            dynamic = _openvino_int8(source, batches, target)
            kept = "NNCF transformer scheme (LayerNorm, softmax, GELU, element-wise ops); per-tensor activations"
    return QuantizedModel(target, runtime, dynamic, kept)


def quantize_nodes(
    onnx_path: str | Path, calibration: Sequence[Tensor], nodes: Sequence[str], op_types: Sequence[str]
) -> Path:
    """An onnxruntime QDQ model in a temporary folder with only ``nodes`` (of ``op_types``) quantised."""
    folder = Path(tempfile.mkdtemp(prefix="hilovit_sensitivity_"))
    target = folder / "partial_int8.onnx"
    source = Path(onnx_path).resolve()
    with _scratch_cwd():
        _onnxruntime_int8(source, _check_batches(calibration), target, op_types, nodes)
    return target
