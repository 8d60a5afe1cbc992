"""hilovit.yolo.offline: the switches it sets and the fonts it installs."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("ultralytics")

import hilovit.yolo
from hilovit.yolo import offline


def test_register_turns_ultralytics_offline() -> None:
    hilovit.yolo.register()
    from ultralytics import utils
    from ultralytics.utils import checks, events

    assert utils.env_bool("YOLO_OFFLINE") and not utils.env_bool("YOLO_AUTOINSTALL")
    assert utils.ONLINE is checks.ONLINE is events.ONLINE is False
    assert checks.AUTOINSTALL is False and utils.SETTINGS["sync"] is False and not events.events.enabled


def test_install_fonts_copies_once(tmp_path: Path) -> None:
    files = offline.install_fonts(tmp_path)
    assert [f.name for f in files] == list(offline.FONT_NAMES)
    assert files[0].read_bytes()[:4] == b"\x00\x01\x00\x00"  # a TrueType font
    files[1].write_bytes(b"user's own font")
    offline.install_fonts(tmp_path)
    assert files[1].read_bytes() == b"user's own font"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(offline.FONT_NAMES)  # no partial files left
