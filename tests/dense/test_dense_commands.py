"""`hilovit detect|segment train|eval|predict` on tiny Fashion-MNIST scenes with nano models, a few steps each."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from hilovit.cli import main
from hilovit.train import ConfigError, load_config, train
from hilovit.train.checkpoint import load_train_checkpoint
from hilovit.train.dense_tasks import DetectionTrainer
from hilovit.train.distributed import setup

TINY = ("--img-size", "64", "--scene-images", "4", "2", "--batch-size", "2", "progress=false", "throughput_batch=2")


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("HILOVIT_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    torch.set_num_threads(1)


def test_detect_train_eval_predict(tmp_path, capsys):
    run = tmp_path / "run"
    main(["detect", "train", *TINY, "--epochs", "1", "--output", str(run)])
    assert {"last.pt", "log.csv", "report.json", "curves.png", "model.safetensors"} <= {p.name for p in run.iterdir()}
    rows = list(csv.DictReader((run / "log.csv").open()))
    assert len(rows) == 1 and {"AP", "AP50", "AP75", "train_loss"} <= set(rows[0])
    capsys.readouterr()
    main(["detect", "eval", str(run / "last.pt"), "--output", str(tmp_path / "eval")])
    report = json.loads(capsys.readouterr().out)
    assert report["step"] == 2 and report["task"] == "detect" and {"AP", "AP50", "AP75"} <= set(report)
    assert "test_loss" not in report  # a detector has none; eval.json holds no NaN
    assert json.loads((tmp_path / "eval" / "eval.json").read_text()) == report
    images = (
        next(p for p in tmp_path.parents if (p / "cache").is_dir()) / "cache" / "scenes" / "64px" / "val" / "images"
    )
    main(["detect", "predict", str(run / "last.pt"), str(images), "--output", str(tmp_path / "pred")])
    assert sorted(p.name for p in (tmp_path / "pred").iterdir()) == ["000000.png", "000001.png"]


def test_segment_train_resume_eval_at_an_odd_size(tmp_path, capsys):
    run = tmp_path / "seg"
    main(["segment", "train", *TINY, "--img-size", "45", "--max-steps", "1", "--output", str(run), "--fpn", "hilo"])
    main(["segment", "train", "--resume", str(run / "last.pt"), "--max-steps", "2"])  # fpn, sizes: the checkpoint's
    state = load_train_checkpoint(run / "last.pt")
    assert state["step"] == 2 and state["config"]["fpn"] == "hilo" and state["config"]["img_size"] == 45
    capsys.readouterr()
    main(["segment", "eval", str(run / "last.pt"), "--output", str(tmp_path / "eval")])
    report = json.loads(capsys.readouterr().out)
    assert 0 <= report["mIoU"] <= 100 and 0 <= report["pixel_accuracy"] <= 100


def test_mask_rcnn_trains_on_masks_and_reports_box_and_mask_ap_at_an_odd_size(tmp_path):
    options = ["img_size=45", "scene_images=[4, 2]", "batch_size=2", "progress=false", f"output={tmp_path}"]
    trainer = DetectionTrainer(
        load_config("retinanet_litv2_nano_scenes", [*options, "model=maskrcnn_litv2_nano"]), setup()
    )
    batch = next(iter(trainer._loader(trainer.data.train, trainer.sampler, train=True)))
    assert "masks" in batch[1][0] and torch.isfinite(trainer._train_step(batch))  # fit() would also time inference
    scores = trainer.evaluate().scalars()
    assert {"AP", "AP50", "mask_AP", "mask_AP75"} <= set(scores)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model=yolo_nano", "unknown model 'yolo_nano'"),
        ("model=semantic_fpn_litv2_nano", "'semantic_fpn_litv2_nano' is a segment model, not a detect one"),
        ("mixup=0.5", r"mixup=0\.5 is not supported for detect"),
    ],
)
def test_bad_settings_are_explained(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        train(load_config("retinanet_litv2_nano_scenes", [override, f"output={tmp_path}", "scene_images=[4, 2]"]))


def test_hilo_head_is_a_retinanet_option(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["detect", "train", *TINY, "--model", "fasterrcnn_litv2_nano", "--hilo-head", "--output", str(tmp_path)])
    assert "hilo_head" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--batch-size", "0", "an integer >= 1"),
        ("--epochs", "0", "an integer >= 1"),
        ("--time-budget", "-1", "a finite number > 0"),
        ("--time-budget", "inf", "a finite number > 0"),
        ("--max-steps", "-1", "an integer >= 1"),
        ("--img-size", "0", "an integer >= 1"),
        ("--scene-images", "4", "an integer >= 1"),
    ],
)
def test_train_options_are_checked_before_anything_is_written(tmp_path, capsys, option, value, expected):
    extra = ["0"] if option == "--scene-images" else []  # TRAIN VAL: the second is bad
    with pytest.raises(SystemExit) as exit_info:
        main(["detect", "train", "--output", str(tmp_path / "run"), option, value, *extra])
    assert exit_info.value.code == 2
    bad = extra[0] if extra else value
    assert f"argument {option}: expected {expected}, got '{bad}'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
