"""Run ultralytics without the network: no DNS probes, downloads, pip installs or telemetry.

What ultralytics 8.4 reaches for, and what :func:`enable` does about it:

* ``import ultralytics`` resolves two DNS names to set ``ONLINE`` unless ``YOLO_OFFLINE`` is set:
  :func:`set_environment` sets ``YOLO_OFFLINE=1`` (:func:`hilovit.yolo.register` calls it before importing
  ultralytics); when ultralytics was imported first, ``enable`` sets the ``ONLINE`` flags it already read to False.
* Missing optional requirements (e.g. ``onnxslim`` on ONNX export) trigger a pip install: ``YOLO_AUTOINSTALL=false``.
* Usage events and crash reports need ``ONLINE``; the events object, created at import, is also disabled. The
  user's ultralytics settings (settings.json: ``sync``, ``runs_dir``, ...) are left as they are.
* Plots (``plots=True``: label statistics, batches, curves) draw text with Arial.ttf, which ultralytics downloads
  into its config directory: :func:`install_fonts` copies matplotlib's bundled DejaVu Sans there under the names
  ultralytics asks for, so plotting works offline.
* ``amp=True`` on CUDA makes the trainer run ultralytics' AMP check, which downloads yolo26n.pt: pass ``amp=False``
  on GPUs (``hilovit yolo train`` does unless ``--amp``), or place yolo26n.pt in ultralytics' weights directory.
  On CPU the check returns False without downloading.

A variable already set in the environment is respected (``YOLO_OFFLINE=0`` keeps ultralytics online).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["ENVIRONMENT", "FONT_NAMES", "enable", "install_fonts", "set_environment"]

ENVIRONMENT = {"YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "false"}
FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")  # the fonts ultralytics' plotting asks check_font for


def set_environment() -> None:
    """Set :data:`ENVIRONMENT` where unset; takes full effect when called before ultralytics is imported."""
    for name, value in ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def _bundled_font() -> Path:
    import matplotlib

    font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    if not font.is_file():
        raise FileNotFoundError(f"matplotlib's bundled DejaVuSans.ttf not found at {font}")
    return font


def install_fonts(directory: Path | None = None) -> list[Path]:
    """Copy DejaVu Sans to ``directory`` (default: ultralytics' config directory) as each of :data:`FONT_NAMES`.

    ultralytics' ``check_font`` looks there first. Existing files are kept. Returns the font files.
    """
    if directory is None:
        from ultralytics.utils import USER_CONFIG_DIR as directory
    files = []
    for name in FONT_NAMES:
        file = Path(directory) / name
        if not file.is_file():
            partial = file.with_name(f".{name}.{os.getpid()}.partial")
            shutil.copyfile(_bundled_font(), partial)
            partial.replace(file)  # atomic: concurrent processes never see a half-written font
        files.append(file)
    return files


def enable() -> None:
    """Make the current process's ultralytics offline (see the module docstring), whenever it was imported."""
    set_environment()
    from ultralytics import utils
    from ultralytics.utils import checks, events

    if utils.env_bool("YOLO_OFFLINE"):
        for module in (utils, checks, events):
            module.ONLINE = False
    checks.AUTOINSTALL = utils.AUTOINSTALL = utils.env_bool("YOLO_AUTOINSTALL", True)
    events.events.enabled = False  # created at import with the ONLINE of that time
    install_fonts()
