"""Rules for values a user passes (layer and model arguments, config keys, dataset options), with one message
format for a bad one: ``<name> must be <what is expected>, got <value>``."""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FINITE",
    "FRACTION",
    "MAPPING",
    "NON_NEGATIVE",
    "POSITIVE",
    "PROBABILITY",
    "Rule",
    "each",
    "interval",
    "one_of",
    "unknown_name",
]


@dataclass(frozen=True)
class Rule:
    """What a value must be: ``accepts`` says whether it is, ``expected`` completes "must be ..."."""

    accepts: Callable[[Any], bool]
    expected: str

    def check(self, name: str, value: Any, error: type[Exception] = ValueError) -> None:
        """Raise ``error`` naming ``name``, the value and what was expected, unless the rule accepts ``value``."""
        if not self.accepts(value):
            raise error(f"{name} must be {self.expected}, got {value!r}")


MAPPING = Rule(lambda value: isinstance(value, dict), "a mapping")


def _is_number(value: Any, integer: bool) -> bool:
    kind = numbers.Integral if integer else numbers.Real  # numpy's scalars too
    return isinstance(value, kind) and not isinstance(value, bool) and value == value  # NaN is no number


def _bounds(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high}"
    return ""


def interval(
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
) -> Rule:
    """Numbers from ``low`` to ``high`` (None: unbounded; ``*_open``: the bound itself excluded), integers only
    when ``integer``. Without ``integer`` the message names only the bounds (the type is checked elsewhere)."""

    def accepts(value: Any) -> bool:
        if not _is_number(value, integer):
            return False
        above = low is None or (value > low if low_open else value >= low)
        return above and (high is None or (value < high if high_open else value <= high))

    bounds = _bounds(low, high, low_open, high_open)
    kind = "an integer" if integer else ("a number" if not bounds else "")
    return Rule(accepts, " ".join(part for part in (kind, bounds) if part))


def one_of(choices: Iterable[Any]) -> Rule:
    """One of ``choices``."""
    options = tuple(choices)
    return Rule(lambda value: value in options, f"one of {', '.join(map(repr, options))}")


def each(rule: Rule, length: int | None = None) -> Rule:
    """A non-empty list or tuple (of exactly ``length`` items when given) whose every item ``rule`` accepts."""

    def accepts(value: Any) -> bool:
        if not isinstance(value, list | tuple) or not value or (length is not None and len(value) != length):
            return False
        return all(rule.accepts(item) for item in value)

    size = "a non-empty list" if length is None else f"a list of {length} items"
    return Rule(accepts, f"{size}, each {rule.expected}")


PROBABILITY = interval(0, 1)
FRACTION = interval(0, 1, high_open=True)  # a dropout or drop-path rate, label smoothing
POSITIVE = interval(0, low_open=True)
NON_NEGATIVE = interval(0)
FINITE = Rule(lambda value: _is_number(value, False) and math.isfinite(value), "a finite number")


def unknown_name(kind: str, name: str, known: Iterable[str]) -> str:
    """The message for a name that is not one of ``known``: ``unknown <kind> 'nmae' (did you mean 'name'?);
    known: ...`` (the close matches first, then every known name)."""
    options = sorted(known)
    close = difflib.get_close_matches(name, options, n=3, cutoff=0.6)
    hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
    return f"unknown {kind} {name!r}{hint}; known: {', '.join(options)}"
