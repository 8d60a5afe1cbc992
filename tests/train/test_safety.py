"""A user's runs are safe: no silent overwrite, a NaN loss or a signal stops the run with its last good
checkpoint, a failed write keeps the previous checkpoint, resume restores the run's own settings."""

import errno
import signal
from pathlib import Path

import pytest
import torch

from hilovit.train import (
    NonFiniteLossError,
    RunInterrupted,
    TrainCheckpointError,
    TrainConfig,
    Trainer,
    load_config,
    train,
)
from hilovit.train import checkpoint as ckpt
from hilovit.train.commands import resumed_config
from hilovit.train.config import ConfigError
from hilovit.train.distributed import setup


def _finite(state_dict):
    return all(torch.isfinite(v).all() for v in state_dict.values() if v.is_floating_point())


def test_a_new_run_never_writes_into_an_earlier_one(tiny):
    first = train(tiny("max_steps=1"))
    before = (first.output / "last.pt").read_bytes()
    with pytest.raises(ValueError, match=r"output .*run is not empty \(.*last\.pt.*\): pass --exist-ok"):
        train(tiny("max_steps=1"))
    assert (first.output / "last.pt").read_bytes() == before
    assert train(tiny("max_steps=1", "exist_ok=true")).steps == 1


class _Diverging(Trainer):
    """The loss turns NaN at the third step."""

    def loss(self, batch):
        loss = super().loss(batch)
        return loss * float("nan") if self.step == 2 else loss


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tiny):
    trainer = _Diverging(tiny("checkpoint_every=1"), setup("cpu"))
    with pytest.raises(NonFiniteLossError, match=r"the loss is nan at step 3: .* keeps the weights of step 2"):
        trainer.fit()
    state = ckpt.load_train_checkpoint(trainer.checkpoint_path)
    assert state["step"] == 2 and _finite(state["model"])
    assert _finite(trainer.model.state_dict())  # stopped before the optimizer step


def test_checkpoints_are_periodic_in_time_by_default(tiny):
    assert TrainConfig().checkpoint_minutes == 10
    trainer = _Diverging(tiny("checkpoint_minutes=1e-9"), setup("cpu"))  # due after every step
    with pytest.raises(NonFiniteLossError, match="keeps the weights of step 2"):
        trainer.fit()


class _NanGradients(Trainer):
    """A finite loss whose gradients are NaN, as a bf16 overflow gives."""

    def loss(self, batch):
        loss = super().loss(batch)
        loss.register_hook(lambda grad: grad * float("nan"))
        return loss


def test_non_finite_gradients_skip_the_update_and_stop_the_run_when_they_persist(tiny):
    trainer = _NanGradients(tiny("checkpoint_every=1"), setup("cpu"))
    initial = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with pytest.raises(NonFiniteLossError, match=r"gradients were not finite in 5 steps in a row \(up to step 5\)"):
        trainer.fit()
    trained = trainer.model.state_dict()
    parameters = dict(trainer.model.named_parameters())
    assert all(torch.equal(initial[k], trained[k]) for k in parameters)  # no update was applied
    assert ckpt.load_train_checkpoint(trainer.checkpoint_path)["step"] == 4


class _Interrupted(Trainer):
    """SIGINT arrives during the second step, as Ctrl-C would."""

    def loss(self, batch):
        if self.step == 1:
            signal.raise_signal(signal.SIGINT)
        return super().loss(batch)


def test_sigint_saves_a_checkpoint_and_the_resumed_run_matches_an_uninterrupted_one(tiny, tmp_path):
    whole = train(tiny("max_steps=5", f"output={tmp_path / 'whole'}"))
    cut = tiny("max_steps=5", f"output={tmp_path / 'cut'}")
    with pytest.raises(RunInterrupted, match=r"SIGINT at step 2: checkpoint saved to .*last\.pt"):
        _Interrupted(cut, setup("cpu")).fit()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored
    resumed = train(tiny("max_steps=5", f"output={tmp_path / 'cut'}", f"resume={tmp_path / 'cut' / 'last.pt'}"))
    assert resumed.steps == whole.steps == 5
    reference = ckpt.load_train_checkpoint(tmp_path / "whole" / "last.pt")["model"]
    result = ckpt.load_train_checkpoint(tmp_path / "cut" / "last.pt")["model"]
    assert all(torch.equal(reference[k], result[k]) for k in reference)


@pytest.mark.parametrize(
    "failure",
    [OSError(errno.ENOSPC, "No space left on device"), RuntimeError("[enforce fail] unexpected pos 704 vs 598")],
)
def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch, failure):
    path = ckpt.save_atomic({"step": 1}, tmp_path / "last.pt")

    def full_disk(obj, file):
        Path(file).write_bytes(b"PK\x03\x04 partial")
        raise failure

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(
        ckpt.CheckpointWriteError, match=r"could not write checkpoint .*last\.pt: .*previous .* unchanged"
    ):
        ckpt.save_atomic({"step": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no half-written temporary left


def test_a_crash_while_writing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = ckpt.save_atomic({"step": 1}, tmp_path / "last.pt")

    def crash(obj, file):
        Path(file).write_bytes(b"PK\x03\x04 partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_atomic({"step": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_resume_restores_the_run_settings_and_refuses_contradicting_ones(tiny, tmp_path):
    run = train(tiny("max_steps=1", "lr=2e-3"))
    checkpoint = run.output / "last.pt"
    fresh = load_config("litv2_nano_fmnist", ["task=classification", "max_steps=3"])
    cfg = resumed_config(fresh, checkpoint, {"max_steps": "--max-steps"})
    assert (cfg.lr, cfg.img_size, cfg.max_steps, cfg.resume) == (2e-3, 16, 3, str(checkpoint))
    assert cfg.output == str(run.output)
    with pytest.raises(ConfigError, match=r"--img-size contradicts the run being resumed: it sets img_size 28, .*16"):
        resumed_config(fresh, checkpoint, {"img_size": "--img-size"})
    other = load_config("hilo3d_video_mfmnist")
    with pytest.raises(TrainCheckpointError, match=r"a classification checkpoint .*not a video one"):
        resumed_config(other, checkpoint, {})


def test_an_unavailable_device_is_named():
    with pytest.raises(ValueError, match=r"device 'cuda:99' is not available on this machine; it has: auto, cpu"):
        setup("cuda:99")
