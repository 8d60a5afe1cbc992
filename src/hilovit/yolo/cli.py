"""The ``hilovit yolo data|train|val|export`` commands: ultralytics calls after :func:`hilovit.yolo.register`.

Any further ``key=value`` is passed to ultralytics as is (``hilovit yolo train data=... lr0=0.002 mosaic=0``);
ultralytics checks the keys and parses the values.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hilovit.speed import fixed_threads

_MODES = ("train", "val", "export")


def resolve_model(spec: str) -> str:
    """A shipped model YAML given by name (``yolo11n-hilo-neck``, with its scale letter) as a path; else ``spec``.

    Anything else (a .pt checkpoint, a YAML path, ultralytics' own ``yolo11n.yaml``) goes to ultralytics unchanged.
    """
    from hilovit.yolo import CFG_DIR, SCALES, model_yaml, model_yamls

    stem = spec.removesuffix(".yaml")
    for name in model_yamls():
        for scale in SCALES:
            if model_yaml(name, scale).stem == stem:
                return str(CFG_DIR / f"{stem}.yaml")
    return spec


def _overrides(items: list[str]) -> dict[str, Any]:
    from ultralytics.cfg import parse_key_value_pair

    overrides = {}
    for item in items:
        if "=" not in item:
            raise argparse.ArgumentTypeError(f"expected key=value (an ultralytics setting), got {item!r}")
        key, value = parse_key_value_pair(item)
        overrides[key] = value
    return overrides


def run(mode: str, model: str, **settings: Any) -> Any:
    """``YOLO(model).<mode>(**settings)`` after :func:`hilovit.yolo.register`, keeping torch's thread count.

    ``amp`` defaults to False: on CUDA, ultralytics' AMP check downloads yolo26n.pt (see :mod:`hilovit.yolo.offline`).
    """
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    import hilovit.yolo

    hilovit.yolo.register()
    from ultralytics import YOLO

    if mode == "train":
        settings.setdefault("amp", False)
    with fixed_threads(None):  # ultralytics' select_device sets cpu_count() - 1 threads
        return getattr(YOLO(resolve_model(model)), mode)(**settings)


def _data_command(args: argparse.Namespace) -> None:
    from hilovit.yolo.data import scenes_yolo_dataset

    path = scenes_yolo_dataset(args.root, args.train_images, args.val_images, args.image_size, args.seed)
    print(path)


def _mode_command(args: argparse.Namespace) -> None:
    settings = _overrides(args.overrides)
    for key in ("data", "imgsz", "epochs", "batch", "device", "workers", "project", "name", "format"):
        value = getattr(args, key, None)
        if value is not None:
            settings[key] = str(value) if isinstance(value, Path) else value
    if getattr(args, "amp", False):
        settings["amp"] = True
    result = run(args.yolo_command, args.model, **settings)
    if args.yolo_command == "val":
        print(f"mAP50-95 {result.box.map:.4f}  mAP50 {result.box.map50:.4f}")
    elif args.yolo_command == "export":
        print(result)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``yolo`` with its ``data``, ``train``, ``val`` and ``export`` subcommands to the ``hilovit`` parser."""
    yolo = subparsers.add_parser("yolo", help="YOLO11 with HiLo blocks through ultralytics, offline")
    commands = yolo.add_subparsers(dest="yolo_command", required=True)

    data = commands.add_parser("data", help="Fashion-MNIST scenes as a YOLO dataset; prints its data.yaml")
    data.add_argument("root", type=Path, help="directory for the COCO splits (root/coco) and YOLO layout (root/yolo)")
    data.add_argument("--train-images", type=int, default=64)
    data.add_argument("--val-images", type=int, default=16)
    data.add_argument("--image-size", type=int, default=256)
    data.add_argument("--seed", type=int, default=0)
    data.set_defaults(run=_data_command)

    train = _add_mode(commands, "train", "train a model YAML or checkpoint (default model: yolo11n-hilo)")
    train.add_argument("--epochs", type=int)
    train.add_argument("--amp", action="store_true", help="mixed precision (on CUDA this needs yolo26n.pt)")
    _add_mode(commands, "val", "mAP of a checkpoint on a dataset")
    export = _add_mode(commands, "export", "export a checkpoint (default format: onnx)")
    export.add_argument("--format", default="onnx")


def _add_mode(commands: argparse._SubParsersAction, mode: str, help_text: str) -> argparse.ArgumentParser:
    command = commands.add_parser(mode, help=help_text)
    command.add_argument("overrides", nargs="*", metavar="key=value", help="further ultralytics settings")
    command.add_argument(
        "--model",
        default="yolo11n-hilo" if mode == "train" else None,
        required=mode != "train",
        help="a shipped YAML by name with its scale (yolo11s-hilo-neck), a YAML path or a .pt checkpoint",
    )
    command.add_argument("--imgsz", type=int)
    command.add_argument("--device", help="cpu, 0, ... (default: ultralytics' choice)")
    if mode != "export":
        data_help = "data.yaml (see `hilovit yolo data`)" + ("" if mode == "train" else "; default: the training data")
        command.add_argument("--data", type=Path, required=mode == "train", help=data_help)
        command.add_argument("--batch", type=int)
        command.add_argument("--workers", type=int)
        command.add_argument("--project", type=Path, help="runs directory")
        command.add_argument("--name", help="run name inside the project")
    command.set_defaults(run=_mode_command)
    return command
