"""`hilovit bench attention|models` on tiny sizes, through the argparse wiring of hilovit.speed.cli."""

import csv
import json
import re

import pytest

from hilovit.speed.attention_bench import hilo_summary
from hilovit.speed.results_files import ROW_FIELDS

# The least measuring that still runs every step: one image, no warm-up, one timed repeat, one thread.
TINY_TIMING = ["--batch-size", "1", "--warmup", "0", "--repeats", "1", "--threads", "1"]
TINY_ATTENTION = ["--dim", "16", "--heads", "2", *TINY_TIMING]


def test_bench_attention_sweep_writes_json_csv_and_plots(tmp_path, run):
    report = run(
        [
            *("bench", "attention", *TINY_ATTENTION, "--img-size", "4,7", "--mode", "both", "--alpha", "0.5,1"),
            *("--json", str(tmp_path / "new" / "a.json"), "--csv", str(tmp_path / "a.csv")),
            *("--plots", str(tmp_path / "plots")),
        ]
    )
    names = ["msa", "sra", "window", "shifted_window", "hilo@0.5", "hilo@1", "timm_swin", "timm_pvt_v2"]
    assert [row.name for row in report.rows] == names * 4
    assert all(row.error is None and row.images_per_s > 0 and row.peak_mib >= 0 for row in report.rows)
    assert all(row.counted_gmacs == pytest.approx(row.gmacs) for row in report.rows)
    assert {(row.mode, row.height) for row in report.rows} == {
        (mode, side) for mode in ("forward", "forward+backward") for side in (4, 7)
    }
    document = json.loads((tmp_path / "new" / "a.json").read_text())  # its missing folder was made
    assert document.keys() == {"environment", "settings", "rows", "breakdowns"} and document["breakdowns"] == []
    assert {"torch", "device", "device_name", "threads", "dtype"} <= document["environment"].keys()
    assert all(tuple(row) == ROW_FIELDS for row in document["rows"]) and len(document["rows"]) == 32
    with open(tmp_path / "a.csv") as handle:
        lines = list(csv.DictReader(handle))
    assert tuple(lines[0]) == ROW_FIELDS and len(lines) == 32 and float(lines[0]["ratio"]) == 1.0
    summary = hilo_summary(report.rows)
    assert len(summary) == 4 and all("MSA (ViT)" in line and "SRA (PVT, r=2)" in line for line in summary)
    plots = sorted(path.name for path in (tmp_path / "plots").iterdir())
    assert len(plots) == 6 and "resolution_forward_b1.png" in plots
    assert all((tmp_path / "plots" / name).read_bytes().startswith(b"\x89PNG") for name in plots)


def test_bad_attention_arguments_name_the_value_and_the_choices(run):
    with pytest.raises(ValueError, match=r"unknown mechanism.*nope.*msa, sra, window"):
        run(["bench", "attention", *TINY_ATTENTION, "--mechanisms", "msa,nope"])
    with pytest.raises(ValueError, match="dim=16 must be divisible by num_heads=3"):
        run(["bench", "attention", *TINY_ATTENTION, "--heads", "3"])
    with pytest.raises(ValueError, match=r"size\(s\) \[1\] are smaller than SRA's reduction ratio 2"):
        run(["bench", "attention", *TINY_ATTENTION, "--img-size", "1"])
    with pytest.raises(ValueError, match="baseline 'window' is not measured"):
        run(["bench", "attention", *TINY_ATTENTION, "--mechanisms", "msa", "--baseline", "window"])


def test_bench_models_any_timm_name(tmp_path, run):
    report = run(
        [
            *("bench", "models", "--models", "litv2_nano,resnet18", "--baseline", "resnet18", "--img-size", "32"),
            *TINY_TIMING,
            *("--json", str(tmp_path / "m.json")),
        ]
    )
    nano, resnet = report.rows
    assert nano.label == "litv2_nano" and nano.gmacs is not None and resnet.gmacs is None
    assert resnet.counted_gmacs > 0 and resnet.ratio == 1.0
    assert json.loads((tmp_path / "m.json").read_text())["settings"]["baseline"] == "resnet18"


def test_a_baseline_that_is_not_measured_is_refused(run):
    with pytest.raises(ValueError, match=r"baseline 'resnet50' is not measured.*litv2_nano"):
        run(["bench", "models", "--models", "litv2_nano,resnet18", "--baseline", "resnet50", "--img-size", "32"])


def test_unknown_model_lists_what_is_accepted(run):
    with pytest.raises(ValueError, match=r"unknown model 'not_a_model'; known: all, b, litv2_b.*; or any timm model"):
        run(["bench", "models", "--models", "not_a_model"])


def test_outputs_are_checked_before_measuring(tmp_path, run, monkeypatch):
    def measure(*args, **kwargs):
        raise AssertionError("measured before checking the outputs")

    monkeypatch.setattr("hilovit.speed.cli.bench_attention", measure)
    with pytest.raises(IsADirectoryError, match=f"output {tmp_path} is a directory: expected a file path"):
        run(["bench", "attention", *TINY_ATTENTION, "--json", str(tmp_path)])
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match=r"--plots .*file is a file: expected a folder"):
        run(["bench", "attention", *TINY_ATTENTION, "--plots", str(tmp_path / "file")])


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--img-size", "4,0", r"argument --img-size: expected an integer >= 1, got '0' in the comma list '4,0'"),
        ("--device", "bogus", r"argument --device: device 'bogus' is not a torch device"),
        ("--repeats", "0", r"argument --repeats: expected an integer >= 1, got '0'"),
    ],
)
def test_bad_flags_are_one_line_with_exit_status_2(flag, value, message, run, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run(["bench", "attention", *TINY_ATTENTION, flag, value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("hilovit: error: bench attention: ") and err.count("\n") == 1, err
    assert re.search(message, err), err
