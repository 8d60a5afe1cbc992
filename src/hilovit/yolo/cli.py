"""The ``hilovit yolo data|train|val|export`` commands: ultralytics calls after :func:`hilovit.yolo.register`.

Flags follow :mod:`hilovit.grammar` (``--model``, ``--data``, ``--img-size``, ``--batch-size``, ``--output``, ...);
ultralytics' own spellings ``--imgsz`` and ``--batch`` are aliases. Any further ``key=value`` is an ultralytics
setting (``hilovit yolo train --data d.yaml lr0=0.002 mosaic=0``), checked by ultralytics' rules before anything
runs. Runs are written to ``--output``/``<mode>`` under the working directory (numbered ``train2``, ``train3``, ...
rather than overwritten, unless ``--exist-ok``); ultralytics' global settings (``runs_dir``, ...) are not read or
changed. Nothing is downloaded: a model or data file that is not on disk is an error.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hilovit.grammar import POSITIVE_INT, Parser, add_command, add_flags, argument_type
from hilovit.speed import fixed_threads
from hilovit.validation import PROBABILITY, unknown_name

if TYPE_CHECKING:
    from ultralytics.engine.model import Model

__all__ = ["add_yolo_commands", "registered", "resolve_model", "run", "ultralytics_device", "ultralytics_settings"]

MODES = ("train", "val", "export")
DEFAULT_MODEL = "yolo11n-hilo"
DEFAULT_OUTPUT = Path("runs/yolo")
#: grammar flag dest -> ultralytics setting, for the flags that map one to one.
_SETTINGS = {
    "data": "data",
    "img_size": "imgsz",
    "batch_size": "batch",
    "epochs": "epochs",
    "workers": "workers",
    "seed": "seed",
    "mosaic": "mosaic",
    "format": "format",
}


def resolve_model(spec: str) -> str:
    """The file ultralytics should build or load for ``--model``: a shipped YAML by name (``yolov8s-hilo-neck``,
    ``rtdetr-hilo-l``, with or without ``.yaml``), an existing file, or a model YAML ultralytics ships
    (``yolo11n.yaml``). Anything else raises FileNotFoundError: nothing is downloaded."""
    from hilovit.yolo import CFG_DIR, shipped_model_names

    stem = spec.removesuffix(".yaml")
    if stem in shipped_model_names():
        return str(CFG_DIR / f"{stem}.yaml")
    if "://" in spec:
        raise ValueError(f"--model {spec!r} is a URL; hilovit yolo downloads nothing: pass a local file")
    if Path(spec).is_file():
        return spec
    if spec.endswith((".yaml", ".yml")):
        from ultralytics.nn.tasks import yaml_model_load

        with contextlib.suppress(FileNotFoundError):
            yaml_model_load(spec)  # ultralytics' own model YAMLs, found in its package (yolov8s.yaml)
            return spec
    what = "checkpoint" if spec.endswith(".pt") else "model"
    raise FileNotFoundError(
        f"{what} {spec!r} not found (hilovit yolo downloads nothing); "
        + unknown_name("shipped model", spec, shipped_model_names()).removeprefix("unknown shipped model ")
    )


def ultralytics_device(device: str) -> str | None:
    """A grammar ``--device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``) as ultralytics spells it."""
    if device == "auto":
        return None  # ultralytics' choice: CUDA when present
    if device == "cuda":
        return "0"
    return device.removeprefix("cuda:")


def ultralytics_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The ultralytics settings of a parsed ``yolo train|val|export`` command: flags and ``key=value`` items.
    Imports ultralytics: call it after :func:`hilovit.yolo.register` (or inside :func:`registered`).

    A setting given both ways is an error; every value passes ultralytics' own checks (``check_cfg``) here, so a
    bad one is a ValueError before any work, not a traceback mid-run.
    """
    from ultralytics.cfg import check_cfg, parse_key_value_pair
    from ultralytics.utils import DEFAULT_CFG_DICT

    settings: dict[str, Any] = {}
    for item in args.overrides:
        if "=" not in item:
            raise ValueError(f"expected key=value (an ultralytics setting), got {item!r}")
        key, value = parse_key_value_pair(item)
        if key not in DEFAULT_CFG_DICT:
            raise ValueError(unknown_name("ultralytics setting", key, DEFAULT_CFG_DICT))
        settings[key] = value
    flags = {key: getattr(args, dest, None) for dest, key in _SETTINGS.items()}
    budget = getattr(args, "time_budget", None)
    flags |= {
        "device": ultralytics_device(args.device),
        "amp": True if getattr(args, "amp", "off") != "off" else None,
        "time": None if budget is None else budget / 3600,  # ultralytics counts hours
    }
    if args.yolo_command != "export":
        flags |= {"project": str(args.output.resolve()), "name": args.yolo_command, "exist_ok": args.exist_ok or None}
    for key, value in flags.items():
        if value is None:
            continue
        if key in settings and settings[key] != value:
            raise ValueError(f"{key} is given twice: {key}={settings[key]!r} and as a flag ({value!r}); pass one")
        settings[key] = str(value) if isinstance(value, Path) else value
    try:
        check_cfg(settings)
    except (TypeError, ValueError) as error:
        raise ValueError(f"ultralytics setting: {error}") from None
    return settings


@contextlib.contextmanager
def registered() -> Iterator[None]:
    """:func:`hilovit.yolo.register` for the block, whose environment variables (:data:`offline.ENVIRONMENT`)
    hold for the block and the processes it starts (DDP workers, data loaders), then are restored."""
    import os

    import hilovit.yolo
    from hilovit.yolo import offline

    saved = {name: os.environ.get(name) for name in offline.ENVIRONMENT}
    try:
        hilovit.yolo.register()
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _is_rtdetr_yaml(path: str) -> bool:
    """Whether ``path`` is a model YAML with ultralytics' RT-DETR head (which ``YOLO(path)`` cannot build)."""
    if not path.endswith((".yaml", ".yml")):
        return False
    from ultralytics.nn.tasks import yaml_model_load

    return yaml_model_load(path)["head"][-1][2] == "RTDETRDecoder"


def run(
    mode: str, model: str, callbacks: Mapping[str, Callable[[Any], None]] | None = None, **settings: Any
) -> tuple[Model, Any]:
    """``<YOLO or RTDETR>(model).<mode>(**settings)`` after :func:`hilovit.yolo.register`, offline, computing
    on torch's thread count (not ultralytics' ``cpu_count() - 1``); returns the ultralytics model and what the
    call returned. ``model`` is resolved by :func:`resolve_model`; ``callbacks`` maps ultralytics event names
    (``"on_train_batch_end"``, ...) to a function added for that event.

    Training uses hilovit's trainer (:mod:`hilovit.yolo.trainers`, so DDP workers register the modules) and
    ``amp=False`` unless given: on CUDA, ultralytics' AMP check downloads yolo26n.pt (see :mod:`hilovit.yolo.offline`).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    data = settings.get("data")
    if data is not None and not Path(data).is_file():
        raise FileNotFoundError(f"data {data!r} not found (hilovit yolo downloads nothing; see `hilovit yolo data`)")
    with registered():
        from ultralytics import RTDETR, YOLO

        from hilovit.yolo.threads import compute_on_current_threads
        from hilovit.yolo.trainers import trainer_for

        with fixed_threads(None):  # and back to it afterwards
            path = resolve_model(model)
            yolo = (RTDETR if _is_rtdetr_yaml(path) else YOLO)(path)  # YOLO(<RT-DETR .pt>) becomes an RTDETR
            compute_on_current_threads(yolo)
            for event, callback in (callbacks or {}).items():
                yolo.add_callback(event, callback)
            if mode == "train":
                settings.setdefault("amp", False)
                settings.setdefault("trainer", trainer_for(yolo))
            return yolo, getattr(yolo, mode)(**settings)


def _data_command(args: argparse.Namespace) -> None:
    from hilovit.yolo.data import scenes_yolo_dataset

    path = scenes_yolo_dataset(args.root, args.train_images, args.val_images, args.img_size, args.seed)
    print(path)


def _mode_command(args: argparse.Namespace) -> None:
    with registered():  # ultralytics imported offline
        yolo, result = run(args.yolo_command, args.model, **ultralytics_settings(args))
    if args.yolo_command == "train":
        print(f"weights: {yolo.trainer.best}")
    elif args.yolo_command == "val":
        print(f"mAP50-95 {result.box.map:.4f}  mAP50 {result.box.map50:.4f}  ({result.save_dir})")
    else:
        print(result)


def add_yolo_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``yolo`` with its ``data``, ``train``, ``val`` and ``export`` subcommands to the ``hilovit`` parser."""
    yolo = add_command(commands, "yolo", "YOLO11 / YOLOv8 / RT-DETR with HiLo blocks through ultralytics, offline")
    subcommands = yolo.add_subparsers(dest="yolo_command", required=True, parser_class=Parser)

    data = add_command(subcommands, "data", "Fashion-MNIST scenes as a YOLO dataset; prints its data.yaml")
    data.add_argument("root", type=Path, help="directory for the COCO splits (root/coco) and YOLO layout (root/yolo)")
    data.add_argument("--train-images", type=POSITIVE_INT, default=64, help="training scenes")
    data.add_argument("--val-images", type=POSITIVE_INT, default=16, help="validation scenes")
    add_flags(data, "img_size", "seed", img_size_default=256)
    data.set_defaults(run=_data_command)

    train = _add_mode(subcommands, "train", "train a model YAML or checkpoint")
    add_flags(train, "epochs", "time_budget", "seed", "amp", amp_choices=("off", "fp16"))
    train.add_argument("--mosaic", type=argument_type(float, PROBABILITY), help="mosaic augmentation probability")
    _add_mode(subcommands, "val", "mAP of a checkpoint on a dataset")
    export = _add_mode(subcommands, "export", "export a checkpoint")
    export.add_argument("--format", default="onnx", help="an ultralytics export format")


def _add_mode(subcommands: argparse._SubParsersAction, mode: str, help_text: str) -> argparse.ArgumentParser:
    command = add_command(subcommands, mode, help_text)
    command.add_argument("overrides", nargs="*", metavar="key=value", help="further ultralytics settings")
    model_help = "a shipped YAML by name with its scale (yolov8s-hilo-neck, rtdetr-hilo-l), a YAML path or a local .pt"
    add_flags(
        command,
        "model",
        "img_size",
        "device",
        model_help=model_help,
        model_default=DEFAULT_MODEL if mode == "train" else None,
        model_required=mode != "train",
        img_size_aliases=("--imgsz",),
    )
    if mode != "export":
        add_flags(
            command,
            "data",
            "batch_size",
            "workers",
            "output",
            "exist_ok",
            data_help="data.yaml on disk (`hilovit yolo data` writes one)",
            data_required=True,
            batch_size_aliases=("--batch",),
            output_default=DEFAULT_OUTPUT,
            output_help="runs directory: the run goes to OUTPUT/<command>, numbered when that exists",
        )
    command.set_defaults(run=_mode_command)
    return command
