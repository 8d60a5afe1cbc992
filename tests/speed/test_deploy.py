"""`hilovit bench deploy` on the HiLo layer and a dense backbone (tiny inputs): rows, files, the saved artifact,
the choice within the top-1 drop and clear errors. Timings are produced, never asserted."""

from __future__ import annotations

import csv
import json
import sys

import pytest

from hilovit.speed.deploy import CANDIDATES, DeployRow, DeploySettings, choose
from hilovit.speed.deploy_cli import ROW_FIELDS

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

REQUIRED = {"runtime", "precision", "batch_size", "latency_ms", "images_per_s", "speedup", "top1_agreement"}
TINY = ["--batch-size", "2", "--calibration-images", "4", "--eval-images", "4", "--warmup", "0", "--repeats", "1"]


def test_hilo_layer_in_every_runtime(run, tmp_path):
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    files = ["--json", str(tmp_path / "r.json"), "--csv", str(tmp_path / "r.csv"), "--plots", str(tmp_path)]
    report = run(
        ["bench", "deploy", "hilo", "--img-size", "8", *TINY, *files, "--save", str(tmp_path / "saved"), "--profile"]
    )
    assert [(row.runtime, row.precision) for row in report.rows] == [*CANDIDATES.values()] * 2
    assert [row.batch_size for row in report.rows] == [1] * 6 + [2] * 6
    for row in report.rows:
        assert row.error is None, row
        assert row.images_per_s > 0 and row.latency_ms > 0 and row.file_mib > 0
        assert row.top1_agreement is None  # a layer has no classes
        if row.precision == "fp32":
            assert row.max_abs_diff <= 1e-4 and row.cosine > 0.99999, row
        else:
            assert 0.95 < row.cosine < 1.0, row
    assert all(row.speedup == 1.0 for row in report.rows if row.runtime == "pytorch")
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert len(rows) == 12 and set(rows[0]) >= REQUIRED
    with open(tmp_path / "r.csv") as handle:
        assert tuple(next(csv.reader(handle))) == ROW_FIELDS
    assert (tmp_path / "speed_vs_accuracy.png").stat().st_size > 0
    assert set(report.profiles) == {"onnxruntime", "openvino", "onnxruntime-int8", "openvino-int8"}
    for ops in report.profiles.values():
        assert ops and abs(sum(op.share for op in ops) - 1) < 1e-6 and ops[0].ms >= ops[-1].ms
    assert any("i8" in op.op.lower() for op in report.profiles["openvino-int8"])  # int8 kernels really run
    assert report.saved is not None and report.saved.is_file() and report.saved.parent == tmp_path / "saved"


def test_dense_backbone_multi_output_parity(run):
    report = run(
        ["bench", "deploy", "litv2_nano_backbone", "--img-size", "32", "--runtimes", "pytorch,onnxruntime", *TINY]
    )
    assert [(row.runtime, row.batch_size) for row in report.rows] == [
        ("pytorch", 1),
        ("onnxruntime", 1),
        ("pytorch", 2),
        ("onnxruntime", 2),
    ]
    onnx_row = report.rows[-1]
    assert onnx_row.error is None and onnx_row.max_abs_diff <= 1e-4 and onnx_row.cosine > 0.99999
    assert onnx_row.top1_agreement is None and onnx_row.top1 is None  # random weights: no accuracy claim


def _row(runtime: str, precision: str, speed: float, agreement: float | None, cosine: float = 1.0) -> DeployRow:
    return DeployRow(runtime, precision, 8, 32, 32, images_per_s=speed, top1_agreement=agreement, cosine=cosine)


def test_choose_the_fastest_within_the_drop():
    rows = [_row("pytorch", "fp32", 10, 100.0), _row("onnxruntime", "fp32", 12, 100.0)]
    rows += [_row("onnxruntime", "int8", 30, 99.0), _row("openvino", "int8", 20, 99.6)]
    assert choose(rows, 8, 0.5).runtime == "openvino"
    assert choose(rows, 8, 1.0).runtime == "onnxruntime" and choose(rows, 8, 1.0).precision == "int8"
    assert choose(rows, 8, 0.0).precision == "fp32"
    assert choose(rows, 1, 0.5) is None
    layer = [_row("pytorch", "fp32", 10, None), _row("onnxruntime", "int8", 30, None, cosine=0.9)]
    assert choose(layer, 8, 0.5).runtime == "pytorch"  # int8 without classes needs a cosine >= 0.99


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["litv2_nano", "--runtimes", "pytorch,tensorrt"], "expected one of 'pytorch'"),
        (["litv2_nano", "--runtimes", "onnxruntime"], "runtimes must include pytorch"),
        (["retinanet_litv2_nano"], "retinanet_litv2_nano is a detect model"),
        (["litv2_nanoo"], "unknown model 'litv2_nanoo'"),
        (["litv2_nano", "--batch-size", "0"], "--batch-size"),
        (["hilo", "--max-top1-drop", "-1"], "--max-top1-drop"),
        (["litv2_nano", "--checkpoint", "missing.pt"], "missing.pt does not exist"),
    ],
)
def test_bad_arguments_are_one_line_errors(argv, message, capsys):
    from hilovit.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "deploy", *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


def test_settings_name_a_bad_candidate():
    with pytest.raises(ValueError, match=r"candidates must be a non-empty list, each one of 'pytorch'.*'tensorrt'"):
        DeploySettings("hilo", candidates=("pytorch", "tensorrt"))
    with pytest.raises(ValueError, match="runtimes must include pytorch"):
        DeploySettings("hilo", candidates=("onnxruntime",))


def test_missing_runtime_is_named_before_any_export(monkeypatch, capsys):
    from hilovit.cli import main

    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` raises ImportError
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "deploy", "hilo", "--img-size", "8", *TINY])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("hilovit: error: bench deploy: openvino is not installed")
    assert "hilovit[deploy]" in err and "--runtimes" in err
