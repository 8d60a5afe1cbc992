"""HiLo inside ultralytics YOLO models, offline.

>>> import hilovit.yolo
>>> hilovit.yolo.register()  # HiLoBlock, C3k2HiLo, C2HiLo usable in model YAMLs
>>> from ultralytics import YOLO
>>> model = YOLO(hilovit.yolo.model_yaml("yolo11-hilo", scale="n"))

Importing this package sets ``YOLO_OFFLINE=1`` and ``YOLO_AUTOINSTALL=false`` (unless already set), so that an
ultralytics imported afterwards does not probe the network; :func:`register` applies the rest of
:mod:`hilovit.yolo.offline`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hilovit.yolo import offline
from hilovit.yolo.threads import undo_ultralytics_thread_default

__all__ = ["CFG_DIR", "SCALES", "C2HiLo", "C3k2HiLo", "HiLoBlock", "HiLoLayer", "model_yaml", "model_yamls", "register"]

CFG_DIR = Path(__file__).parent / "cfg"
SCALES = ("n", "s", "m", "l", "x")
_MODULES = ("C2HiLo", "C3k2HiLo", "HiLoBlock", "HiLoLayer")

offline.set_environment()  # before anything imports ultralytics: no DNS probe at its import
undo_ultralytics_thread_default()


def __getattr__(name: str) -> Any:
    """The modules import ultralytics, so they load on first use (``hilovit --help`` stays fast)."""
    if name in _MODULES:
        from hilovit.yolo import modules

        return getattr(modules, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register() -> None:
    """Make hilovit's modules usable by name in ultralytics model YAMLs and ultralytics offline. Idempotent.

    Also undoes ultralytics' one-thread default for torch (see :mod:`hilovit.yolo.threads`).
    """
    from hilovit.yolo.registry import register_modules

    register_modules()
    offline.enable()
    undo_ultralytics_thread_default()


def model_yamls() -> list[str]:
    """Names of the shipped model YAMLs (without scale), e.g. ``yolo11-hilo-neck``."""
    return sorted(file.stem for file in CFG_DIR.glob("*.yaml"))


def model_yaml(name: str = "yolo11-hilo", scale: str = "n") -> Path:
    """Path that makes ultralytics build the shipped YAML ``name`` at ``scale``, e.g. ``cfg/yolo11n-hilo-neck.yaml``.

    As with ultralytics' own ``yolo11n.yaml``, the file on disk has no scale letter; ultralytics reads the letter
    after ``yolo11`` in the name it is given and picks that row of the YAML's ``scales``.
    """
    if name not in model_yamls():
        raise ValueError(f"unknown model YAML {name!r}; expected one of {model_yamls()}")
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    return CFG_DIR / f"{name.replace('yolo11', f'yolo11{scale}', 1)}.yaml"
