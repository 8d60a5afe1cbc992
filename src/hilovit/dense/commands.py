"""``hilovit detect train|eval|predict`` and ``hilovit segment train|eval|predict``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

Number = TypeVar("Number", int, float)

DEFAULT_MODELS = {"detect": "retinanet_litv2_nano", "segment": "semantic_fpn_litv2_nano"}
DESCRIPTIONS = {
    "detect": "object detection (RetinaNet / Faster R-CNN / Mask R-CNN on LITv2, COCO AP)",
    "segment": "semantic segmentation (Semantic FPN on LITv2, mIoU)",
}


def positive(kind: type[Number]) -> Callable[[str], Number]:
    """An argparse ``type``: ``kind(text)`` if that is > 0, else an error that argparse reports with the option."""

    def parse(text: str) -> Number:
        error = argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}")
        try:
            value = kind(text)
        except ValueError:
            raise error from None
        if not value > 0:  # also rejects nan
            raise error
        return value

    return parse


POSITIVE_INT, POSITIVE_FLOAT = positive(int), positive(float)


def _add_train_arguments(parser: argparse.ArgumentParser, task: str) -> None:
    parser.add_argument("--model", default=DEFAULT_MODELS[task], help="<family>_<nano|tiny|s|m|b>")
    parser.add_argument("--fpn", choices=("plain", "hilo"), default="plain", help="torchvision's FPN or HiLo-FPN")
    if task == "detect":
        parser.add_argument("--hilo-head", action="store_true", help="HiLo block in front of the RetinaNet head")
    parser.add_argument("--data", help="'scenes' (default, generated on first use), 'treecrowns' or a directory")
    parser.add_argument(
        "--img-size", type=POSITIVE_INT, help="image side (default: 256 for scenes, 400 for tree crowns)"
    )
    parser.add_argument("--scene-images", type=POSITIVE_INT, nargs=2, default=(1000, 100), metavar=("TRAIN", "VAL"))
    parser.add_argument("--epochs", type=POSITIVE_INT, default=12)
    parser.add_argument(
        "--budget-s", type=POSITIVE_FLOAT, help="seconds of training before stopping cleanly and evaluating"
    )
    parser.add_argument(
        "--max-steps", type=POSITIVE_INT, help="stop (with a checkpoint) after this many optimizer steps"
    )
    parser.add_argument("--batch-size", type=POSITIVE_INT, default=4)
    parser.add_argument("--lr", type=POSITIVE_FLOAT, default=2e-4, help="AdamW learning rate (after a linear warm-up)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", default=f"runs/{task}", help="run directory (last.pt, log.csv, report.json)")
    parser.add_argument("--resume", nargs="?", const="", help="continue from a checkpoint (default: OUTPUT/last.pt)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def train_command(args: argparse.Namespace) -> None:
    from hilovit.dense.engine import HEADLINE, DenseConfig, DenseTrainer
    from hilovit.train.report import print_table

    resume = None if args.resume is None else args.resume or str(Path(args.output) / "last.pt")
    cfg = DenseConfig(
        task=args.task,
        model=args.model,
        fpn=args.fpn,
        hilo_head=getattr(args, "hilo_head", False),
        data=args.data,
        img_size=args.img_size,
        scene_images=tuple(args.scene_images),
        epochs=args.epochs,
        budget_s=args.budget_s,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        output=args.output,
        resume=resume,
        progress=args.progress,
    )
    report = DenseTrainer(cfg).fit()
    headline = {k: round(report["metrics"][k], 2) for k in HEADLINE[cfg.task]}
    print_table(f"{cfg.model}: outputs in {cfg.output}", {cfg.model: headline | {"steps": report["steps"]}})


def evaluate_checkpoint(checkpoint: str | Path, output: str | Path, data: str | None = None) -> dict[str, Any]:
    """Metrics of a checkpoint on the validation split of its data (or of ``data``), also written to
    ``output/eval.json``."""
    from hilovit.dense.data import detection_dataset, segmentation_dataset, split_directories
    from hilovit.dense.engine import evaluate_detection, evaluate_segmentation, load_model

    model, state = load_model(checkpoint)
    arch, config = state["arch"], state["config"]
    data = data or config["data"]
    val = split_directories(data, arch["img_size"], tuple(config["scene_images"]))["val"]
    if arch["task"] == "detect":
        dataset = detection_dataset(val, train=False, masks=arch["model"].startswith("maskrcnn"))
        metrics = evaluate_detection(model, dataset, config["batch_size"], next(model.parameters()).device)
    else:
        dataset = segmentation_dataset(val, train=False)
        metrics = evaluate_segmentation(model, dataset, config["batch_size"], next(model.parameters()).device)
    report = {"checkpoint": str(checkpoint), "data": data or "scenes", "step": state["step"], "metrics": metrics}
    Path(output).mkdir(parents=True, exist_ok=True)
    (Path(output) / "eval.json").write_text(json.dumps(report, indent=2))
    return report


def eval_command(args: argparse.Namespace) -> None:
    print(json.dumps(evaluate_checkpoint(args.checkpoint, args.output, args.data), indent=2))


def predict_command(args: argparse.Namespace) -> None:
    from hilovit.dense.predict import predict_images

    for path in predict_images(args.checkpoint, args.images, args.output, args.score_thresh):
        print(path)


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``detect`` and ``segment``, each with ``train``, ``eval`` and ``predict``."""
    for task, description in DESCRIPTIONS.items():
        parser = commands.add_parser(task, help=description)
        actions = parser.add_subparsers(dest="action", required=True)
        train = actions.add_parser("train", help=f"train {description}")
        _add_train_arguments(train, task)
        train.set_defaults(run=train_command, task=task)
        evaluate = actions.add_parser("eval", help="metrics of a checkpoint on the validation split")
        evaluate.add_argument("checkpoint", help=f"last.pt written by `hilovit {task} train`")
        evaluate.add_argument("--data", help="dataset (default: the checkpoint's)")
        evaluate.add_argument("--output", default=f"runs/{task}_eval", help="directory for eval.json")
        evaluate.set_defaults(run=eval_command)
        predict = actions.add_parser("predict", help="draw predictions on images and write PNGs")
        predict.add_argument("checkpoint", help=f"last.pt written by `hilovit {task} train`")
        predict.add_argument("images", nargs="+", help="image files or directories of images")
        predict.add_argument("--output", default=f"runs/{task}_predict", help="directory for the PNGs")
        predict.add_argument("--score-thresh", type=float, default=0.3, help="lowest detection score drawn")
        predict.set_defaults(run=predict_command)
