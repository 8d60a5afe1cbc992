"""HiLo inside ultralytics models (YOLO11, YOLOv8, RT-DETR), offline.

>>> import hilovit.yolo
>>> hilovit.yolo.register()  # HiLoBlock, C3k2HiLo, C2fHiLo, C2HiLo, AIFIHiLo usable in model YAMLs
>>> from ultralytics import RTDETR, YOLO
>>> model = YOLO(hilovit.yolo.model_yaml("yolov8-hilo", scale="n"))
>>> detr = RTDETR(hilovit.yolo.model_yaml("rtdetr-hilo-l"))

Importing this package changes nothing outside it (no environment variable, thread count or setting).
:func:`register` is the opt-in: it makes ultralytics offline (:mod:`hilovit.yolo.offline`) and teaches its YAML
parser the hilovit modules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hilovit.validation import unknown_name

__all__ = [
    "CFG_DIR",
    "SCALED_FAMILIES",
    "SCALES",
    "AIFIHiLo",
    "C2HiLo",
    "C2fHiLo",
    "C3k2HiLo",
    "HiLoBlock",
    "HiLoDetectionTrainer",
    "HiLoLayer",
    "HiLoRTDETRTrainer",
    "model_yaml",
    "model_yamls",
    "register",
    "shipped_model_names",
]

CFG_DIR = Path(__file__).parent / "cfg"
SCALES = ("n", "s", "m", "l", "x")
#: YAML families whose file names carry a scale letter after the family, as ultralytics' own (``yolov8n.yaml``).
SCALED_FAMILIES = ("yolo11", "yolov8")
_LAZY = {
    "C2HiLo": "modules",
    "C2fHiLo": "modules",
    "C3k2HiLo": "modules",
    "HiLoBlock": "modules",
    "HiLoLayer": "modules",
    "AIFIHiLo": "aifi",
    "HiLoDetectionTrainer": "trainers",
    "HiLoRTDETRTrainer": "trainers",
}


def __getattr__(name: str) -> Any:
    """The modules import ultralytics, so they load on first use (``hilovit --help`` stays fast)."""
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f"hilovit.yolo.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register() -> None:
    """Make hilovit's modules usable by name in ultralytics model YAMLs and ultralytics offline. Idempotent.

    Sets ``YOLO_OFFLINE`` / ``YOLO_AUTOINSTALL`` where unset (before ultralytics is imported, if it is not yet) and
    undoes ultralytics' one-thread default for torch (see :mod:`hilovit.yolo.threads`).
    """
    from hilovit.yolo import offline
    from hilovit.yolo.threads import undo_ultralytics_thread_default

    offline.set_environment()  # before anything imports ultralytics: no DNS probe at its import
    from hilovit.yolo.registry import register_modules

    register_modules()
    offline.enable()
    undo_ultralytics_thread_default()


def model_yamls() -> list[str]:
    """Names of the shipped model YAMLs (without scale), e.g. ``yolo11-hilo-neck``, ``rtdetr-hilo-l``."""
    return sorted(file.stem for file in CFG_DIR.glob("*.yaml"))


def _family(name: str) -> str | None:
    return next((family for family in SCALED_FAMILIES if name.startswith(f"{family}-")), None)


def model_yaml(name: str = "yolo11-hilo", scale: str | None = None) -> Path:
    """Path that makes ultralytics build the shipped YAML ``name`` at ``scale``, e.g. ``cfg/yolov8s-hilo-neck.yaml``.

    As with ultralytics' own ``yolov8n.yaml``, a YOLO file on disk has no scale letter; ultralytics reads the letter
    after ``yolo11`` / ``yolov8`` in the name it is given and picks that row of the YAML's ``scales`` (default
    ``n``). The RT-DETR YAMLs have one scale and take none (``rtdetr-hilo-l``, ``rtdetr-hilo-resnet50``).
    """
    if name not in model_yamls():
        raise ValueError(unknown_name("model YAML", name, model_yamls()))
    family = _family(name)
    if family is None:
        if scale is not None:
            raise ValueError(f"{name} has a single scale; expected scale=None, got {scale!r}")
        return CFG_DIR / f"{name}.yaml"
    scale = "n" if scale is None else scale
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    return CFG_DIR / f"{family}{scale}{name.removeprefix(family)}.yaml"


def shipped_model_names() -> list[str]:
    """Every name :func:`model_yaml` gives, as the stems ``hilovit yolo --model`` takes (``yolov8s-hilo-head``)."""
    return sorted(
        model_yaml(name, scale).stem for name in model_yamls() for scale in (SCALES if _family(name) else (None,))
    )
