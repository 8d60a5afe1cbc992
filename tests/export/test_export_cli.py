"""`hilovit export onnx|torch-export`: arguments, model names, the printed parity report and errors."""

from __future__ import annotations

import argparse
import dataclasses

import pytest
import torch

from hilovit.cli import main
from hilovit.export import parity
from hilovit.export.cli import parse_sizes
from hilovit.models import create_model, save_safetensors

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def test_parse_sizes():
    assert parse_sizes("224x224, 97X131,64") == [(224, 224), (97, 131), (64, 64)]
    for bad in ("224x", "0x5", "ax3", "8x8,", "1"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected sizes like"):
            parse_sizes(bad)


@pytest.mark.parametrize("fmt", ["onnx", "torch-export"])
def test_export_hilo_layer(tmp_path, capsys, fmt):
    output = tmp_path / "new" / f"hilo.{fmt}"  # its folder is made
    opset = ["--opset", "18"] if fmt == "onnx" else []
    main(
        ["export", fmt, "hilo", "--dim", "32", "--heads", "4", "--img-size", "8x8,5x7", "--output", str(output), *opset]
    )
    printed = capsys.readouterr().out
    assert output.is_file() and sorted(p.name for p in output.parent.iterdir()) == [output.name]  # no temp file
    for shape in ("1x32x8x8", "1x32x5x7", "3x32x8x8", "3x32x5x7"):  # batches 1 and 3 at both sizes
        assert f"input {shape}" in printed
    assert "HiLo2d" in printed and "PASSED" in printed


def test_torch_export_program_takes_any_batch_and_size(tmp_path, capsys):
    """The README's `hilovit export torch-export litv2_s`, at a tiny size: traced at batch 2, checked at 1 and 3,
    and the saved program runs at batch 1 and odd sizes when loaded back."""
    output = tmp_path / "nano.pt2"
    main(["export", "torch-export", "litv2_nano", "--img-size", "64x64,49x81", "--output", str(output)])
    printed = capsys.readouterr().out
    assert "input 1x3x49x81" in printed and "input 3x3x64x64" in printed and "PASSED" in printed
    program = torch.export.load(output).module()
    assert program(torch.randn(1, 3, 33, 45)).shape == (1, 1000)


def test_a_hilovit_file_rebuilds_its_model(tmp_path, capsys):
    arch = {"model_name": "litv2_nano", "num_classes": 3, "in_chans": 1, "img_size": 32}
    weights = save_safetensors(create_model(**arch), tmp_path / "model.safetensors", arch=arch)
    output = tmp_path / "nano.onnx"
    argv = ["export", "onnx", "litv2_nano", "--checkpoint", str(weights), "--img-size", "32x32", "--check-batch", "2"]
    main([*argv, "--output", str(output)])
    assert "input 2x1x32x32: 1 output(s)" in capsys.readouterr().out  # one input channel, as recorded


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["export", "onnx", "litv2_xl"], "unknown model 'litv2_xl' (did you mean 'litv2_s'"),
        (["export", "onnx", "litv2_nano", "--checkpoint", "nope.pth"], "checkpoint file not found: 'nope.pth'"),
        (["export", "torch-export", "litv2_nano", "--batch-size", "0"], "argument --batch-size: expected an integer"),
        (["export", "torch-export", "hilo3d_video_nano", "--backbone"], "--backbone applies to LITv2 classifiers"),
        (["export", "onnx", "retinanet_litv2_nano", "--img-size", "64"], "cannot be exported: torchvision's RetinaNet"),
    ],
)
def test_user_errors_are_one_line_with_exit_status_2(argv, message, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HILOVIT_TRACEBACK", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("hilovit: error: ") and err.count("\n") == 1 and message in err, err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_parity_failure_prints_the_table_and_ends_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HILOVIT_TRACEBACK", raising=False)
    measure = parity.measure_parity

    def off_by_one(*args: object, **kwargs: object) -> parity.ParityReport:  # the real check, then a mismatch
        report = measure(*args, **kwargs)
        return dataclasses.replace(report, checks=(*report.checks[:-1], parity.SizeParity((3, 32, 5, 7), 1, 1.0)))

    monkeypatch.setattr(parity, "measure_parity", off_by_one)
    output = tmp_path / "hilo.pt2"
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "export",
                "torch-export",
                "hilo",
                "--dim",
                "32",
                "--heads",
                "4",
                "--img-size",
                "8x8,5x7",
                "--output",
                str(output),
            ]
        )
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert "input 1x32x8x8" in captured.out and "MISMATCH" in captured.out and "FAILED" in captured.out
    assert captured.err == (
        "hilovit: error: HiLo2d: torch.export differs from eager PyTorch by 1.000e+00 at input 3x32x5x7, above the "
        f"tolerance 1e-04; exported file kept for inspection: {output}\n"
    )
    assert output.is_file()


def test_text_file_as_checkpoint(tmp_path, capsys):
    notes = tmp_path / "notes.pth"
    notes.write_text("not weights\n")
    with pytest.raises(SystemExit):
        main(["export", "onnx", "litv2_nano", "--checkpoint", str(notes)])
    assert "is not a valid checkpoint: it is text, starting 'not weights" in capsys.readouterr().err
