"""Argument and input checks shared by the HiLo layers and the LITv2 models.

Each raises a TypeError (wrong kind of value) or ValueError (value out of range) whose message names the
argument, the bad value and what was expected. The checks that run on every forward are plain Python
comparisons on shapes and dtypes: no device synchronisation, no copies, nothing a tracer
(torch.compile, torch.export, ONNX export, jit tracing) has to record.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from hilovit.validation import Rule

__all__ = ["check_dtype", "check_int", "check_int_sequence", "check_number", "check_sizes", "dtype_name"]


def _is_int(value: object) -> bool:
    if isinstance(value, Tensor):  # torch.jit.trace records a tensor's sizes as 0-d integer tensors
        return torch.jit.is_tracing() and value.dim() == 0 and not value.is_floating_point()
    # SymInt: the sizes of a tensor that torch.compile / torch.export trace with dynamic shapes
    return isinstance(value, (int, torch.SymInt)) and not isinstance(value, bool)


def _described(value: object) -> str:
    return f"{value!r} ({type(value).__name__})"


def check_int(name: str, value: object, minimum: int | None = None) -> None:
    """``value`` must be an int (not a bool), and ``>= minimum`` when one is given."""
    if not _is_int(value):
        raise TypeError(f"{name} must be an int, got {_described(value)}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def check_int_sequence(name: str, values: object, minimum: int) -> None:
    """``values`` must be a sequence (list, tuple) of ints, each ``>= minimum``."""
    if isinstance(values, str) or not isinstance(values, Sequence) or not all(map(_is_int, values)):
        raise TypeError(f"{name} must be a sequence of ints (one per stage), got {_described(values)}")
    if any(v < minimum for v in values):
        raise ValueError(f"{name} entries must be >= {minimum}, got {tuple(values)}")


def check_number(name: str, value: object, rule: Rule) -> None:
    """``value`` must be a real number (not a bool; TypeError) that ``rule`` accepts (ValueError), e.g.
    :data:`hilovit.validation.PROBABILITY`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number {rule.expected}, got {_described(value)}")
    rule.check(name, value)


def check_sizes(owner: str, sizes: Mapping[str, object]) -> None:
    """Spatial sizes (e.g. ``{"H": H, "W": W}``) must be ints ``>= 1``; ``owner`` names the caller."""
    if all(map(_is_int, sizes.values())) and all(value >= 1 for value in sizes.values()):
        return  # the every-forward case: no message is built
    names = list(sizes)
    shown = ", ".join(f"{name}={value!r}" for name, value in sizes.items())
    if not all(map(_is_int, sizes.values())):
        listed = f"{', '.join(names[:-1])} and {names[-1]}" if len(names) > 1 else names[0]
        kinds = ", ".join(type(value).__name__ for value in sizes.values())
        raise TypeError(f"{owner}: {listed} must be ints, got {shown} ({kinds})")
    raise ValueError(f"{owner} needs {', '.join(names)} >= 1, got {shown}")


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``"float32"``."""
    return str(dtype).removeprefix("torch.")


def _autocast_takes(x: Tensor) -> bool:
    return x.is_floating_point() and x.dtype != torch.float64 and torch.is_autocast_enabled(x.device.type)


def check_dtype(x: Tensor, weight: Tensor, who: str, what: str) -> None:
    """``x`` must have ``weight``'s dtype, or under ``torch.autocast`` a floating dtype that autocast casts (any but
    float64, which autocast leaves alone).

    With ``who="HiLo", what="a floating-point input"`` the message reads "HiLo expects a floating-point
    input with the model's dtype float32, got float64: ..." and says how to fix it.
    """
    if x.dtype == weight.dtype or _autocast_takes(x):
        return
    want, got = dtype_name(weight.dtype), dtype_name(x.dtype)
    if x.is_floating_point():
        fix = f"cast the input (.to(torch.{want})) or the model (.to(torch.{got})), or run under torch.autocast"
    else:
        fix = f"convert it first (e.g. x.to(torch.{want}), scaled and normalised as in training)"
    raise TypeError(f"{who} expects {what} with the model's dtype {want}, got {got}: {fix}")
