"""Where a model's time goes on this device: the profiler's operator times, grouped into kinds of work.

On CPU an operator's time is its own (self) CPU time; on CUDA it is the time of the kernels it launched,
so the total is the GPU's busy time and ``wall_ms - op_total_ms`` is time the GPU waited on the host.
Each timed event is attributed to a kind of work through its chain of calling operators:

* any dtype conversion in the chain (``aten::to``, as autocast inserts them) makes it a ``cast``;
* otherwise the outermost operator with a known kind decides, so the bias copy inside ``aten::addmm`` is
  matmul work, a ``copy_`` inside ``contiguous`` is a copy, and the matmuls inside SDPA's math path
  are attention.

Matmuls written out explicitly (``q @ k.T``) count as matmul: the grouping is by operator, not by layer.
Eager execution only: a compiled model's generated kernels land in ``other``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from rich.console import Console
from rich.table import Table
from torch.autograd.profiler_util import FunctionEvent
from torch.profiler import ProfilerActivity, profile

from hilovit.speed.measure import Case, Point, timed_step
from hilovit.speed.report import describe
from hilovit.speed.timing import seconds_per_call

CATEGORIES = (
    "matmul",
    "attention",
    "convolution",
    "normalization",
    "activation",
    "elementwise",
    "cast",
    "copy",
    "pooling",
    "other",
)
_CATEGORY_OPS = {
    "matmul": (
        "mm addmm bmm baddbmm addbmm _addmm_activation matmul linear _linear_pointwise mkldnn_linear einsum _scaled_mm"
    ),
    "attention": (
        "scaled_dot_product_attention _scaled_dot_product_attention_math _scaled_dot_product_flash_attention "
        "_scaled_dot_product_flash_attention_for_cpu _scaled_dot_product_efficient_attention "
        "_scaled_dot_product_cudnn_attention _flash_attention_forward _efficient_attention_forward softmax "
        "_softmax _safe_softmax"
    ),
    "convolution": (
        "conv1d conv2d conv3d convolution _convolution cudnn_convolution mkldnn_convolution _convolution_pointwise "
        "_conv_depthwise2d conv_depthwise3d deform_conv2d _slow_conv2d_forward slow_conv3d_forward"
    ),
    "normalization": (
        "layer_norm native_layer_norm batch_norm _batch_norm_impl_index native_batch_norm cudnn_batch_norm "
        "_native_batch_norm_legit_no_training group_norm native_group_norm rms_norm _fused_rms_norm instance_norm"
    ),
    "activation": "gelu relu relu_ silu silu_ sigmoid hardswish tanh leaky_relu",
    "elementwise": "add add_ sub rsub mul mul_ div div_ addcmul where clamp floor neg pow sqrt rsqrt exp fill_ zero_",
    "cast": "to _to_copy",
    "copy": (
        "copy_ clone contiguous cat stack pad constant_pad_nd repeat index index_select gather unfold roll im2col "
        "col2im grid_sampler_2d flip narrow_copy embedding embedding_bag _embedding_bag _embedding_bag_forward_only"
    ),
    "pooling": (
        "avg_pool2d avg_pool3d adaptive_avg_pool2d adaptive_avg_pool3d max_pool2d max_pool2d_with_indices mean sum"
    ),
}
OP_CATEGORY = {op: category for category, ops in _CATEGORY_OPS.items() for op in ops.split()}


def op_category(chain: Sequence[str]) -> str:
    """The kind of work of a timed event, given its operator and its callers (innermost first)."""
    kinds = [OP_CATEGORY.get(name.rpartition("::")[2]) for name in chain]
    if "cast" in kinds:
        return "cast"
    return next((kind for kind in reversed(kinds) if kind is not None), "other")


@dataclass(frozen=True)
class OpTime:
    """Milliseconds per call spent in one operator's own work, and the kind it was attributed to."""

    name: str
    category: str
    ms: float


@dataclass(frozen=True)
class Breakdown:
    """One model's time per call: by kind of work and by operator (largest first).

    ``wall_ms`` is measured without the profiler; the operator times come from the profiled calls.
    """

    device: str
    calls: int
    wall_ms: float
    category_ms: dict[str, float]
    ops: tuple[OpTime, ...]

    @property
    def op_total_ms(self) -> float:
        return sum(self.category_ms.values())

    def share(self, category: str) -> float:
        """Fraction of the operator time spent in `category`."""
        return self.category_ms[category] / self.op_total_ms if self.op_total_ms else 0.0


def _chain(event: FunctionEvent | None) -> list[str]:
    """The event's operator name, then its callers' (innermost first)."""
    names = []
    while event is not None:
        names.append(event.name)
        event = event.cpu_parent
    return names


def time_breakdown(
    fn: Callable[[], object],
    device: torch.device | str = "cpu",
    *,
    calls: int = 3,
    warmup: int = 1,
    inference: bool = True,
) -> Breakdown:
    """Profile `calls` calls of `fn` (after `warmup` untimed ones) and group their time by kind of work.

    With `inference=True` everything runs under `torch.inference_mode()`, as the timed benchmarks do.
    """
    if calls < 1 or warmup < 0:
        raise ValueError(f"calls must be >= 1 and warmup >= 0, got calls={calls}, warmup={warmup}")
    device = torch.device(device)
    on_gpu = device.type == "cuda"
    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if on_gpu else [])]
    with torch.inference_mode() if inference else nullcontext():
        for _ in range(warmup):
            fn()
        wall_s = seconds_per_call(fn, calls, device)
        with profile(activities=activities) as prof:
            seconds_per_call(fn, calls, device)
    by_category: dict[str, float] = dict.fromkeys(CATEGORIES, 0.0)
    by_op: dict[tuple[str, str], float] = defaultdict(float)
    for event in prof.events():
        if event.device_type != torch.autograd.DeviceType.CPU:
            continue  # kernels are counted through the operator that launched them
        microseconds = event.self_device_time_total if on_gpu else event.self_cpu_time_total
        if microseconds <= 0:
            continue
        category = op_category(_chain(event))
        by_category[category] += microseconds
        by_op[event.name, category] += microseconds
    per_call_ms = 1e-3 / calls
    ops = sorted((OpTime(name, kind, us * per_call_ms) for (name, kind), us in by_op.items()), key=lambda o: -o.ms)
    return Breakdown(
        device=device.type,
        calls=calls,
        wall_ms=wall_s * 1e3,
        category_ms={category: us * per_call_ms for category, us in by_category.items()},
        ops=tuple(ops),
    )


@dataclass(frozen=True)
class PointBreakdown:
    """The breakdown of every candidate at one sweep point, by label in measured order."""

    point: Point
    by_label: dict[str, Breakdown]


def breakdown_sweep(
    points: Sequence[Point],
    build_cases: Callable[[Point], Sequence[Case]],
    device: torch.device,
    calls: int = 3,
) -> list[PointBreakdown]:
    """Each point's candidates profiled one after another, with the pass (forward or training step) it times."""
    return [
        PointBreakdown(
            point,
            {
                case.label: time_breakdown(
                    timed_step(case.run, point.training), device, calls=calls, inference=not point.training
                )
                for case in build_cases(point)
            },
        )
        for point in points
    ]


def breakdown_table(point_breakdown: PointBreakdown) -> Table:
    """Kinds of work as rows; each candidate's milliseconds per call and share of its operator time as columns."""
    breakdowns = point_breakdown.by_label.values()
    on_gpu = any(b.device == "cuda" for b in breakdowns)
    total = "kernel time" if on_gpu else "operator time"
    table = Table(title=f"{describe(point_breakdown.point)}: {total} by kind of work, per call")
    table.add_column("kind of work")
    for label in point_breakdown.by_label:
        table.add_column(f"{label} ms", justify="right")
        table.add_column("share", justify="right")
    for category in (c for c in CATEGORIES if any(b.category_ms[c] > 0 for b in breakdowns)):
        table.add_row(
            category,
            *(cell for b in breakdowns for cell in (f"{b.category_ms[category]:.2f}", f"{b.share(category):.0%}")),
        )
    table.add_row(total, *(cell for b in breakdowns for cell in (f"{b.op_total_ms:.2f}", "100%")))
    table.add_row(
        f"wall; {total} / wall",
        *(cell for b in breakdowns for cell in (f"{b.wall_ms:.2f}", f"{b.op_total_ms / b.wall_ms:.0%}")),
    )
    return table


def top_ops_lines(point_breakdown: PointBreakdown, count: int = 6) -> list[str]:
    """One line per candidate: its `count` most expensive operators, with their kind and share."""
    return [
        f"{label}: " + ", ".join(f"{op.name} [{op.category}] {op.ms / b.op_total_ms:.0%}" for op in b.ops[:count])
        for label, b in point_breakdown.by_label.items()
    ]


def print_breakdowns(breakdowns: Sequence[PointBreakdown], console: Console) -> None:
    """Each point's table, then each candidate's most expensive operators."""
    for point_breakdown in breakdowns:
        console.print(breakdown_table(point_breakdown))
        for line in top_ops_lines(point_breakdown):
            console.print(line, markup=False, highlight=False)
