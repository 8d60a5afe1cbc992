"""Issue 15's fault cases, typed as a user types them: a device this machine lacks, a text file given as a
checkpoint, a text file named like an image. Each ends the command with one line `hilovit: error: ...` naming
the bad value, exit status 2, before any work is done. (A `--json` into a missing folder: tests/test_cli.py and
tests/speed/test_cli.py; a text file as `export --checkpoint`: tests/export/test_export_cli.py.)"""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from hilovit.cli import main

NO_CUDA = "device 'cuda' is not available on this machine; it has: auto, cpu"


@pytest.fixture
def one_line_error(tmp_path, monkeypatch, capsys):
    """Run ``hilovit ARGV`` in ``tmp_path``; return its one-line error after checking exit status 2."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HILOVIT_TRACEBACK", raising=False)

    def run(*argv: str) -> str:
        with pytest.raises(SystemExit) as exit_info:
            main(list(argv))
        err = capsys.readouterr().err
        assert exit_info.value.code == 2, err
        assert err.startswith("hilovit: error: ") and err.count("\n") == 1, err
        return err

    return run


@pytest.mark.skipif(torch.cuda.is_available(), reason="the machine has CUDA")
@pytest.mark.parametrize(
    "argv",
    [
        ("train", "litv2_nano_fmnist", "--device", "cuda"),
        ("detect", "train", "--device", "cuda"),
        ("segment", "train", "--device", "cuda"),
        ("video", "train", "--device", "cuda"),
        ("volume", "train", "--device", "cuda"),
        ("eval", "runs/demo/last.pt", "--device", "cuda"),
        ("detect", "eval", "runs/det/last.pt", "--device", "cuda"),
        ("demo", "--device", "cuda"),
        ("bench", "models", "--device", "cuda"),
        ("tune", "litv2_nano", "--device", "cuda"),
        ("yolo", "train", "--device", "cuda"),
    ],
)
def test_a_device_this_machine_lacks_is_one_line(argv, one_line_error, tmp_path):
    assert NO_CUDA in one_line_error(*argv)
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


@pytest.mark.skipif(torch.cuda.is_available(), reason="the machine has CUDA")
@pytest.mark.parametrize(("override", "message"), [("device=cuda", NO_CUDA), ("device=bogus", "'bogus' is not a")])
def test_a_device_set_in_the_recipe_overrides_is_one_line(override, message, one_line_error):
    assert message in one_line_error("train", "litv2_nano_fmnist", override, "--max-steps", "1")


@pytest.mark.parametrize(
    "argv",
    [
        ("eval", "notes.pt"),
        ("detect", "eval", "notes.pt"),
        ("segment", "eval", "notes.pt"),
        ("video", "eval", "notes.pt"),
        ("volume", "eval", "notes.pt"),
        ("detect", "predict", "notes.pt", "photo.png"),
        ("train", "litv2_nano_fmnist", "--resume", "notes.pt"),
        ("detect", "train", "--resume", "notes.pt"),
    ],
)
def test_a_text_file_given_as_a_checkpoint_is_one_line(argv, one_line_error, tmp_path):
    (tmp_path / "notes.pt").write_text("101 reasons to train\n")
    Image.new("RGB", (32, 24)).save(tmp_path / "photo.png")
    err = one_line_error(*argv)
    assert "notes.pt" in err and "not a" in err and "checkpoint" in err, err


def _text_png(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not an image\n")
    return path


def test_a_text_file_named_png_given_to_predict_is_one_line(one_line_error, tmp_path):
    _text_png(tmp_path / "photo.png")
    err = one_line_error("detect", "predict", "runs/det/last.pt", "photo.png")  # images are checked first
    assert "photo.png is not a readable image" in err


def test_a_text_file_named_png_in_classification_data_is_one_line(one_line_error, tmp_path):
    for split in ("train", "val"):
        for name in ("cat", "dog"):
            (tmp_path / "data" / split / name).mkdir(parents=True)
            Image.new("RGB", (16, 16)).save(tmp_path / "data" / split / name / "a.png")
    _text_png(tmp_path / "data" / "train" / "dog" / "b.png")
    err = one_line_error("train", "litv2_nano_fmnist", "data=data", "--max-steps", "1", "--output", "run")
    assert "data/train/dog/b.png is not a readable image" in err
    assert not (tmp_path / "run" / "last.pt").exists()


def test_a_text_file_named_png_in_detection_data_is_one_line(one_line_error, tmp_path):
    for split in ("train", "val"):
        folder = tmp_path / "data" / split
        _text_png(folder / "images" / "a.png")
        coco = {
            "images": [{"id": 1, "file_name": "a.png", "width": 32, "height": 32}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 8, 8], "area": 64, "iscrowd": 0}],
            "categories": [{"id": 1, "name": "thing"}],
        }
        (folder / "annotations.json").write_text(json.dumps(coco))
    err = one_line_error("detect", "train", "--data", "data", "--max-steps", "1", "--output", "run")
    assert "images/a.png is not a readable image" in err
    assert not (tmp_path / "run" / "last.pt").exists()
