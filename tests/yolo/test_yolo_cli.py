"""`hilovit yolo ...`: argument handling (train, val and export run in test_yolo_train.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

import hilovit.yolo
from hilovit.cli import build_parser, main
from hilovit.yolo.cli import _overrides, resolve_model, run


def test_resolve_model_names_shipped_yamls_only() -> None:
    assert resolve_model("yolo11s-hilo-neck") == str(hilovit.yolo.CFG_DIR / "yolo11s-hilo-neck.yaml")
    assert resolve_model("yolo11n-hilo.yaml") == str(hilovit.yolo.CFG_DIR / "yolo11n-hilo.yaml")
    for other in ("runs/best.pt", "yolo11n.yaml", "my/model.yaml"):
        assert resolve_model(other) == other


def test_parser_and_overrides() -> None:
    args = build_parser().parse_args(["yolo", "train", "--data", "d.yaml", "--epochs", "3", "lr0=0.002", "mosaic=0"])
    assert (args.model, args.data, args.epochs) == ("yolo11n-hilo", Path("d.yaml"), 3)
    assert _overrides(args.overrides) == {"lr0": 0.002, "mosaic": 0}
    with pytest.raises(argparse.ArgumentTypeError, match="key=value"):
        _overrides(["mosaic"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["yolo", "train"])  # --data is required: ultralytics would fetch coco8
    with pytest.raises(ValueError, match="mode must be one of"):
        run("predict", "yolo11n-hilo")


def test_data_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    main(["yolo", "data", str(tmp_path), "--train-images", "2", "--val-images", "1", "--image-size", "64"])
    data = Path(capsys.readouterr().out.strip())
    assert data == tmp_path / "yolo" / "data.yaml"
    assert len(yaml.safe_load(data.read_text())["names"]) == 10
    assert len(list((tmp_path / "yolo" / "val" / "labels").glob("*.txt"))) == 1
