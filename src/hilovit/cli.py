"""The `hilovit` command (also `python -m hilovit`): one parser of the grammar's class for every subcommand."""

from __future__ import annotations

import argparse
import json
import os
import runpy
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from hilovit.export.capture import ExportError
from hilovit.export.cli import add_export_commands
from hilovit.export.parity import ParityError
from hilovit.grammar import Parser, add_command, add_flags, prepare_output_file
from hilovit.models import list_models
from hilovit.models.registry import TASKS
from hilovit.speed import environment
from hilovit.speed.cli import add_bench_commands
from hilovit.train.checkpoint import TrainCheckpointError
from hilovit.train.commands import add_training_commands
from hilovit.yolo.cli import add_yolo_commands

TRACEBACK_VARIABLE = "HILOVIT_TRACEBACK"
#: What bad input raises (config, dataset and checkpoint errors derive from these), and what writing an output
#: can meet (a full disk, a folder without write permission): reported in one line.
USER_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    OSError,
    TrainCheckpointError,
    ExportError,
    ParityError,
)
EPILOG = (
    "Errors in what you pass (values, paths, checkpoints) are reported in one line, exit status 2; "
    f"set {TRACEBACK_VARIABLE}=1 to see the Python traceback instead."
)


def _info(args: argparse.Namespace) -> None:
    prepare_output_file(args.json)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    report = environment(device) | {
        "cuda_available": torch.cuda.is_available(),
        "mkldnn": torch.backends.mkldnn.is_available(),
    }
    print("\n".join(f"{key}: {value}" for key, value in report.items()))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


def _models(args: argparse.Namespace) -> None:
    names = list_models(args.pattern, task=args.task)
    if not names:
        raise ValueError(f"no model matches {args.pattern!r}" + (f" for task {args.task}" if args.task else ""))
    print("\n".join(names))


def _timm(args: argparse.Namespace) -> None:
    """Run ``args.script`` as ``__main__`` with hilovit's models registered (``import hilovit`` did that), and
    ``sys.argv`` / ``sys.path[0]`` as ``python SCRIPT ARGS`` would set them."""
    script: Path = args.script
    if not script.is_file():
        raise ValueError(
            f"no script at {str(script)!r}: expected the path of one of timm's scripts (train.py, validate.py, "
            "benchmark.py, onnx_export.py, ... of a pytorch-image-models checkout; timm's wheel does not ship them)"
        )
    sys.argv = [str(script), *args.script_args]
    sys.path.insert(0, str(script.resolve().parent))
    runpy.run_path(str(script), run_name="__main__")


def build_parser() -> argparse.ArgumentParser:
    """The `hilovit` parser: every subcommand a :class:`~hilovit.grammar.Parser` (one-line errors, defaults
    in ``--help``)."""
    parser = Parser(prog="hilovit", description="HiLo attention and LITv2 vision transformers.", epilog=EPILOG)
    commands = parser.add_subparsers(dest="command", required=True)
    info = add_command(commands, "info", help="versions, device and threads that measurements depend on")
    add_flags(info, "json")
    info.set_defaults(run=_info)
    models = add_command(commands, "models", help="list the model names hilovit builds (the one registry)")
    models.add_argument("pattern", nargs="?", default="*", help="shell-style pattern, e.g. '*nano*'")
    models.add_argument(
        "--task",
        choices=TASKS,
        default=None,
        help="only the models of this task",
    )
    models.set_defaults(run=_models)
    timm_script = add_command(
        commands, "timm", help="run one of timm's scripts (train.py, validate.py, ...) with hilovit's models"
    )
    timm_script.add_argument("script", type=Path, help="path of the script, e.g. pytorch-image-models/train.py")
    timm_script.add_argument("script_args", nargs=argparse.REMAINDER, help="the script's own arguments")
    timm_script.set_defaults(run=_timm)
    add_training_commands(commands)
    add_bench_commands(commands)
    add_export_commands(commands)
    add_yolo_commands(commands)
    return parser


def run_command(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> None:
    """Parse ``argv`` and run the chosen command; a :data:`USER_ERRORS` exception ends it with one line
    ``<prog>: error: <message>`` on stderr and exit status 2 (the traceback when HILOVIT_TRACEBACK=1)."""
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except USER_ERRORS as error:
        if os.environ.get(TRACEBACK_VARIABLE, "0") not in ("", "0"):
            raise
        print(f"{parser.prog}: error: {one_line(str(error))}", file=sys.stderr)
        raise SystemExit(2) from error


def one_line(message: str) -> str:
    """``message`` on one line: its non-blank lines, stripped, joined by ``"; "`` (an error from a library
    can span lines; the CLI's error report never does)."""
    return "; ".join(line.strip() for line in message.splitlines() if line.strip())


def main(argv: Sequence[str] | None = None) -> None:
    run_command(build_parser(), argv)


if __name__ == "__main__":
    main()
