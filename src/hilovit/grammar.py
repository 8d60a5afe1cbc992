"""The one command grammar: the same concept has the same flag, type, check and help in every subcommand.

A subcommand asks for the flags it takes by concept (:func:`add_flags`); :data:`FLAGS` is the table the README
shows. :class:`Parser` reports every argument error as one line ``hilovit: error: ...`` with exit status 2, and
shows each flag's default in ``--help``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import torch

from hilovit.validation import NON_NEGATIVE, POSITIVE, Rule, interval

__all__ = [
    "AMP_CHOICES",
    "FLAGS",
    "Flag",
    "Parser",
    "add_command",
    "add_flags",
    "argument_type",
    "autocast_dtype",
    "comma_list",
    "prepare_output_file",
    "resolve_device",
]

PROG = "hilovit"
AMP_CHOICES = ("off", "bf16", "fp16")
_AMP_DTYPES = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``hilovit: error: <command>: <message>``, exit 2) and defaults in help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix(PROG).strip()
        where = f"{command}: " if command else ""
        print(f"{PROG}: error: {where}{message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


def add_command(commands: argparse._SubParsersAction, name: str, help: str, **kwargs: Any) -> Parser:
    """A subcommand parser of the grammar's class (one-line errors, defaults in ``--help``)."""
    return commands.add_parser(name, help=help, description=kwargs.pop("description", help), **kwargs)


def argument_type(kind: Callable[[str], Any], rule: Rule) -> Callable[[str], Any]:
    """An argparse ``type``: ``kind(text)`` checked by ``rule``; a bad value is reported with its flag."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = text
        if not rule.accepts(value):
            raise argparse.ArgumentTypeError(f"expected {rule.expected}, got {text!r}")
        return value

    parse.__name__ = f"{kind.__name__} {rule.expected}"
    return parse


def comma_list(item: Callable[[str], Any]) -> Callable[[str], tuple[Any, ...]]:
    """An argparse ``type`` for a sweep: ``"224,256"`` -> ``(224, 256)``, each item parsed (and checked) by
    ``item``; a bad item is reported with the whole value."""

    def parse(text: str) -> tuple[Any, ...]:
        items = [part.strip() for part in text.split(",")]
        if not all(items):
            raise argparse.ArgumentTypeError(f"expected a comma list such as 224,256 (no empty item), got {text!r}")
        try:
            return tuple(item(part) for part in items)
        except (argparse.ArgumentTypeError, ValueError) as error:
            raise argparse.ArgumentTypeError(f"{error} in the comma list {text!r}") from None

    parse.__name__ = f"comma list of {item.__name__}"
    return parse


POSITIVE_INT = argument_type(int, interval(1, integer=True))
NON_NEGATIVE_INT = argument_type(int, interval(0, integer=True))
FINITE_POSITIVE = Rule(lambda value: POSITIVE.accepts(value) and value != float("inf"), "a finite number > 0")
POSITIVE_SECONDS = argument_type(float, FINITE_POSITIVE)
NON_NEGATIVE_FLOAT = argument_type(float, NON_NEGATIVE)
POSITIVE_INTS = comma_list(POSITIVE_INT)


def prepare_output_file(path: str | os.PathLike[str] | None) -> Path | None:
    """Make ``path`` writable before any work is done: create its parent folder, refuse a directory. Commands
    call it on every output file they were given, so a long run never ends unable to save its results.

    Raises:
        IsADirectoryError: ``path`` is a directory.
        NotADirectoryError / PermissionError / OSError: the parent folder cannot be made or written.
    """
    if path is None:
        return None
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"output {path} is a directory: expected a file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise type(error)(f"cannot make the folder of output {path}: {error.strerror or error}") from None
    if not os.access(path.parent, os.W_OK):
        raise PermissionError(f"cannot write output {path}: folder {path.parent} is not writable")
    return path


def resolve_device(text: str | None) -> torch.device:
    """``auto`` (or None): CUDA when present, else the CPU; ``cpu``, ``cuda``, ``cuda:N``, ``mps`` when this
    machine has them. A ValueError names the device and what this machine offers."""
    if text is None or text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    available = ["auto", "cpu"]
    if torch.cuda.is_available():
        available += ["cuda"] + [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        available.append("mps")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise ValueError(f"device {text!r} is not a torch device; this machine has: {', '.join(available)}") from None
    usable = (
        device.type == "cpu"
        or (device.type == "cuda" and "cuda" in available and (device.index or 0) < torch.cuda.device_count())
        or (device.type == "mps" and "mps" in available)
    )
    if not usable:
        raise ValueError(f"device {text!r} is not available on this machine; it has: {', '.join(available)}")
    return device


def _device(text: str) -> str:
    try:
        resolve_device(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def autocast_dtype(amp: str) -> torch.dtype | None:
    """The autocast dtype of an ``--amp`` value (None for ``off``)."""
    if amp not in _AMP_DTYPES:
        raise ValueError(f"amp must be one of {', '.join(AMP_CHOICES)}, got {amp!r}")
    return _AMP_DTYPES[amp]


@dataclass(frozen=True)
class Flag:
    """One concept of the grammar: its flag and the argparse options every subcommand gives it."""

    flag: str
    help: str
    options: dict[str, Any] = field(default_factory=dict)


#: concept -> flag. The README's grammar table lists these; subcommands pick theirs with :func:`add_flags`.
FLAGS: dict[str, Flag] = {
    "model": Flag("--model", "model name (`hilovit models` lists them)"),
    "data": Flag("--data", "dataset: a bundled name or a directory"),
    "img_size": Flag("--img-size", "image side in pixels", {"type": POSITIVE_INT}),
    "batch_size": Flag("--batch-size", "images per batch", {"type": POSITIVE_INT}),
    "epochs": Flag("--epochs", "passes over the training data", {"type": POSITIVE_INT}),
    "time_budget": Flag("--time-budget", "seconds of training, then a clean stop", {"type": POSITIVE_SECONDS}),
    "max_steps": Flag("--max-steps", "optimizer steps, then a clean stop", {"type": POSITIVE_INT}),
    "output": Flag("--output", "output directory", {"type": Path}),
    "exist_ok": Flag("--exist-ok", "allow writing into a non-empty output directory", {"action": "store_true"}),
    "device": Flag("--device", "auto (CUDA when present), cpu, cuda or cuda:N", {"type": _device, "default": "auto"}),
    "amp": Flag("--amp", "mixed precision", {"choices": AMP_CHOICES, "default": "off"}),
    "seed": Flag("--seed", "random seed", {"type": NON_NEGATIVE_INT, "default": 0}),
    "resume": Flag(
        "--resume", "continue a run from its checkpoint (no value: OUTPUT/last.pt)", {"nargs": "?", "const": ""}
    ),
    "workers": Flag("--workers", "data-loading processes", {"type": NON_NEGATIVE_INT, "default": 0}),
    "json": Flag("--json", "also write the results to this JSON file", {"type": Path}),
    "csv": Flag("--csv", "also write one line per result row to this CSV file", {"type": Path}),
    "plots": Flag("--plots", "also write PNG plots into this folder", {"type": Path}),
    "threads": Flag("--threads", "intra-op CPU threads while measuring (None: torch's)", {"type": POSITIVE_INT}),
    "warmup": Flag("--warmup", "untimed calls per candidate first", {"type": NON_NEGATIVE_INT, "default": 2}),
    "repeats": Flag("--repeats", "timed samples per candidate, interleaved", {"type": POSITIVE_INT, "default": 7}),
}


def add_flags(parser: argparse.ArgumentParser, *concepts: str, **overrides: Any) -> None:
    """Add the grammar's flags for ``concepts``; ``overrides`` (``<concept>_default=...``,
    ``<concept>_help=...``, ``<concept>_required=...``, ``<concept>_choices=...``) adjust them for this subcommand,
    and ``<concept>_aliases=("--imgsz",)`` adds further spellings of the flag (another tool's, which its users type)."""
    unknown = sorted(set(concepts) - set(FLAGS))
    if unknown:
        raise ValueError(f"unknown grammar concept(s) {', '.join(unknown)}; known: {', '.join(FLAGS)}")
    for concept in concepts:
        spec = FLAGS[concept]
        options = dict(spec.options)
        options["help"] = overrides.pop(f"{concept}_help", spec.help)
        for key in ("default", "required", "choices", "type"):
            if f"{concept}_{key}" in overrides:
                options[key] = overrides.pop(f"{concept}_{key}")
        if options.get("action") != "store_true" and "default" not in options:
            options["default"] = None
        parser.add_argument(spec.flag, *overrides.pop(f"{concept}_aliases", ()), **options)
    if overrides:
        raise ValueError(f"unknown add_flags option(s) {', '.join(sorted(overrides))}")
