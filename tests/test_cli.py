import json
import os
import re
import subprocess
import sys

import pytest

from hilovit.cli import main
from hilovit.train import ConfigError


def test_info_reports_the_environment(capsys):
    main(["info", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert {"torch", "device", "threads", "cuda_available"} <= set(report)


def test_unknown_command_is_rejected(capsys):
    with pytest.raises(SystemExit):
        main(["frobnicate"])
    assert "invalid choice" in capsys.readouterr().err


def test_help_documents_the_traceback_variable(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "HILOVIT_TRACEBACK=1" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "configs/litv2_nano_fmnist.yaml", "epochs=0"], "epochs must be >= 1, got 0"),
        (["eval", "nope.pt"], "checkpoint nope.pt does not exist"),
        (["video", "eval", "nope.pt"], "checkpoint nope.pt does not exist"),
        (["volume", "train", "label_smoothing=2"], r"label_smoothing must be in \[0, 1\), got 2"),
    ],
)
def test_user_errors_are_one_line_with_exit_status_2(argv, message, capsys, monkeypatch):
    monkeypatch.delenv("HILOVIT_TRACEBACK", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert re.fullmatch(f"hilovit: error: {message}.*\n", err), err


def test_traceback_variable_lets_the_exception_through(monkeypatch):
    monkeypatch.setenv("HILOVIT_TRACEBACK", "1")
    with pytest.raises(ConfigError, match="epochs must be >= 1"):
        main(["train", "configs/litv2_nano_fmnist.yaml", "epochs=0"])


def test_other_errors_keep_their_traceback(monkeypatch):
    def broken(device):
        raise RuntimeError("a bug, not bad input")

    monkeypatch.setattr("hilovit.cli.environment", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["info"])


@pytest.mark.parametrize(("task", "expected"), [("volume", "mni152 or nuclei"), ("video", "Fashion-MNIST IDX")])
def test_task_train_help_describes_its_own_data(task, expected, capsys):
    with pytest.raises(SystemExit):
        main([task, "train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert expected in text and "ImageFolder" not in text and "configs/hilo3d_" in text


def test_torchrun_entry_point_reports_user_errors_the_same_way():
    command = [sys.executable, "-m", "hilovit.train", "configs/litv2_nano_fmnist.yaml", "hflip=2"]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HILOVIT_TRACEBACK": "0"})
    assert done.returncode == 2
    assert done.stderr == "python -m hilovit.train: error: hflip must be in [0, 1], got 2.0\n"
