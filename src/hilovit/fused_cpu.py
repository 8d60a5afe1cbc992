"""Fused oneDNN kernels and cache-sized batching for CPU inference.

PyTorch's eager CPU ``nn.Linear`` adds its bias as a broadcast copy into the output before the GEMM, and a
convolution followed by GELU makes two passes over the activation. oneDNN, through PyTorch's ``mkldnn`` ops
(the kernels inductor emits when it fuses on CPU), applies the bias and the GELU inside the one kernel: the
same arithmetic, one pass over memory less. They have no autograd and are invisible to dispatch modes such as
``FlopCounterMode``, so they replace the eager ops only where :func:`fusable` holds.

:func:`image_groups` serves the other half of CPU inference speed: running a stack of layers on a few images
at a time so that their activations stay in the last-level cache between layers (see
``benchmarks/bench_models.py`` for what each part is worth).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
from torch import Tensor, nn
from torch.nn.modules import module as module_state
from torch.utils._python_dispatch import _get_current_dispatch_mode

__all__ = ["conv2d_act", "cpu_inference", "disabled", "fusable", "image_groups", "linear"]

_ONEDNN = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
_ENABLED: ContextVar[bool] = ContextVar("hilovit_fused_cpu", default=True)


@contextmanager
def disabled() -> Iterator[None]:
    """Within the block, :func:`linear` and :func:`conv2d_act` run the eager modules (to compare numerics or
    speed)."""
    token = _ENABLED.set(False)
    try:
        yield
    finally:
        _ENABLED.reset(token)


def cpu_inference(x: Tensor, module: nn.Module) -> bool:
    """True for eager inference on CPU: `module` in eval mode, autograd off, a plain tensor, and no tracer
    (torch.compile, torch.export, TorchScript tracing) or dispatch mode watching, which must see the standard ops.
    """
    return (
        x.device.type == "cpu"
        and type(x) is Tensor
        and not module.training
        and not torch.is_grad_enabled()
        and not torch.compiler.is_compiling()
        and not torch.jit.is_tracing()
        and _get_current_dispatch_mode() is None
    )


def _has_hooks(module: nn.Module) -> bool:
    return bool(
        module._forward_hooks
        or module._forward_pre_hooks
        or module_state._global_forward_hooks
        or module_state._global_forward_pre_hooks
    )


def fusable(x: Tensor, module: nn.Module) -> bool:
    """True where the fused kernels may stand in for `module`'s eager ops on `x`: :func:`cpu_inference` in
    float32 without autocast, oneDNN built in, not :func:`disabled`, and no forward hooks on `module` that a
    direct kernel call would skip."""
    return (
        _ONEDNN
        and _ENABLED.get()
        and x.dtype == torch.float32
        and cpu_inference(x, module)
        and not torch.is_autocast_enabled("cpu")
        and not _has_hooks(module)
    )


def linear(layer: nn.Linear, x: Tensor) -> Tensor:
    """``layer(x)``, with the bias added inside oneDNN's GEMM where :func:`fusable`.

    Only a plain ``nn.Linear`` is fused: subclasses, quantized and parametrized layers run their own forward.
    """
    if type(layer) is nn.Linear and fusable(x, layer):
        return torch.ops.mkldnn._linear_pointwise(x, layer.weight, layer.bias, "none", [], "")
    return layer(x)


def conv2d_act(conv: nn.Conv2d, act: nn.Module, x: Tensor) -> Tensor:
    """``act(conv(x))``; as one oneDNN convolution with a GELU post-op where :func:`fusable`.

    Fused for a plain zero-padded ``nn.Conv2d`` with integer padding followed by an ``nn.GELU`` (either
    approximation); anything else runs the two modules.
    """
    if (
        type(conv) is nn.Conv2d
        and type(act) is nn.GELU
        and conv.padding_mode == "zeros"
        and not isinstance(conv.padding, str)
        and fusable(x, conv)
        and not _has_hooks(act)
    ):
        return torch.ops.mkldnn._convolution_pointwise(
            x, conv.weight, conv.bias, conv.padding, conv.stride, conv.dilation, conv.groups, "gelu", [],
            act.approximate,
        )  # fmt: skip
    return act(conv(x))


def image_groups(x: Tensor, bytes_per_image: int, budget_bytes: int | None) -> list[Tensor] | None:
    """`x` split along the batch into the fewest groups of images whose working set fits `budget_bytes`,
    sizes as even as possible; None when one group would hold the whole batch (or no budget is set)."""
    if not budget_bytes:
        return None
    images = max(1, budget_bytes // max(1, bytes_per_image))
    groups = -(-x.shape[0] // images)
    return list(x.tensor_split(groups)) if groups > 1 else None
