"""One graph for every input size: ``torch.export`` with dynamic batch, height and width.

Both deployment formats start here: the ``.pt2`` file is this program, and the ONNX file is its
translation by ``torch.onnx.export(..., dynamo=True)``.

Three things make a single graph correct at every size:

* sizes are traced *size-obliviously* (``backed_size_oblivious``, as the ONNX exporter's own capture
  does): without it, the strides of a cropped map would be compared with the example's values and the
  program would only hold for sizes of the example's parity (e.g. even sides);
* the models pad whenever ``torch.compiler.is_exporting()`` (by zero where a side already fits) and
  compute padded sides with non-negative floor divisions, which ONNX's integer ``Div`` gets right;
* the deformable token merging runs its ``"gather"`` implementation instead of torchvision's
  ``deform_conv2d`` custom op, and under export it gathers, weights and sums the bilinear corners
  (``GatherND``, ``Mul``, ``ReduceSum`` in ONNX, which has no ``EmbeddingBag``: the exporter would write
  a ``Loop`` over every sample point); the CUDA-only packed-window path of HiLo is never taken because
  capture happens on the CPU.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.fx.experimental._config as symbolic_config
from torch import Tensor, nn
from torch.export import Dim, ExportedProgram
from torchvision.models.detection import FCOS, RetinaNet
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN

from hilovit.attention import HiLo, HiLo2d
from hilovit.models.deform import DeformableConv2x2

__all__ = ["ExportError", "capture", "check_exportable", "describe_error", "export_mode", "model_name"]


class ExportError(RuntimeError):
    """A model could not be exported; the message names the model and the reason."""


def model_name(model: nn.Module) -> str:
    """The model's timm name when it has one (``litv2_s``), else its class name."""
    cfg = getattr(model, "pretrained_cfg", None)
    architecture = cfg.get("architecture") if isinstance(cfg, dict) else None
    return architecture or type(model).__name__


def check_exportable(model: object, example: object) -> None:
    """Raise TypeError/ValueError naming the bad value unless ``model`` is a module and ``example`` an image batch."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(model, HiLo) and not isinstance(model, HiLo2d):
        raise TypeError(
            "HiLo takes (tokens, H, W) with H and W as Python ints, which cannot be dynamic in an exported graph; "
            "export hilovit.HiLo2d, the (B, C, H, W) form with the same weights "
            "(HiLo2d(...).load_state_dict(hilo.state_dict()))"
        )
    if not isinstance(example, Tensor):
        raise TypeError(f"example must be a torch.Tensor of shape (B, C, H, W), got {type(example).__name__}")
    if example.dim() != 4:
        raise ValueError(
            f"example must be a (B, C, H, W) tensor: batch, height and width are the dynamic axes; "
            f"got a {example.dim()}-d tensor of shape {tuple(example.shape)}"
        )
    if not example.is_floating_point():
        raise TypeError(f"example must be floating point, got dtype {example.dtype}")
    if example.device.type != "cpu":
        raise ValueError(f"export runs on the CPU; move the model and example there (example is on {example.device})")
    if min(example.shape[-2:]) < 2:
        raise ValueError(f"example height and width must be >= 2 to stay dynamic, got shape {tuple(example.shape)}")


@contextmanager
def export_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode and the gather deformable convolution for the duration of an export; restored afterwards."""
    modes = {module: module.training for module in model.modules()}
    impls = {module: module.impl for module in modes if isinstance(module, DeformableConv2x2)}
    model.eval()
    for module in impls:
        module.impl = "gather"
    try:
        yield
    finally:
        for module, training in modes.items():
            module.training = training
        for module, impl in impls.items():
            module.impl = impl


# Models whose forward cannot be one graph over dynamic sizes, and why.
UNSUPPORTED = {
    GeneralizedRCNN: "torchvision's R-CNN",
    RetinaNet: "torchvision's RetinaNet",
    FCOS: "torchvision's FCOS",
}
DETECTOR_REASON = (
    "{kind} detector takes a list of images and keeps a data-dependent number of boxes (top-k, NMS), so its "
    "graph depends on the values, not only the sizes; export its feature extractor instead (`model.backbone`, "
    "LITv2 + FPN: one (B, C, H, W) input, dynamic sizes) and run the heads and post-processing in PyTorch"
)


def describe_error(error: BaseException) -> str:
    """The exception's type and the first line of its message (tracer errors run to pages)."""
    first = str(error).strip().splitlines()
    return f"{type(error).__name__}: {first[0] if first else ''}"


def capture(model: nn.Module, example: Tensor) -> ExportedProgram:
    """``torch.export`` of ``model`` (in eval mode) on ``example``, with dynamic batch, height and width.

    Raises:
        TypeError, ValueError: ``model`` is not a module or ``example`` not a CPU float (B, C, H, W) batch.
        ExportError: the model fails on the example or cannot be traced; the message names the model.
    """
    check_exportable(model, example)
    name = model_name(model)
    for kind, label in UNSUPPORTED.items():
        if isinstance(model, kind):
            raise ExportError(f"{name} cannot be exported: " + DETECTOR_REASON.format(kind=label))
    with export_mode(model):
        try:
            with torch.inference_mode():
                model(example)
        except Exception as error:
            raise ExportError(
                f"{name} fails on the example of shape {tuple(example.shape)}: {describe_error(error)}"
            ) from error
        dynamic = {0: Dim("batch", min=1), 2: Dim.DYNAMIC, 3: Dim.DYNAMIC}
        try:
            with symbolic_config.patch(backed_size_oblivious=True):
                return torch.export.export(model, (example,), dynamic_shapes=[dynamic])
        except Exception as error:
            raise ExportError(
                f"{name} cannot be exported with dynamic batch/height/width by torch.export: {describe_error(error)}"
            ) from error
