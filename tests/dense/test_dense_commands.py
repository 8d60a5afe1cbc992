"""`hilovit detect|segment train|eval|predict` on tiny Fashion-MNIST scenes with nano models, a few steps each."""

from __future__ import annotations

import argparse
import csv
import json

import pytest
import torch

from hilovit.cli import main
from hilovit.dense.commands import positive
from hilovit.dense.engine import DenseConfig, DenseTrainer
from hilovit.train.checkpoint import TrainCheckpointError


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HILOVIT_CACHE", str(tmp_path / "cache"))
    torch.set_num_threads(1)


def _config(tmp_path, name, **overrides):
    settings = {"img_size": 64, "scene_images": (4, 2), "batch_size": 2, "output": str(tmp_path / name)}
    return DenseConfig(**(settings | {"progress": False} | overrides))


def test_a_few_steps_reduce_the_loss(tmp_path):
    trainer = DenseTrainer(_config(tmp_path, "fit", lr=1e-4, warmup_steps=1, hflip=0.0))
    batch = next(iter(trainer._loader()))
    losses = []
    for _ in range(3):
        loss = trainer.loss(batch)
        trainer.optimizer.zero_grad()
        loss.backward()
        trainer.optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]


def test_resume_continues_exactly(tmp_path):
    straight = DenseTrainer(_config(tmp_path, "straight", max_steps=2))
    straight.fit()
    DenseTrainer(_config(tmp_path, "split", max_steps=1)).fit()
    resumed = DenseTrainer(_config(tmp_path, "split", max_steps=2, resume=str(tmp_path / "split" / "last.pt")))
    resumed.fit()
    assert resumed.step == straight.step == 2
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    with pytest.raises(TrainCheckpointError, match="fpn: checkpoint 'plain', now 'hilo'"):
        DenseTrainer(_config(tmp_path, "other", fpn="hilo", resume=str(tmp_path / "split" / "last.pt")))


def test_detect_train_eval_predict(tmp_path, capsys):
    run = tmp_path / "run"
    main(
        [
            *("detect", "train", "--img-size", "64", "--scene-images", "4", "2", "--batch-size", "2", "--epochs", "1"),
            *("--output", str(run), "--no-progress"),
        ]
    )
    assert {"last.pt", "log.csv", "report.json", "curves.png"} <= {p.name for p in run.iterdir()}
    rows = list(csv.DictReader((run / "log.csv").open()))
    assert len(rows) == 1 and {"AP", "AP50", "AP75", "train_loss"} <= set(rows[0])
    capsys.readouterr()
    main(["detect", "eval", str(run / "last.pt"), "--output", str(tmp_path / "eval")])
    report = json.loads(capsys.readouterr().out)
    assert report["step"] == 2 and {"AP", "AP50", "AP75"} <= set(report["metrics"])
    assert json.loads((tmp_path / "eval" / "eval.json").read_text()) == report
    images = tmp_path / "cache" / "scenes" / "64px" / "val" / "images"
    main(["detect", "predict", str(run / "last.pt"), str(images), "--output", str(tmp_path / "pred")])
    assert sorted(p.name for p in (tmp_path / "pred").iterdir()) == ["000000.png", "000001.png"]


def test_segment_train_eval_predict_at_an_odd_size(tmp_path, capsys):
    run = tmp_path / "seg"
    main(
        [
            *("segment", "train", "--img-size", "45", "--scene-images", "4", "2", "--batch-size", "2"),
            *("--max-steps", "1", "--output", str(run), "--no-progress"),
        ]
    )
    capsys.readouterr()
    main(["segment", "eval", str(run / "last.pt"), "--output", str(tmp_path / "eval")])
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    assert 0 <= metrics["mIoU"] <= 100 and 0 <= metrics["pixel_accuracy"] <= 100 and len(metrics["IoU"]) == 11
    image = tmp_path / "cache" / "scenes" / "45px" / "val" / "images" / "000001.png"
    main(["segment", "predict", str(run / "last.pt"), str(image), "--output", str(tmp_path / "pred")])
    assert (tmp_path / "pred" / "000001.png").is_file()


def test_mask_rcnn_reports_box_and_mask_ap_at_an_odd_size(tmp_path):
    trainer = DenseTrainer(_config(tmp_path, "mask", model="maskrcnn_litv2_nano", img_size=45, max_steps=1))
    metrics = trainer.fit()["metrics"]
    assert {"AP", "AP50", "mask_AP", "mask_AP75"} <= set(metrics)


def test_bad_model_names_are_explained(tmp_path):
    with pytest.raises(ValueError, match="unknown detect model 'yolo_nano'"):
        DenseTrainer(_config(tmp_path, "bad", model="yolo_nano"))
    with pytest.raises(ValueError, match="hilo_head is a RetinaNet option"):
        DenseTrainer(_config(tmp_path, "bad", model="fasterrcnn_litv2_nano", hilo_head=True))


@pytest.mark.parametrize(
    ("option", "value", "kind"),
    [
        ("--batch-size", "0", "int"),
        ("--epochs", "0", "int"),
        ("--budget-s", "-1", "float"),
        ("--max-steps", "-1", "int"),
        ("--img-size", "0", "int"),
        ("--lr", "nan", "float"),
        ("--scene-images", "4", "int"),
    ],
)
def test_train_options_must_be_positive(tmp_path, capsys, option, value, kind):
    extra = ["0"] if option == "--scene-images" else []  # TRAIN VAL: the second is bad
    with pytest.raises(SystemExit) as exit_info:
        main(["detect", "train", "--output", str(tmp_path / "run"), option, value, *extra])
    assert exit_info.value.code == 2
    bad = extra[0] if extra else value
    assert f"argument {option}: expected a positive {kind}, got '{bad}'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("kind", "text"), [(int, "0"), (int, "-3"), (int, "2.5"), (float, "-0.5"), (float, "nan")])
def test_positive_rejects_the_value_by_name(kind, text):
    with pytest.raises(argparse.ArgumentTypeError, match=f"expected a positive {kind.__name__}, got '{text}'"):
        positive(kind)(text)
    assert positive(int)("3") == 3 and positive(float)("0.5") == 0.5


def test_predict_needs_images_before_loading_the_model(tmp_path, monkeypatch):
    monkeypatch.setenv("HILOVIT_TRACEBACK", "1")  # the exception itself, not `hilovit: error: ...`
    empty = tmp_path / "emptydir"
    empty.mkdir()
    missing_checkpoint = str(tmp_path / "last.pt")  # never read: the images are checked first
    with pytest.raises(FileNotFoundError, match=r"no images found in .*emptydir \(expected \.png/\.jpg/"):
        main(["detect", "predict", missing_checkpoint, str(empty)])
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match=r"notes\.txt is not an image file \(expected \.png/\.jpg/"):
        main(["segment", "predict", missing_checkpoint, str(tmp_path / "notes.txt")])
