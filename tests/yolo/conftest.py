"""Shared fixtures for the YOLO tests: a private ultralytics config directory, a network guard, a trained model."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hilovit.speed import fixed_threads

# ultralytics reads its config directory (settings.json, fonts) at import: keep the user's untouched.
if "YOLO_CONFIG_DIR" not in os.environ:
    _config = tempfile.mkdtemp(prefix="hilovit-yolo-config-")
    os.environ["YOLO_CONFIG_DIR"] = _config
    atexit.register(shutil.rmtree, _config, ignore_errors=True)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny maps on a shared 2-core machine: one thread avoids OpenMP spin-waits that dwarf the work itself."""
    with fixed_threads(1):
        yield


class NetworkAccessError(OSError):
    """Raised by the guarded socket functions: something tried to reach the network."""


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make every connection or name lookup fail loudly; returns the list of attempts (for the assertion message)."""
    attempts: list[str] = []

    def refuse(kind: str):
        def refused(*args, **kwargs):
            attempts.append(f"{kind}{args[1:] if kind == 'connect' else args[:2]}")
            raise NetworkAccessError(f"network access attempted: {attempts[-1]}")

        return refused

    monkeypatch.setattr(socket.socket, "connect", refuse("connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("connect"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    return attempts


@pytest.fixture(scope="session")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data.yaml of 4 train / 2 val Fashion-MNIST scenes of 64 px in YOLO layout: every training run here is one
    step of one epoch (batch 4), every validation one or two batches."""
    pytest.importorskip("ultralytics")
    from hilovit.yolo.data import scenes_yolo_dataset

    return scenes_yolo_dataset(tmp_path_factory.mktemp("scenes"), train_images=4, val_images=2, image_size=64)
