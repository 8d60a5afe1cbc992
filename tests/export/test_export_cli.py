"""`hilovit export onnx|torch-export`: arguments, model names, the printed parity report and errors."""

from __future__ import annotations

import argparse

import pytest

from hilovit.cli import main
from hilovit.export.cli import parse_sizes

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def test_parse_sizes():
    assert parse_sizes("224x224, 97X131") == [(224, 224), (97, 131)]
    for bad in ("224", "224x", "0x5", "ax3", "8x8,"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected sizes like"):
            parse_sizes(bad)


@pytest.mark.parametrize("fmt", ["onnx", "torch-export"])
def test_export_hilo_layer(tmp_path, capsys, fmt):
    output = tmp_path / f"hilo.{fmt}"
    opset = ["--opset", "18"] if fmt == "onnx" else []
    main(
        [
            "export",
            fmt,
            "hilo",
            "--dim",
            "32",
            "--heads",
            "4",
            "--sizes",
            "8x8,6x10,5x7",
            "--output",
            str(output),
            *opset,
        ]
    )
    printed = capsys.readouterr().out
    assert output.is_file()
    assert "HiLo2d" in printed and "input 1x32x5x7" in printed and "PASSED" in printed


def test_unknown_model(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "onnx", "litv2_xl"])
    assert exit_info.value.code == 1
    assert "unknown model 'litv2_xl'" in capsys.readouterr().err


def test_missing_checkpoint_is_an_error_not_a_traceback(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "onnx", "litv2_nano", "--checkpoint", str(tmp_path / "nope.pth")])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == f"error: checkpoint file not found: '{tmp_path / 'nope.pth'}'\n"
