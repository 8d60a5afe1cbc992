"""What `hilovit eval` and the video/volume eval say about a missing, corrupt, foreign or other-task checkpoint."""

import pytest
import torch

from hilovit.train import TrainCheckpointError, train
from hilovit.train.checkpoint import FORMAT, ForeignCheckpointError, load_train_checkpoint, save_atomic
from hilovit.train.commands import evaluate_checkpoint
from hilovit.train.evaluation import evaluate_weights


class Payload:
    """Anything but tensors and containers: torch.load(weights_only=True) must refuse to build it."""


def test_missing_checkpoint_is_named_not_taken_for_other_weights(tmp_path):
    with pytest.raises(TrainCheckpointError, match=r"checkpoint .*nope\.pt does not exist"):
        evaluate_weights(tmp_path / "nope.pt", output=tmp_path / "eval")
    with pytest.raises(TrainCheckpointError, match=r"checkpoint .* is a directory; expected a file such as .*last\.pt"):
        evaluate_weights(tmp_path, output=tmp_path / "eval")


@pytest.mark.parametrize("size", [0, 100])
def test_truncated_checkpoint_is_called_corrupt(tmp_path, size):
    whole, cut = tmp_path / "whole.pt", tmp_path / "last.pt"
    torch.save({"format": FORMAT, "model": {"w": torch.zeros(64, 64)}}, whole)
    cut.write_bytes(whole.read_bytes()[:size])
    with pytest.raises(
        TrainCheckpointError,
        match=r"last\.pt is (corrupt or truncated: \S|not a training checkpoint: it is an empty file)",
    ):
        load_train_checkpoint(cut)


def test_checkpoints_are_read_without_running_pickled_code(tmp_path):
    path = tmp_path / "last.pt"
    save_atomic({"format": FORMAT, "payload": Payload()}, path)
    with pytest.raises(ForeignCheckpointError, match=r"Unsupported global.*Payload"):
        load_train_checkpoint(path)


def test_eval_sizes_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="img_size must be an integer >= 1, got 0"):
        evaluate_weights(tmp_path / "last.pt", img_size=0, output=tmp_path / "eval")
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got -1"):
        evaluate_weights(tmp_path / "last.pt", batch_size=-1, output=tmp_path / "eval")


def test_output_that_is_a_file_is_refused(tiny, tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("")
    (tmp_path / "model.safetensors").write_text("")
    with pytest.raises(ValueError, match=r"output .*taken must be a directory, but .*taken is an existing file"):
        train(tiny(f"output={taken}"))
    with pytest.raises(ValueError, match=r"output .*taken/eval must be a directory, but .*taken is an existing file"):
        evaluate_weights(tmp_path / "model.safetensors", model="litv2_nano", output=taken / "eval")


def test_checkpoint_records_its_task_and_other_tasks_refuse_it(tiny, tmp_path):
    run = train(tiny("max_steps=1", "epochs=1")).output
    state = load_train_checkpoint(run / "last.pt")  # weights only, numpy random state included
    assert state["task"] == "classification"
    message = r"last\.pt is a classification checkpoint \(model litv2_nano\), not a volume one; .*`hilovit eval`"
    with pytest.raises(TrainCheckpointError, match=message):
        evaluate_checkpoint(run / "last.pt", "volume", tmp_path / "eval")


def test_checkpoints_from_before_tasks_were_recorded_get_theirs_from_the_model(tmp_path):
    path = tmp_path / "last.pt"
    save_atomic({"format": FORMAT, "arch": {"model_name": "hilo3d_unet_nano"}}, path)
    with pytest.raises(TrainCheckpointError, match=r"a volume checkpoint \(model hilo3d_unet_nano\), not a video one"):
        evaluate_checkpoint(path, "video", tmp_path / "eval")
    with pytest.raises(TrainCheckpointError, match=r"not a classification one; .*`hilovit volume eval`"):
        evaluate_checkpoint(path, "classification", tmp_path / "eval")


def test_a_text_file_is_not_taken_for_a_checkpoint(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("hello\n")
    with pytest.raises(
        TrainCheckpointError, match=r"notes\.pt is not a training checkpoint: it is a file that starts with b'hell'"
    ):
        evaluate_checkpoint(text, "detect", tmp_path / "eval")
