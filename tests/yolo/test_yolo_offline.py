"""hilovit.yolo.offline: the switches it sets and the fonts it installs; importing hilovit.yolo changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ultralytics")

import hilovit.yolo
from hilovit.yolo import offline
from hilovit.yolo.cli import registered

# A fresh interpreter: environment, thread count and loaded modules before and after importing hilovit.yolo.
IMPORT_ONLY = """
import json, os, sys
import torch
before = dict(os.environ), torch.get_num_threads()
import hilovit.yolo, hilovit.yolo.cli, hilovit.yolo.offline
after = dict(os.environ), torch.get_num_threads()
print(json.dumps({"same": before == after, "ultralytics": "ultralytics" in sys.modules}))
"""


def test_importing_hilovit_yolo_has_no_side_effects() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("YOLO_")}
    done = subprocess.run([sys.executable, "-c", IMPORT_ONLY], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"same": True, "ultralytics": False}


def test_register_turns_ultralytics_offline() -> None:
    hilovit.yolo.register()
    from ultralytics import utils
    from ultralytics.utils import checks, events

    assert utils.env_bool("YOLO_OFFLINE") and not utils.env_bool("YOLO_AUTOINSTALL")
    assert utils.ONLINE is checks.ONLINE is events.ONLINE is False
    assert checks.AUTOINSTALL is False and not events.events.enabled


def test_register_leaves_the_users_ultralytics_settings_alone() -> None:
    from ultralytics.utils import SETTINGS

    on_disk = Path(SETTINGS.file).read_text()
    hilovit.yolo.register()
    assert Path(SETTINGS.file).read_text() == on_disk


def test_commands_scope_the_offline_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("YOLO_OFFLINE", raising=False)
    monkeypatch.setenv("YOLO_AUTOINSTALL", "true")  # the user's own choice is kept, and restored
    with registered():
        assert os.environ["YOLO_OFFLINE"] == "1" and os.environ["YOLO_AUTOINSTALL"] == "true"
    assert "YOLO_OFFLINE" not in os.environ and os.environ["YOLO_AUTOINSTALL"] == "true"


def test_install_fonts_copies_once(tmp_path: Path) -> None:
    files = offline.install_fonts(tmp_path)
    assert [f.name for f in files] == list(offline.FONT_NAMES)
    assert files[0].read_bytes()[:4] == b"\x00\x01\x00\x00"  # a TrueType font
    files[1].write_bytes(b"user's own font")
    offline.install_fonts(tmp_path)
    assert files[1].read_bytes() == b"user's own font"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(offline.FONT_NAMES)  # no partial files left
