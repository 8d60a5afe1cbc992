"""Parity of an exported model with eager PyTorch: the largest absolute difference per checked input size."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from hilovit.validation import each, interval

# fp32 exports must match eager PyTorch to this maximum absolute difference.
DEFAULT_TOLERANCE = 1e-4


@dataclass(frozen=True)
class SizeParity:
    """One checked input: its shape, the number of output tensors and their largest absolute difference."""

    input_shape: tuple[int, ...]
    outputs: int
    max_abs_diff: float


@dataclass(frozen=True)
class ParityReport:
    """Eager PyTorch against an exported artifact (``runtime``: ``"onnxruntime"`` or ``"torch.export"``)."""

    model: str
    runtime: str
    tolerance: float
    checks: tuple[SizeParity, ...]

    @property
    def max_abs_diff(self) -> float:
        return max((check.max_abs_diff for check in self.checks), default=0.0)

    @property
    def passed(self) -> bool:
        return all(check.max_abs_diff <= self.tolerance for check in self.checks)

    def lines(self) -> list[str]:
        """Human-readable summary: one line per checked size, then the verdict."""
        lines = [f"{self.model}: {self.runtime} vs eager PyTorch (tolerance {self.tolerance:.0e})"]
        for check in self.checks:
            shape = "x".join(map(str, check.input_shape))
            verdict = "ok" if check.max_abs_diff <= self.tolerance else "MISMATCH"
            lines.append(
                f"  input {shape}: {check.outputs} output(s), max abs diff {check.max_abs_diff:.3e}  {verdict}"
            )
        lines.append(f"  {'PASSED' if self.passed else 'FAILED'}: max abs diff {self.max_abs_diff:.3e}")
        return lines


@dataclass(frozen=True)
class ExportResult:
    """An exported file and, unless the check was skipped, its parity with eager PyTorch."""

    path: Path
    parity: ParityReport | None


class ParityError(RuntimeError):
    """An exported artifact disagrees with eager PyTorch beyond the tolerance. The message is one line (the
    worst input); ``report`` has the per-size details (``report.lines()``)."""

    def __init__(self, report: ParityReport, path: str) -> None:
        worst = max(report.checks, key=lambda check: check.max_abs_diff)
        shape = "x".join(map(str, worst.input_shape))
        super().__init__(
            f"{report.model}: {report.runtime} differs from eager PyTorch by {worst.max_abs_diff:.3e} at input "
            f"{shape}, above the tolerance {report.tolerance:.0e}; exported file kept for inspection: {path}"
        )
        self.report = report


def flatten_outputs(output: object) -> list[Tensor]:
    """The tensors of a model output in a fixed order: a tensor, or (nested) lists, tuples and dicts of them."""
    if isinstance(output, Tensor):
        return [output]
    if isinstance(output, Mapping):
        return [t for value in output.values() for t in flatten_outputs(value)]
    if isinstance(output, Sequence) and not isinstance(output, str):
        return [t for value in output for t in flatten_outputs(value)]
    raise TypeError(f"model outputs must be tensors or lists/tuples/dicts of tensors, got {type(output).__name__}")


def default_sizes(height: int, width: int) -> list[tuple[int, int]]:
    """The example's size, then a smaller and a larger non-square size with odd sides (other padding everywhere)."""
    return [(height, width), ((height * 3 // 4) | 1, (width // 2) | 1), ((height * 5 // 4) | 1, (width * 3 // 4) | 1)]


def check_inputs(example: Tensor, sizes: Sequence[tuple[int, int]], batch: int, seed: int = 0) -> list[Tensor]:
    """Random inputs of the example's channels and dtype at each ``(height, width)`` of ``sizes``."""
    generator = torch.Generator().manual_seed(seed)
    channels = example.shape[1]
    return [torch.randn(batch, channels, h, w, generator=generator, dtype=example.dtype) for h, w in sizes]


def measure_parity(
    model_name: str,
    runtime: str,
    eager: Callable[[Tensor], object],
    exported: Callable[[Tensor], Sequence[Tensor]],
    inputs: Sequence[Tensor],
    tolerance: float = DEFAULT_TOLERANCE,
) -> ParityReport:
    """Run ``eager`` and ``exported`` on every input and record the largest absolute output difference."""
    checks = []
    for x in inputs:
        with torch.inference_mode():
            expected = flatten_outputs(eager(x))
        actual = list(exported(x))
        if len(actual) != len(expected):
            raise ValueError(f"{runtime} returned {len(actual)} outputs for {model_name}, eager {len(expected)}")
        diff = 0.0
        for want, got in zip(expected, actual, strict=True):
            if tuple(got.shape) != tuple(want.shape):
                diff = float("inf")  # a wrong shape is a mismatch, reported as such
                break
            diff = max(diff, (got.double() - want.double()).abs().max().item() if want.numel() else 0.0)
        checks.append(SizeParity(tuple(x.shape), len(expected), diff))
    return ParityReport(model_name, runtime, tolerance, tuple(checks))


# A (height, width) pair of ints >= 2, the least a dynamic side may be.
_SIZE = each(interval(2, integer=True), length=2)
_BATCHES = each(interval(1, integer=True))
#: Parity check batches: one and more than the example's two, so that a batch fixed by the trace shows.
DEFAULT_CHECK_BATCHES = (1, 3)


def check_export_sizes(sizes: Sequence[tuple[int, int]] | None) -> None:
    """Raise ValueError naming the bad value unless ``sizes`` is None or a non-empty sequence of size pairs."""
    if sizes is None:
        return
    if isinstance(sizes, str) or not isinstance(sizes, Sequence) or not sizes:
        raise ValueError(
            f"sizes={sizes!r}: expected a non-empty sequence of (height, width) pairs of ints >= 2, "
            "e.g. [(224, 224), (97, 131)]"
        )
    for size in sizes:
        if not _SIZE.accepts(size):
            raise ValueError(f"sizes={sizes!r}: entry {size!r} is not a (height, width) pair of ints >= 2")


def check_batches(batches: int | Sequence[int]) -> tuple[int, ...]:
    """The parity check batches as a tuple (one int is one batch); ValueError naming a bad one."""
    batches = (batches,) if isinstance(batches, int) else tuple(batches)
    if not _BATCHES.accepts(list(batches)):
        raise ValueError(f"the parity check batches must be {_BATCHES.expected}, got {batches!r}")
    return batches


def check_settings(
    batches: int | Sequence[int], tolerance: float, sizes: Sequence[tuple[int, int]] | None = None
) -> tuple[int, ...]:
    """Raise ValueError naming the bad value, before a (long) export, unless the check can run; returns the
    check batches as a tuple."""
    if not tolerance >= 0:
        raise ValueError(f"the parity tolerance must be >= 0, got {tolerance!r}")
    check_export_sizes(sizes)
    return check_batches(batches)


def verify(
    model: Callable[[Tensor], object],
    model_name: str,
    runtime: str,
    exported: Callable[[Tensor], Sequence[Tensor]],
    example: Tensor,
    path: Path,
    sizes: Sequence[tuple[int, int]] | None = None,
    batches: Sequence[int] = DEFAULT_CHECK_BATCHES,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ParityReport:
    """Parity of ``exported`` with ``model`` at every batch of ``batches`` and size of ``sizes`` (default
    :func:`default_sizes` of the example).

    Raises:
        ParityError: a difference exceeds ``tolerance`` (the exported file at ``path`` is kept).
    """
    sizes = default_sizes(*example.shape[-2:]) if sizes is None else list(sizes)
    inputs = [x for batch in batches for x in check_inputs(example, sizes, batch, seed=batch)]
    report = measure_parity(model_name, runtime, model, exported, inputs, tolerance)
    if not report.passed:
        raise ParityError(report, str(path))
    return report
