"""Every task on the one engine: SIGKILL then resume ends with the weights of an uninterrupted run, two gloo
processes end with equal weights and resume exactly, bf16 autocast trains, on tiny data and models."""

import dataclasses
import json
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from hilovit.train import TASK_TRAINERS, TrainConfig, load_config, train
from hilovit.train import checkpoint as ckpt
from hilovit.train.distributed import setup

DENSE = ["img_size=64", "scene_images=[4, 2]", "batch_size=2", "progress=false", "throughput_batch=2"]
RECIPES = {
    "detect": ("retinanet_litv2_nano_scenes", DENSE),
    "segment": ("semantic_fpn_litv2_nano_scenes", DENSE),
    "video": (
        "hilo3d_video_mfmnist",
        [
            "data_kwargs={frames: 4, size: 16, object_size: 8, speeds: [2]}",
            "model_kwargs={embed_dims: [16, 32], num_heads: [2, 2], windows: [[2, 2, 2], [1, 1, 1]]}",
            "train_subset=8",
            "test_subset=4",
            "batch_size=4",
            "progress=false",
            "throughput_batch=2",
        ],
    ),
    "volume": (
        "hilo3d_unet_mni152",
        [
            "data=nuclei",
            "data_kwargs={crop: [8, 16, 16], crops_per_epoch: 8, val_fraction: 0.1}",
            "model_kwargs={widths: [4, 8, 16, 16], num_heads: [2, 2]}",
            "batch_size=2",
            "progress=false",
            "throughput_batch=2",
        ],
    ),
}
# Run configs given as JSON one after the other (a new Trainer each, in one process group under torchrun) and
# save each process's final weights as OUTPUT/rank<r>.pt.
CHILD = """
import json, sys, torch
from hilovit.train import TASK_TRAINERS, TrainConfig
from hilovit.train.distributed import setup, teardown
for text in sys.argv[1:]:
    cfg = TrainConfig(**json.loads(text)).validate()
    env = setup(cfg.device)
    trainer = TASK_TRAINERS[cfg.task](cfg, env)
    trainer.fit()
    torch.save(trainer.eval_model.state_dict(), f"{cfg.output}/rank{env.rank}.pt")
teardown(env)
"""


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("HILOVIT_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))  # scenes made once
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def _config(task, output, *extra):
    recipe, options = RECIPES[task]
    return load_config(recipe, [*options, f"output={output}", "checkpoint_every=1", *extra])


def _equal(reference, result):
    assert reference.keys() == result.keys()
    different = [key for key in reference if not torch.equal(reference[key], result[key])]
    assert not different, different[:5]


def _weights(run):
    return ckpt.load_train_checkpoint(run / "last.pt")["model"]


def _child(tmp_path, *configs: TrainConfig) -> list[str]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    return [str(script), *(json.dumps(cfg.to_dict()) for cfg in configs)]


@pytest.mark.slow
@pytest.mark.parametrize("task", ["classification", "detect", "segment"])
def test_sigkill_then_resume_ends_with_the_weights_of_an_uninterrupted_run(task, tiny, tmp_path):
    def config(output, *extra):
        if task == "classification":
            return tiny(f"output={output}", "epochs=50", "checkpoint_every=1", *extra)
        return _config(task, output, "epochs=50", *extra)

    steps = 8 if task == "classification" else 4
    whole = train(config(tmp_path / "whole", f"max_steps={steps}"))
    killed = subprocess.Popen([sys.executable, *_child(tmp_path, config(tmp_path / "cut"))], stderr=subprocess.PIPE)
    checkpoint = tmp_path / "cut" / "last.pt"
    while not checkpoint.exists() and killed.poll() is None:
        time.sleep(0.005)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL, killed.stderr.read().decode()[-2000:]
    assert 1 <= ckpt.load_train_checkpoint(checkpoint)["step"] < steps
    resumed = train(config(tmp_path / "cut", f"max_steps={steps}", f"resume={checkpoint}"))
    assert resumed.steps == whole.steps == steps
    _equal(_weights(tmp_path / "whole"), _weights(tmp_path / "cut"))


def _torchrun(tmp_path, arguments: list[str]) -> None:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *arguments]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("task", ["detect", "segment", "video"])
def test_two_processes_end_with_equal_weights_and_resume_exactly(task, tmp_path):
    """One torchrun launch trains the uninterrupted run and the cut one; `torchrun -m hilovit <task> train
    --resume` continues the cut one in new processes, with its own settings."""
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    _torchrun(tmp_path, [*_child(tmp_path, _config(task, whole, "max_steps=2"), _config(task, cut, "max_steps=1"))])
    _equal(torch.load(whole / "rank0.pt"), torch.load(whole / "rank1.pt"))
    assert ckpt.load_train_checkpoint(cut / "last.pt")["world_size"] == 2
    _torchrun(tmp_path, ["-m", "hilovit", task, "train", "--resume", str(cut / "last.pt"), "--max-steps", "2"])
    _equal(torch.load(whole / "rank0.pt"), load_file(cut / "model.safetensors"))
    _equal(_weights(whole), _weights(cut))


@pytest.mark.parametrize("task", ["detect", "segment", "video", "volume"])
def test_bf16_autocast_trains_every_task(task, tmp_path):
    # 128 px: at 64 px RetinaNet's P6/P7 maps are 1 x 1 and CPU bf16 gives non-finite P7 gradients (skipped)
    cfg = _config(task, tmp_path / "run", "max_steps=2", "precision=bf16", "img_size=128")
    initial = TASK_TRAINERS[task](cfg, setup("cpu")).model.state_dict()
    assert train(cfg).steps == 2
    trained = _weights(tmp_path / "run")
    assert _finite(trained) and any(not torch.equal(initial[k], trained[k]) for k in trained)
    assert train(dataclasses.replace(cfg, output=str(tmp_path / "again"))).steps == 2
    _equal(trained, _weights(tmp_path / "again"))  # bf16 on CPU is deterministic too (see hilovit.train.cpu_bf16)


def _finite(state_dict):
    return all(torch.isfinite(v).all() for v in state_dict.values() if v.is_floating_point())
