"""The `hilovit` command."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

import torch

from hilovit.dense.commands import add_commands as add_dense_commands
from hilovit.export.cli import add_commands as add_export_commands
from hilovit.speed import environment
from hilovit.speed.cli import add_commands as add_speed_commands
from hilovit.train.checkpoint import TrainCheckpointError
from hilovit.train.commands import (
    add_demo_arguments,
    add_eval_arguments,
    add_train_arguments,
    demo_command,
    eval_command,
    train_command,
)
from hilovit.train.task_commands import add_commands as add_task_commands
from hilovit.yolo.cli import add_commands as add_yolo_commands

TRACEBACK_VARIABLE = "HILOVIT_TRACEBACK"
#: What bad input raises (config, dataset and checkpoint errors derive from these): reported in one line.
USER_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
    TrainCheckpointError,
)
EPILOG = (
    "Errors in what you pass (values, paths, checkpoints) are reported in one line, exit status 2; "
    f"set {TRACEBACK_VARIABLE}=1 to see the Python traceback instead."
)


def _info(args: argparse.Namespace) -> None:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    report = environment(device) | {
        "cuda_available": torch.cuda.is_available(),
        "mkldnn": torch.backends.mkldnn.is_available(),
    }
    print(json.dumps(report, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in report.items()))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hilovit", description="HiLo attention and LITv2 vision transformers.", epilog=EPILOG
    )
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="versions, device and threads that measurements depend on")
    info.add_argument("--json", action="store_true", help="print as JSON")
    info.set_defaults(run=_info)
    train = commands.add_parser("train", help="train a classifier from a YAML recipe plus key=value overrides")
    add_train_arguments(train)
    train.set_defaults(run=train_command)
    evaluate = commands.add_parser("eval", help="top-1/top-5 and confusion matrix of a checkpoint on a dataset")
    add_eval_arguments(evaluate)
    evaluate.set_defaults(run=eval_command)
    demo = commands.add_parser("demo", help="LITv2-nano with HiLo vs global MSA on Fashion-MNIST, same time budget")
    add_demo_arguments(demo)
    demo.set_defaults(run=demo_command)
    add_speed_commands(commands)
    add_export_commands(commands)
    add_dense_commands(commands)
    add_task_commands(commands)
    add_yolo_commands(commands)
    return parser


def run_command(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> None:
    """Parse ``argv`` and run the chosen command; a :data:`USER_ERRORS` exception ends it with
    ``<prog>: error: <message>`` on stderr and exit status 2 (the traceback when HILOVIT_TRACEBACK=1)."""
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except USER_ERRORS as error:
        if os.environ.get(TRACEBACK_VARIABLE, "0") not in ("", "0"):
            raise
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from error


def main(argv: Sequence[str] | None = None) -> None:
    run_command(build_parser(), argv)


if __name__ == "__main__":
    main()
