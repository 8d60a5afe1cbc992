"""Video and volume training on the Trainer: the loss falls, resume is exact, eval reads the checkpoint."""

import pytest
import torch
from safetensors.torch import load_file

from hilovit.train import ConfigError, load_config, train
from hilovit.train.commands import evaluate_checkpoint

VOLUME = [
    "data=nuclei",
    "data_kwargs={crop: [8, 16, 16], crops_per_epoch: 8, val_fraction: 0.1}",
    "model_kwargs={widths: [4, 8, 16, 16], num_heads: [2, 2]}",
    "batch_size=2",
    "epochs=4",
    "hflip=0",
    "warmup_epochs=0",
    "lr=3e-3",
    "progress=false",
]
VIDEO = [
    "data_kwargs={frames: 4, size: 16, object_size: 8, speeds: [2]}",
    "model_kwargs={embed_dims: [16, 32], num_heads: [2, 2], windows: [[2, 2, 2], [1, 1, 1]]}",
    "train_subset=72",
    "test_subset=18",
    "batch_size=18",
    "epochs=3",
    "warmup_epochs=0",
    "lr=3e-3",
    "progress=false",
]


def _config(recipe, options, tmp_path, *extra):
    return load_config(recipe, [*options, f"output={tmp_path}", *extra])


def test_volume_loss_falls_and_resume_ends_with_the_same_weights(tmp_path):
    whole = train(_config("hilo3d_unet_mni152", VOLUME, tmp_path / "whole"))
    losses = [row["train_loss"] for row in whole_history(tmp_path / "whole")]
    assert losses[-1] < losses[0]
    cut = tmp_path / "cut"
    assert train(_config("hilo3d_unet_mni152", VOLUME, cut, "max_steps=3")).steps == 3
    resumed = train(_config("hilo3d_unet_mni152", VOLUME, cut, f"resume={cut / 'last.pt'}"))
    assert resumed.steps == whole.steps == 16
    reference, result = load_file(tmp_path / "whole" / "model.safetensors"), load_file(cut / "model.safetensors")
    assert all(torch.equal(reference[k], result[k]) for k in reference)
    report = evaluate_checkpoint(cut / "last.pt", "volume", tmp_path / "eval")
    assert report["test_dice"] == pytest.approx(resumed.evaluation.scalars()["test_dice"], abs=1e-4)
    assert {"test_dice_0", "test_dice_1", "test_acc"} <= report.keys()


def whole_history(run_dir):
    lines = (run_dir / "log.csv").read_text().splitlines()
    keys = lines[0].split(",")
    return [dict(zip(keys, map(float, line.split(",")), strict=True)) for line in lines[1:]]


def test_video_loss_falls(tmp_path):
    result = train(_config("hilo3d_video_mfmnist", VIDEO, tmp_path))
    losses = [row["train_loss"] for row in whole_history(tmp_path)]
    assert losses[-1] < losses[0] and result.steps == 12
    assert result.evaluation.count == 18


def test_volume_refuses_classification_only_options(tmp_path):
    with pytest.raises(ConfigError, match=r"mixup=0\.8 is not supported for volumes"):
        train(_config("hilo3d_unet_mni152", VOLUME, tmp_path, "mixup=0.8"))


@pytest.mark.parametrize(
    ("recipe", "options", "message"),
    [
        ("hilo3d_video_mfmnist", VIDEO, "unknown data_kwargs key.* fps for moving Fashion-MNIST; known: frames"),
        ("hilo3d_unet_mni152", VOLUME, "unknown data_kwargs key.* fps for the nuclei volume; known: crop"),
    ],
)
def test_unknown_data_options_are_named(recipe, options, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        train(_config(recipe, options, tmp_path, "data_kwargs={fps: 3}"))
