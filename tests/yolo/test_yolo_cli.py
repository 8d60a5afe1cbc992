"""`hilovit yolo ...`: the grammar's flags and ultralytics' aliases, settings, one-line errors, nothing fetched.

train, val and export run in test_yolo_train.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

pytest.importorskip("ultralytics")

import hilovit.yolo
from hilovit.cli import build_parser, main
from hilovit.yolo.cli import registered, resolve_model, ultralytics_settings


def test_resolve_model_names_shipped_yamls_and_local_files(tmp_path: Path) -> None:
    cfg = hilovit.yolo.CFG_DIR
    assert resolve_model("yolo11s-hilo-neck") == str(cfg / "yolo11s-hilo-neck.yaml")
    assert resolve_model("yolov8x-hilo.yaml") == str(cfg / "yolov8x-hilo.yaml")
    assert resolve_model("rtdetr-hilo-l") == str(cfg / "rtdetr-hilo-l.yaml")
    checkpoint = tmp_path / "best.pt"
    checkpoint.write_bytes(b"")
    with registered():
        for other in (str(checkpoint), "yolov8n.yaml", "rtdetr-l.yaml"):  # a local file, ultralytics' own YAMLs
            assert resolve_model(other) == other


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("runs/missing.pt", r"checkpoint 'runs/missing.pt' not found \(hilovit yolo downloads nothing\)"),
        ("yolov8n-hilo-nek", r"model 'yolov8n-hilo-nek' not found .*did you mean 'yolov8n-hilo-neck'"),
        ("my/model.yaml", "model 'my/model.yaml' not found"),
    ],
)
def test_resolve_model_never_downloads(spec: str, message: str, no_network: list[str]) -> None:
    with registered(), pytest.raises(FileNotFoundError, match=message):
        resolve_model(spec)
    assert no_network == []


def _settings(*argv: str) -> dict:
    with registered():
        return ultralytics_settings(build_parser().parse_args(["yolo", *argv]))


def test_grammar_flags_and_ultralytics_aliases_give_the_same_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    grammar = _settings("train", "--data", "d.yaml", "--img-size", "96", "--batch-size", "4", "--device", "cpu")
    aliases = _settings("train", "--data", "d.yaml", "--imgsz", "96", "--batch", "4", "--device", "cpu")
    assert grammar == aliases
    assert grammar == {
        "data": "d.yaml",
        "imgsz": 96,
        "batch": 4,
        "workers": 0,
        "seed": 0,
        "device": "cpu",
        "project": str(tmp_path / "runs" / "yolo"),  # under the working directory, never ultralytics' runs_dir
        "name": "train",
    }
    extra = _settings("val", "--model", "best.pt", "--data", "d.yaml", "--output", "out", "--exist-ok", "conf=0.1")
    assert extra["project"] == str(tmp_path / "out") and extra["name"] == "val" and extra["exist_ok"] is True
    assert extra["conf"] == 0.1 and "device" not in extra  # --device auto: ultralytics' own choice
    budget = _settings("train", "--data", "d.yaml", "--time-budget", "90", "--amp", "fp16", "--mosaic", "0.5")
    assert budget["time"] == 90 / 3600 and budget["amp"] is True and budget["mosaic"] == 0.5


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--data", "d.yaml", "--imgsz", "-5"], "argument --img-size/--imgsz: expected an integer >= 1"),
        (["train", "--data", "d.yaml", "--mosaic", "2"], r"argument --mosaic: expected in \[0, 1\], got '2'"),
        (["train", "--data", "d.yaml", "mosaic=abc"], "ultralytics setting: 'mosaic=abc' is of invalid type str"),
        (["train", "--data", "d.yaml", "mosiac=0"], r"unknown ultralytics setting 'mosiac' \(did you mean 'mosaic'"),
        (["train", "--data", "d.yaml", "mosaic"], "expected key=value"),
        (["train", "--data", "d.yaml", "--imgsz", "64", "imgsz=320"], "imgsz is given twice: imgsz=320 and as a flag"),
        (["train", "--data", "d.yaml", "--amp", "bf16"], "argument --amp: invalid choice: 'bf16'"),
        (["train", "--data", "missing.yaml"], r"data 'missing.yaml' not found \(hilovit yolo downloads nothing"),
        (["train"], "the following arguments are required: --data"),
        (["val", "--model", "missing.pt", "--data", "DATA"], r"checkpoint 'missing.pt' not found"),
        (["export", "--model", "yolov8n.pt"], r"checkpoint 'yolov8n.pt' not found"),  # not fetched from the hub
        (["val", "--model", "best.pt", "--data", "DATA", "--device", "bogus"], "device 'bogus' is not a torch device"),
    ],
)
def test_user_errors_are_one_line_exit_2_and_offline(
    argv: list[str],
    message: str,
    scenes: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_network: list[str],
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["yolo", *[str(scenes) if arg == "DATA" else arg for arg in argv]])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and error.count("\n") == 1 and error.startswith("hilovit: error: ")
    assert re.search(message, error), error
    assert no_network == [] and not (tmp_path / "runs").exists()


def test_data_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    main(["yolo", "data", str(tmp_path), "--train-images", "2", "--val-images", "1", "--img-size", "64"])
    data = Path(capsys.readouterr().out.strip())
    assert data == tmp_path / "yolo" / "data.yaml"
    assert len(yaml.safe_load(data.read_text())["names"]) == 10
    assert len(list((tmp_path / "yolo" / "val" / "labels").glob("*.txt"))) == 1
