"""`hilovit detect|segment train|eval|predict` on tiny Fashion-MNIST scenes with nano models, a few steps each."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from hilovit.cli import main
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
