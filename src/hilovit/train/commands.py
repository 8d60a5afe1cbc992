"""The ``train``, ``eval`` and ``demo`` commands: their arguments and what they run."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from hilovit.train.config import load_config

CLASSIFICATION_DATA_HELP = "dataset directory: IDX files or ImageFolder train/ + val/ (default: Fashion-MNIST)"


def add_train_arguments(
    parser: argparse.ArgumentParser,
    data_help: str = CLASSIFICATION_DATA_HELP,
    recipe_help: str = "the built-in ImageNet recipe",
) -> None:
    """The arguments of ``hilovit train`` (and of the video/volume ``train``, whose data and recipe differ)."""
    parser.add_argument("recipe", nargs="?", help=f"YAML recipe from configs/ (default: {recipe_help})")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, values parsed as YAML")
    parser.add_argument("--data", help=data_help)
    parser.add_argument("--output", help="run directory (checkpoint last.pt, log.csv, curves.png, model.safetensors)")
    parser.add_argument("--resume", nargs="?", const="", help="continue from a checkpoint (default: OUTPUT/last.pt)")
    parser.add_argument("--time-budget", type=float, help="seconds of training before stopping cleanly and evaluating")
    parser.add_argument("--max-steps", type=int, help="stop (with a checkpoint) after this many optimizer steps")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")


def _flag_overrides(args: argparse.Namespace) -> list[str]:
    flags = {"data": args.data, "output": args.output, "time_budget": args.time_budget, "max_steps": args.max_steps}
    overrides = [f"{key}={json.dumps(value)}" for key, value in flags.items() if value is not None]
    return overrides + (["compile=true"] if args.compile else [])


def train_command(args: argparse.Namespace) -> None:
    from hilovit.train.loop import Trainer, train
    from hilovit.train.report import print_table
    from hilovit.train.tasks import TASK_TRAINERS

    items = list(args.overrides)
    # `hilovit train lr=1e-3 ...`: no recipe, the first positional is already an override
    if args.recipe and "=" in args.recipe and not args.recipe.endswith((".yaml", ".yml")):
        items.insert(0, args.recipe)
        args.recipe = getattr(args, "default_recipe", None)
    cfg = load_config(args.recipe, items + _flag_overrides(args))
    if args.resume is not None:
        cfg.resume = args.resume or str(Path(cfg.output) / "last.pt")
    result = train(cfg, TASK_TRAINERS.get(getattr(args, "task", None), Trainer))  # `hilovit video|volume train`
    if int(os.environ.get("RANK", "0")) == 0:
        print_table(f"{cfg.model}: outputs in {result.output}", {cfg.model: result.summary()})


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("weights", help="a training checkpoint (last.pt), hilovit .safetensors or an official .pth")
    parser.add_argument("--model", help="timm model name (default: the checkpoint's; required for other weights)")
    parser.add_argument("--model-kwargs", default="{}", help="YAML mapping of model arguments, e.g. '{patch_size: 2}'")
    parser.add_argument("--data", help="dataset directory (default: Fashion-MNIST)")
    parser.add_argument("--img-size", type=int, help="evaluation image size (default: the checkpoint's, else 224)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--output", default="runs/eval", help="directory for confusion.png and eval.json")


def eval_command(args: argparse.Namespace) -> None:
    from hilovit.train.evaluation import evaluate_weights

    report = evaluate_weights(
        args.weights,
        model=args.model,
        model_kwargs=args.model_kwargs,
        data=args.data,
        img_size=args.img_size,
        batch_size=args.batch_size,
        output=args.output,
    )
    print(json.dumps(report, indent=2))


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    from hilovit.train.demo import DEMO_RECIPE

    parser.add_argument("overrides", nargs="*", metavar="key=value", help="overrides of the demo recipe")
    parser.add_argument("--recipe", default=str(DEMO_RECIPE), help="recipe of the HiLo run")
    parser.add_argument("--time-budget", type=float, help="seconds of training per network (recipe: 300)")


def demo_command(args: argparse.Namespace) -> None:
    from hilovit.train.demo import run_demo

    budget = [f"time_budget={args.time_budget}"] if args.time_budget is not None else []
    run_demo(args.recipe, [*args.overrides, *budget])
