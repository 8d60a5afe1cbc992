"""`detect predict` / `segment predict`: inputs checked before the model loads, outputs that never overwrite
inputs, earlier outputs or each other."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from hilovit.data.images import ImageFileError
from hilovit.dense import predict
from hilovit.dense.predict import image_files, output_paths, predict_images


def _images(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.new("RGB", (24, 16), color=(200, 10, 10)).save(folder / name)
    return folder


def test_inputs_are_listed_once_and_verified(tmp_path):
    inputs = _images(tmp_path / "in", "b.png", "a.jpg")
    (inputs / "notes.txt").write_text("not an image")
    assert image_files([inputs, inputs / "a.jpg"]) == [inputs / "a.jpg", inputs / "b.png"]
    (inputs / "c.png").write_text("not an image either")
    with pytest.raises(ImageFileError, match=r"in/c\.png is not a readable image"):
        image_files([inputs])


def test_output_names_are_unique_and_keep_every_own_name(tmp_path):
    files = [tmp_path / "a" / "x.png", tmp_path / "b" / "x.jpg", tmp_path / "c" / "x-2.png", tmp_path / "y.png"]
    names = [path.name for path in output_paths(files, tmp_path / "out")]
    assert names == ["x.png", "x-3.png", "x-2.png", "y.png"]


def test_outputs_never_overwrite_inputs_or_earlier_outputs(tmp_path):
    inputs = _images(tmp_path / "in", "a.png", "b.png")
    files = image_files([inputs])
    for output in (inputs, tmp_path / "in" / ".." / "in"):
        with pytest.raises(ValueError, match=r"output folder .* holds input images; expected a folder apart"):
            output_paths(files, output)
    with pytest.raises(ValueError, match="holds input images"):
        output_paths([*files, tmp_path / "c.png"], tmp_path)
    with pytest.raises(NotADirectoryError, match=r"output .*a\.png is a file; expected a folder"):
        output_paths(files, inputs / "a.png")
    _images(tmp_path / "out", "b.png")
    with pytest.raises(ValueError, match=r"1 of the 2 predictions would overwrite files in .*out \(e\.g\. b\.png\)"):
        output_paths(files, tmp_path / "out")
    assert output_paths(files, tmp_path / "out", exist_ok=True) == [
        tmp_path / "out" / "a.png",
        tmp_path / "out" / "b.png",
    ]


def test_bad_arguments_are_refused_before_the_model_loads(tmp_path):
    inputs = _images(tmp_path / "in", "a.png")
    missing_checkpoint = tmp_path / "never_read.pt"
    for thresh in (5, -0.1, float("nan")):
        with pytest.raises(ValueError, match=rf"score_thresh must be in \[0, 1\], got {thresh}"):
            predict_images(missing_checkpoint, [inputs], tmp_path / "out", score_thresh=thresh)
    with pytest.raises(ValueError, match="holds input images"):
        predict_images(missing_checkpoint, [inputs], inputs)


def test_predictions_are_written_under_unique_names(tmp_path, monkeypatch):
    def model(images):
        return [{"boxes": torch.tensor([[2.0, 2.0, 10.0, 8.0]]), "labels": torch.tensor([1]), "scores": torch.ones(1)}]

    state = {"classes": ["background", "thing"], "task": "detect"}
    monkeypatch.setattr(predict, "load_dense_model", lambda checkpoint: (model, state))
    first, second = _images(tmp_path / "first", "a.png"), _images(tmp_path / "second", "a.png")
    written = predict_images("model.pt", [first, second], tmp_path / "out")
    assert written == [tmp_path / "out" / "a.png", tmp_path / "out" / "a-2.png"]
    assert all(Image.open(path).size == (24, 16) for path in written)
    assert Image.open(first / "a.png").getpixel((0, 0)) == (200, 10, 10)  # inputs untouched
    with pytest.raises(ValueError, match="2 of the 2 predictions would overwrite"):
        predict_images("model.pt", [first, second], tmp_path / "out")
    assert predict_images("model.pt", [first, second], tmp_path / "out", exist_ok=True) == written
