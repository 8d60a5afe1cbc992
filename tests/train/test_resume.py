import pytest
import torch
from safetensors.torch import load_file

from hilovit.train import TrainCheckpointError, Trainer, train
from hilovit.train.distributed import setup

# Augmentation, mixup/cutmix and EMA on: every random state must come back for the weights to match.
RANDOM = ["hflip=0.5", "scale=[0.5, 1]", "mixup=0.8", "cutmix=1.0", "ema=true", "ema_decay=0.9"]


def _weights(run_dir):
    return load_file(run_dir / "model.safetensors")


def test_interrupted_and_resumed_run_ends_with_the_same_weights(tiny, tmp_path):
    whole = train(tiny(*RANDOM, f"output={tmp_path / 'whole'}"))
    stopped = train(tiny(*RANDOM, f"output={tmp_path / 'cut'}", "max_steps=3"))  # mid-epoch: 4 steps per epoch
    assert stopped.steps == 3
    resumed = train(tiny(*RANDOM, f"output={tmp_path / 'cut'}", f"resume={tmp_path / 'cut' / 'last.pt'}"))
    assert resumed.steps == whole.steps == 8
    reference, result = _weights(tmp_path / "whole"), _weights(tmp_path / "cut")
    assert reference.keys() == result.keys()
    assert all(torch.equal(reference[k], result[k]) for k in reference)
    assert resumed.evaluation.top1 == whole.evaluation.top1


def test_run_learns_and_writes_its_report(tiny, tmp_path):
    result = train(tiny("epochs=4", "lr=3e-3", "hflip=0", "scale=[1, 1]"))
    assert result.evaluation.top1 > 50  # 4 classes: chance is 25
    names = {p.name for p in result.output.iterdir()}
    assert {"last.pt", "log.csv", "curves.png", "confusion.png", "model.safetensors", "report.json"} <= names
    assert len((result.output / "log.csv").read_text().splitlines()) == 1 + 4
    assert result.throughput > 0


def test_time_budget_stops_cleanly_and_evaluates(tiny):
    result = train(tiny("epochs=50", "time_budget=0.5"))
    assert 0 < result.steps < 50 * 4 and result.evaluation.count == 32


def test_corrupt_checkpoint_is_named(tiny, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(
        TrainCheckpointError, match=r"bad\.pt is not a training checkpoint: it is a file that starts with"
    ):
        Trainer(tiny(f"resume={bad}"), setup("cpu"))


def test_resume_with_another_architecture_is_refused(tiny):
    train(tiny("max_steps=1"))
    with pytest.raises(TrainCheckpointError, match=r"model differs.*local_ws"):
        Trainer(tiny("model_kwargs={local_ws: [0, 0, 1, 1]}", f"resume={tiny().output}/last.pt"), setup("cpu"))


@pytest.mark.parametrize("options", [["precision=bf16", "channels_last=true"], ["precision=fp16", "accum_steps=4"]])
def test_mixed_precision_channels_last_and_accumulation_train(tiny, options):
    result = train(tiny("epochs=1", *options))
    assert result.steps == 4 and torch.isfinite(torch.tensor(result.evaluation.loss))
