import json
import os
import signal
import subprocess
import sys
import time

import pytest

from hilovit.cli import main
from hilovit.train.demo import run_demo


def _train_args(idx_data, out, *overrides):
    return [
        "train",
        "litv2_nano_fmnist",
        "img_size=16",
        "batch_size=32",
        "epochs=1",
        "progress=false",
        "throughput_batch=8",
        "time_budget=null",
        *overrides,
        "--data",
        str(idx_data),
        "--output",
        str(out),
    ]


def test_train_then_eval_a_checkpoint_and_its_safetensors(idx_data, tmp_path, capsys):
    main(_train_args(idx_data, tmp_path / "run"))
    assert "litv2_nano" in capsys.readouterr().out
    main(["eval", str(tmp_path / "run" / "last.pt"), "--output", str(tmp_path / "e1")])  # data: the checkpoint's
    from_checkpoint = json.loads(capsys.readouterr().out)
    assert from_checkpoint["data"] == str(idx_data) and 0 <= from_checkpoint["test_top1"] <= 100
    assert (tmp_path / "e1" / "confusion.png").is_file()
    # the safetensors file records model, classes, channels and image size: no --model, --img-size needed
    main(
        ["eval", str(tmp_path / "run" / "model.safetensors"), "--data", str(idx_data), "--output", str(tmp_path / "e2")]
    )
    from_weights = json.loads(capsys.readouterr().out)
    assert from_weights["arch"]["img_size"] == 16 and from_weights["images"] == 32
    assert from_weights["top1"] == pytest.approx(from_checkpoint["test_top1"], abs=1e-3)


def test_eval_of_weights_on_another_dataset_says_to_pass_data(idx_data, tmp_path, capsys):
    main(_train_args(idx_data, tmp_path / "run", "max_steps=1"))
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", str(tmp_path / "run" / "model.safetensors"), "--output", str(tmp_path / "e")])
    assert exit_info.value.code == 2
    assert "model of 4 classes and 1 channel(s), dataset Fashion-MNIST has 10" in capsys.readouterr().err


def test_resume_flag_continues_the_run_in_its_output(idx_data, tmp_path, capsys):
    main([*_train_args(idx_data, tmp_path / "run"), "--max-steps", "2"])
    main(["train", "--output", str(tmp_path / "run"), "--resume", "--epochs", "2", "--max-steps", "8"])
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert rows[-1].startswith("2.0,8,")


def test_fresh_run_into_a_used_output_and_contradicting_resume_are_one_line_errors(idx_data, tmp_path, capsys):
    main(_train_args(idx_data, tmp_path / "run", "max_steps=1"))
    capsys.readouterr()
    for argv, message in [
        (_train_args(idx_data, tmp_path / "run"), "is not empty (confusion.png, curves.png, last.pt, log.csv, ...)"),
        (["train", "--output", str(tmp_path / "run"), "--resume", "--img-size", "32"], "--img-size contradicts"),
        (["detect", "eval", str(tmp_path / "run" / "last.pt")], "is a classification checkpoint"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and err.startswith("hilovit: error: ") and message in err
        assert len(err.strip().splitlines()) == 1


def test_sigint_saves_and_exits_0_with_the_resume_command(idx_data, tmp_path):
    run = tmp_path / "run"
    argv = _train_args(idx_data, run, "epochs=1000", "checkpoint_every=1")
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "hilovit", *argv], stdout=subprocess.PIPE, text=True, env=env)
    while not (run / "last.pt").exists() and process.poll() is None:
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0
    assert f"resume with: hilovit train --resume {run / 'last.pt'}" in out


def test_demo_trains_hilo_and_global_msa_twins(idx_data, tmp_path):
    rows = run_demo(
        overrides=[
            f"data={idx_data}",
            "img_size=16",
            "batch_size=32",
            "time_budget=1",
            "progress=false",
            "throughput_batch=8",
            f"output={tmp_path}",
        ]
    )
    assert set(rows) == {"HiLo (LITv2)", "global MSA"}
    assert rows["HiLo (LITv2)"]["params"] != rows["global MSA"]["params"]
    assert all(row["throughput_img_s"] > 0 and row["steps"] > 0 for row in rows.values())
