"""Fast paths for eager CPU inference: fused oneDNN kernels, explicit short-key attention, cache-sized batches.

Each computes the same function as the standard ops it stands in for (to float32 rounding):

* :func:`linear`, :func:`conv2d_act`: PyTorch's eager CPU ``nn.Linear`` adds its bias as a broadcast copy into
  the output before the GEMM, and a convolution followed by GELU makes two passes over the activation. oneDNN,
  through PyTorch's ``mkldnn`` ops (the kernels inductor emits when it fuses on CPU), applies the bias and the
  GELU inside the one kernel.
* :func:`attention`: with few keys (HiLo's 2x2 windows, Lo-Fi's pooled keys at 224 px), scores, softmax and
  weighted sum as two batched matmuls beat the fused CPU attention kernel, whose per-tile overhead is made for
  long sequences.
* :func:`image_groups`: a stack of layers run on a few images at a time keeps its activations in the
  last-level cache between layers.

None of these has autograd, so they apply only where :func:`is_cpu_inference` (and, for the oneDNN kernels,
:func:`fusable`) holds; what each is worth is measured by ``benchmarks/bench_models.py --cpu-groups``. What keeps
recorded graphs standard is public state only (the tensor's type and device, grad mode, the module's mode, the
tracers' public flags; TorchScript never compiles the gates), so graphs that torch.fx, TorchScript, torch.jit.trace,
torch.compile and torch.export record hold the standard ops. The oneDNN kernels also step aside for a layer with
forward hooks, which a direct kernel call would skip: PyTorch keeps hooks in ``Module._forward_hooks`` and the
global hook dicts, which have no public accessor. ``FlopCounterMode`` counts the oneDNN kernels as the linear and
convolution they stand in for (formulas registered on import), so FLOP counts are the same in inference as in
training.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules import module as module_state
from torch.utils.flop_counter import conv_flop_count, flop_registry, sdpa_backward_flop, sdpa_flop, shape_wrapper

__all__ = [
    "attention",
    "conv2d_act",
    "default_group_bytes",
    "fusable",
    "image_groups",
    "is_cpu_inference",
    "last_level_cache_bytes",
    "linear",
    "register_flop_formulas",
    "standard_ops",
]

_ONEDNN = torch.backends.mkldnn.is_available() and all(
    hasattr(torch.ops.mkldnn, op) for op in ("_linear_pointwise", "_convolution_pointwise")
)
_FAST_OPS: ContextVar[bool] = ContextVar("hilovit_cpu_fast_ops", default=True)
# Up to this many keys, explicit attention beats CPU SDPA (2-4x for 4-16 keys, 1.3x for 49; SDPA wins from 196).
EXPLICIT_ATTENTION_MAX_KEYS = 64
FALLBACK_GROUP_BYTES = 16 * 2**20
_CPU0_CACHES = Path("/sys/devices/system/cpu/cpu0/cache")
_SIZE_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}


@contextmanager
def standard_ops() -> Iterator[None]:
    """Within the block, :func:`linear`, :func:`conv2d_act` and :func:`attention` run PyTorch's standard ops
    (to compare numerics or speed); image grouping is set per module."""
    token = _FAST_OPS.set(False)
    try:
        yield
    finally:
        _FAST_OPS.reset(token)


def is_cpu_inference(x: Tensor, module: nn.Module) -> bool:
    """True for eager inference on CPU: a plain tensor (not a torch.fx proxy, fake or subclass tensor), `module` in
    eval mode, autograd off, and no tracer (torch.compile, torch.export, torch.jit.trace) recording, which must see
    the standard ops. The type is checked first, so a torch.fx proxy never reaches a data-dependent branch.
    """
    return (
        type(x) is Tensor
        and x.device.type == "cpu"
        and not module.training
        and not torch.is_grad_enabled()
        and not torch.compiler.is_compiling()
        and not torch.jit.is_tracing()
    )


def _has_hooks(module: nn.Module) -> bool:
    return bool(
        module._forward_hooks
        or module._forward_pre_hooks
        or module_state._global_forward_hooks
        or module_state._global_forward_pre_hooks
    )


def _fast_float32(x: Tensor, module: nn.Module) -> bool:
    return (
        is_cpu_inference(x, module)
        and _FAST_OPS.get()
        and x.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
    )


def fusable(x: Tensor, module: nn.Module) -> bool:
    """True where the fused oneDNN kernels may stand in for `module`'s eager ops on `x`:
    :func:`is_cpu_inference` in float32 without autocast, oneDNN built in, not in :func:`standard_ops`, and no
    forward hooks on `module` that a direct kernel call would skip."""
    return _ONEDNN and _fast_float32(x, module) and not _has_hooks(module)


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


def attention(module: nn.Module, q: Tensor, k: Tensor, v: Tensor, scale: float, dropout_p: float) -> Tensor:
    """``scaled_dot_product_attention(q, k, v)`` for `module`; explicit (matmul, softmax, matmul) in float32
    CPU inference with at most :data:`EXPLICIT_ATTENTION_MAX_KEYS` keys."""
    if _fast_float32(q, module) and k.shape[-2] <= EXPLICIT_ATTENTION_MAX_KEYS:  # no size guard under export
        scores = torch.matmul(q, k.transpose(-2, -1)).mul_(scale)
        return torch.matmul(scores.softmax(-1), v)
    return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, scale=scale)


def image_groups(x: Tensor, bytes_per_image: int, budget_bytes: int | None) -> list[Tensor] | None:
    """`x` split along the batch into the fewest groups of images whose working set fits `budget_bytes`,
    sizes as even as possible; None when one group would hold the whole batch (or no budget is set)."""
    if not budget_bytes:
        return None
    images = max(1, budget_bytes // max(1, bytes_per_image))
    groups = -(-x.shape[0] // images)
    return list(x.tensor_split(groups)) if groups > 1 else None


def last_level_cache_bytes(caches: Path = _CPU0_CACHES) -> int | None:
    """The largest data or unified cache of the first CPU, from Linux sysfs; None where it cannot be read."""
    sizes = []
    for index in caches.glob("index*"):
        try:
            kind = (index / "type").read_text().strip()
            size = re.fullmatch(r"(\d+)([KMG]?)", (index / "size").read_text().strip())
        except OSError:
            continue
        if kind in ("Data", "Unified") and size:
            sizes.append(int(size[1]) * _SIZE_UNITS[size[2]])
    return max(sizes, default=None)


def default_group_bytes(caches: Path = _CPU0_CACHES) -> int:
    """Half the last-level cache, :data:`FALLBACK_GROUP_BYTES` where unknown.

    Half of a 32 MiB L3 was the best of the 4-64 MiB budgets measured for LITv2-S
    (``benchmarks/bench_models.py --cpu-groups``).
    """
    cache = last_level_cache_bytes(caches)
    return cache // 2 if cache else FALLBACK_GROUP_BYTES


def _linear_pointwise_flops(x_shape: list[int], w_shape: list[int], *args: object, **kwargs: object) -> int:
    return 2 * math.prod(x_shape[:-1]) * w_shape[0] * w_shape[1]


def _convolution_pointwise_flops(
    x_shape: list[int], w_shape: list[int], *args: object, out_shape: list[int], **kwargs: object
) -> int:
    return conv_flop_count(x_shape, w_shape, out_shape)


def register_flop_formulas() -> None:
    """Have ``FlopCounterMode`` count what CPU inference runs (idempotent; done on import): the oneDNN kernels as
    the linear / convolution they compute, and CPU scaled-dot-product attention with the formula PyTorch registers
    for the CUDA kernels only (so the explicit and the fused attention count the same)."""
    formulas = {
        torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: sdpa_flop,
        torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: sdpa_backward_flop,
    }
    if _ONEDNN:
        formulas[torch.ops.mkldnn._linear_pointwise] = shape_wrapper(_linear_pointwise_flops)
        formulas[torch.ops.mkldnn._convolution_pointwise] = shape_wrapper(_convolution_pointwise_flops)
    for op, formula in formulas.items():
        flop_registry.setdefault(op, formula)


register_flop_formulas()
