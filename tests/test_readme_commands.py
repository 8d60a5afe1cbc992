"""The README cannot drift: every command of its shell blocks runs as written, in order, in one working folder
(so `runs/det/last.pt` written by `detect train` is there for `detect eval`), with tiny budgets added by
:data:`RULES`; the files a user brings are made first (:data:`INPUTS`). A README command without a rule fails the
test with the rule to add. hilovit commands run in this process (:func:`readme_commands.run`), `torchrun` ones as
subprocesses."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image

import hilovit  # noqa: F401  (registers the LITv2 models with timm)
from readme_commands import (
    SKIPPED_PROGRAMS,
    Command,
    Outcome,
    Rule,
    read_readme,
    readme_commands,
    rule_for,
    run,
    runnable_argv,
)

COMMAND_TIMEOUT_S = 600
#: variables that would point the commands at the user's own caches, settings or tracebacks
ISOLATED_VARIABLES = ("HILOVIT_CACHE", "HILOVIT_TRACEBACK", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "YOLO_CONFIG_DIR")
TAIL_CHARS = 3000


def _tail(text: str) -> str:
    return text[-TAIL_CHARS:] if len(text) > TAIL_CHARS else text


def _photo(folder: Path, env: dict[str, str]) -> None:
    """`photo.png`: the user's own picture in `detect predict runs/det/last.pt photo.png`."""
    pixels = np.random.default_rng(0).integers(0, 256, size=(80, 96, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / "photo.png")


def _official_litv2_nano(folder: Path, env: dict[str, str]) -> None:
    """`litv2_nano.pth` for `litv2_s.pth`: official LITv2 weights (`{"model": state_dict}`, the official keys),
    random values, of LITv2-nano (see SMALLER_MODEL)."""
    torch.save({"model": timm.create_model("litv2_nano").state_dict()}, folder / "litv2_nano.pth")


def _my_images(folder: Path, env: dict[str, str]) -> None:
    """`my_images/`: the user's own calibration images, 8 of 48x40 px."""
    _save_images(folder / "my_images", 8)


def _imagenet_stand_in(folder: Path, env: dict[str, str]) -> None:
    """`imagenet_stand_in/` for `/path/to/imagenet`: an ImageFolder with ImageNet's layout, 2 classes of 4 images
    per split."""
    for split in ("train", "val"):
        for name in ("n01440764", "n01443537"):
            _save_images(folder / "imagenet_stand_in" / split / name, 4)


def _save_images(directory: Path, count: int) -> None:
    directory.mkdir(parents=True)
    rng = np.random.default_rng(len(str(directory)))
    for index in range(count):
        pixels = rng.integers(0, 256, size=(40, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(directory / f"{index}.png")


TINY_FMNIST = ("train_subset=64", "test_subset=64", "batch_size=32", "throughput_batch=2", "max_steps=1")


def _demo_run(folder: Path, env: dict[str, str]) -> None:
    """`runs/demo/hilo/...`: written by `hilovit demo` (what `make demo` runs), one step per network on 64 images."""
    argv = [sys.executable, "-m", "hilovit", "demo", *TINY_FMNIST]
    outcome = run(argv, folder, env, COMMAND_TIMEOUT_S)
    if outcome.status != 0:
        raise RuntimeError(f"`{' '.join(argv[2:])}` exit status {outcome.status}:\n{_tail(outcome.stderr)}")


#: Inputs a user brings (a photo, official weights, a data set) or that a command outside the README writes (the
#: demo), made in the working folder before the first command that is run with a word containing the key.
INPUTS: dict[str, Callable[[Path, dict[str, str]], None]] = {
    "photo.png": _photo,
    "litv2_nano.pth": _official_litv2_nano,
    "my_images/": _my_images,
    "imagenet_stand_in": _imagenet_stand_in,
    "runs/demo/hilo/": _demo_run,
}
#: Exports and deployment run LITv2-nano (and its backbone, detector, segmenter) where the README shows LITv2-S:
#: what is tested is the command (its grammar, flags, files and checks), the same for every variant.
SMALLER_MODEL = (("litv2_s", "litv2_nano"),)
TINY_SCENES = ("--img-size", "64", "--scene-images", "8", "4", "--batch-size", "2")
ONE_TIMED_CALL = ("--warmup", "0", "--repeats", "1")
TINY_DEPLOY = ("--batch-size", "2", "--calibration-images", "4", "--eval-images", "4", *ONE_TIMED_CALL)
ONE_MORE_STEP = ("--max-steps", "3")  # the runs resumed were stopped after 2
#: How each README command runs in the test (the most specific matching rule applies: one with `when`, then the
#: longest prefix). Budgets are cut to a few steps and a few small images; the README's own outputs are kept, so a
#: command that would write into an earlier command's run fails, as it would for a user.
RULES = (
    Rule(
        "detect train",
        "2 steps on 8 scenes of 64 px (or the tree-crown tiles); one throughput batch of 2",
        extra=("--max-steps", "2", *TINY_SCENES),
        overrides=("throughput_batch=2",),
    ),
    Rule("detect train", "one more step", extra=ONE_MORE_STEP, when="--resume"),
    Rule("detect eval", "the checkpoint's own (tiny) validation set"),
    Rule("detect predict", "as written"),
    Rule(
        "segment train",
        "2 steps on 8 scenes of 64 px; one throughput batch of 2",
        extra=("--max-steps", "2", *TINY_SCENES),
        overrides=("throughput_batch=2",),
    ),
    Rule(
        "yolo data",
        "8 training and 4 validation scenes of 64 px",
        extra=("--train-images", "8", "--val-images", "4", "--img-size", "64"),
    ),
    Rule("yolo train", "one epoch at 64 px, batch 4", extra=("--epochs", "1", "--img-size", "64", "--batch-size", "4")),
    Rule("yolo val", "64 px, batch 4", extra=("--img-size", "64", "--batch-size", "4")),
    Rule("yolo export", "64 px", extra=("--img-size", "64")),
    Rule(
        "video train",
        "2 steps of 4 clips, 8 test clips",
        extra=("--max-steps", "2", "--batch-size", "4"),
        overrides=("train_subset=16", "test_subset=8", "throughput_batch=2"),
    ),
    Rule(
        "volume train",
        "2 steps of one crop, 2 crops per epoch",
        extra=("--max-steps", "2", "--batch-size", "1"),
        overrides=("data_kwargs={crops_per_epoch: 2}", "throughput_batch=1"),
    ),
    Rule("volume train", "one more step", extra=ONE_MORE_STEP, when="--resume"),
    Rule("volume eval", "the checkpoint's own validation slab"),
    Rule(
        "export onnx",
        "LITv2-nano variants, traced and checked at 33x47 (the export tests cover more sizes)",
        extra=("--img-size", "33x47"),
        replace=SMALLER_MODEL,
    ),
    Rule("export onnx litv2_nano", "the demo's model at its 28 px, as written"),
    Rule(
        "export onnx hilo",
        "a 32-channel, 2-head layer on 7x7 and 5x9 maps",
        extra=("--dim", "32", "--heads", "2", "--img-size", "7x7,5x9"),
    ),
    Rule(
        "export torch-export",
        "LITv2-nano, traced and checked at 33x47 (the export tests cover more sizes)",
        extra=("--img-size", "33x47"),
        replace=SMALLER_MODEL,
    ),
    Rule(
        "bench deploy",
        "LITv2-nano variants at 32 px, batch 2, 4 calibration and 4 evaluation images, one timed call, PyTorch and "
        "ONNX Runtime only (all six runtimes take minutes)",
        extra=(*TINY_DEPLOY, "--img-size", "32", "--runtimes", "pytorch,onnxruntime"),
        replace=SMALLER_MODEL,
    ),
    Rule(
        "bench deploy litv2_nano",
        "the checkpoint's 28 px, 4 test images, PyTorch and ONNX Runtime fp32 and int8 (--sensitivity quantises)",
        extra=(*TINY_DEPLOY, "--runtimes", "pytorch,onnxruntime,onnxruntime-int8"),
    ),
    Rule(
        "bench deploy hilo",
        "14x14 as written, batch 2, one timed call, PyTorch and ONNX Runtime only",
        extra=(*TINY_DEPLOY, "--runtimes", "pytorch,onnxruntime"),
    ),
    Rule(
        "bench deploy litv2_s --calibration",
        "LITv2-nano at 32 px, batch 2, 4 calibration and 4 evaluation images, the runtimes as written",
        extra=(*TINY_DEPLOY, "--img-size", "32"),
        replace=SMALLER_MODEL,
    ),
    Rule(
        "benchmarks/bench_deploy.py",
        "--quick: LITv2-nano at 32 px and the demo's model, PyTorch and ONNX Runtime, a few images, one timed call",
        extra=("--quick",),
    ),
    Rule(
        "train",
        "LITv2-nano, 2 steps at 32 px, batch 4, no loader processes, 2 torchrun processes, on the ImageNet stand-in",
        extra=("--max-steps", "2", "--img-size", "32", "--batch-size", "4", "--workers", "0"),
        overrides=("model=litv2_nano", "throughput_batch=2"),
        replace=(("/path/to/imagenet", "imagenet_stand_in"), ("--nproc_per_node=8", "--nproc_per_node=2")),
    ),
    Rule("train", "one more step", extra=ONE_MORE_STEP, when="--resume"),
    Rule("eval", "on the ImageNet stand-in", replace=(("/path/to/imagenet", "imagenet_stand_in"),)),
)


def _runnable() -> list[tuple[Command, Rule | None]]:
    return [
        (command, rule_for(command, RULES))
        for command in readme_commands(read_readme())
        if command.program not in SKIPPED_PROGRAMS
    ]


def test_readme_commands_are_read_from_every_shell_block():
    text = "\n".join(
        [
            "```bash",
            "hilovit detect train --model x  # trains",
            "make demo",
            "```",
            "```python",
            "hilovit not a command",
            "```",
            "```console",
            "$ HILOVIT_TRACEBACK=1 python -m hilovit eval \\",
            "    runs/last.pt --data 'my data'",
            "output line",
            "```",
            "```",
            "hilovit untagged",
            "```",
            "```sh",
            "torchrun --nproc_per_node=2 -m hilovit video train max_steps=3 --resume",
            "python benchmarks/bench_x.py --quick",
            "```",
        ]
    )
    commands = readme_commands(text)
    assert [(c.line, c.words, c.env) for c in commands] == [
        (2, ("hilovit", "detect", "train", "--model", "x"), {}),
        (3, ("make", "demo"), {}),
        (9, ("python", "-m", "hilovit", "eval", "runs/last.pt", "--data", "my data"), {"HILOVIT_TRACEBACK": "1"}),
        (17, ("torchrun", "--nproc_per_node=2", "-m", "hilovit", "video", "train", "max_steps=3", "--resume"), {}),
        (18, ("python", "benchmarks/bench_x.py", "--quick"), {}),
    ]
    assert [c.rule_words for c in commands[2:]] == [
        ("eval", "runs/last.pt", "--data", "my data"),
        ("video", "train", "max_steps=3", "--resume"),
        ("benchmarks/bench_x.py", "--quick"),
    ]
    resume = Rule("video train", "", extra=("--max-steps", "4"), overrides=("a=1",), when="--resume")
    rules = (Rule("video", "", overrides=("b=2",)), resume)
    assert rule_for(commands[3], rules) is resume and rule_for(commands[2], rules) is None
    argv = runnable_argv(commands[3], resume)
    assert argv[0].endswith("torchrun")
    assert argv[1:] == [
        *("--nproc_per_node=2", "-m", "hilovit", "video", "train", "max_steps=3", "a=1", "--resume"),
        *("--max-steps", "4"),
    ]
    assert runnable_argv(commands[4], Rule("benchmarks/bench_x.py", ""))[1].endswith("/benchmarks/bench_x.py")
    (piped,) = readme_commands("```bash\nhilovit models | head -3\n```")
    with pytest.raises(ValueError, match=r"README line 2: `hilovit models \| head -3` uses shell operator\(s\) \|"):
        runnable_argv(piped, Rule("models", ""))


def test_every_readme_command_has_a_rule():
    missing = [
        f"README line {command.line}: `{command.text}`: add a Rule({' '.join(command.rule_words[:2])!r}, why=..., "
        "extra=(tiny budget...)) to RULES in tests/test_readme_commands.py"
        for command, rule in _runnable()
        if rule is None
    ]
    assert not missing, "\n".join(missing)


def test_every_rule_and_input_is_used():
    runnable = [(command, rule) for command, rule in _runnable() if rule is not None]
    unused = [rule for rule in RULES if not any(used is rule for _, used in runnable)]
    assert not unused, f"rules that no README command uses (remove them): {unused}"
    words = [word for command, rule in runnable for word in runnable_argv(command, rule)]
    unread = [key for key in INPUTS if not any(key in word for word in words)]
    assert not unread, f"INPUTS that no README command reads (remove them): {unread}"


def test_commands_run_in_process_as_a_fresh_process_would(tmp_path):
    """hilovit's exit status and one-line error come back; the working folder, environment, ``sys.argv`` and
    torch's thread count are this process's own again afterwards."""
    cwd, environ, argv, threads = os.getcwd(), dict(os.environ), sys.argv, torch.get_num_threads()
    listed = run([sys.executable, "-m", "hilovit", "models", "litv2_nan?"], tmp_path, {}, 60)
    assert listed == Outcome(0, "litv2_nano\n", "")
    refused = run([sys.executable, "-m", "hilovit", "models", "nothing*"], tmp_path, {}, 60)
    assert (refused.status, refused.stderr) == (2, "hilovit: error: no model matches 'nothing*'\n")
    script = tmp_path / "script.py"
    script.write_text("import os, sys, torch\ntorch.set_num_threads(9)\nprint(os.getcwd(), sys.argv, dict(os.environ))")
    ran = run([sys.executable, str(script), "--x"], tmp_path, {"HILOVIT_X": "1"}, 60)
    assert ran == Outcome(0, f"{tmp_path} {[str(script), '--x']} {{'HILOVIT_X': '1'}}\n", "")
    script.write_text("raise RuntimeError('broken')")
    crashed = run([sys.executable, str(script)], tmp_path, {}, 60)
    assert crashed.status == "uncaught RuntimeError" and crashed.stderr.endswith("RuntimeError: broken\n")
    assert (os.getcwd(), dict(os.environ), sys.argv, torch.get_num_threads()) == (cwd, environ, argv, threads)


@pytest.mark.slow
def test_readme_commands_run_as_written(tmp_path):
    """Each command exits 0; a failure is reported with the command as written, as run, and its output's tail.
    Every command runs even after a failure, so one run lists them all."""
    runnable = _runnable()
    assert runnable, "the README has no shell commands"
    assert all(rule is not None for _, rule in runnable), "see test_every_readme_command_has_a_rule"
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {key: value for key, value in os.environ.items() if key not in ISOLATED_VARIABLES}
    env |= {"HOME": str(home), "MPLBACKEND": "Agg"}  # caches and settings go to a fresh home
    failures, timings, made = [], [], set()
    for command, rule in runnable:
        argv, start = runnable_argv(command, rule), time.perf_counter()
        needed = [key for key in INPUTS if key not in made and any(key in word for word in argv)]
        outcome = None
        try:
            for key in needed:
                made.add(key)
                INPUTS[key](work, env)
        except Exception as error:  # a failed input fails this command, not the ones after it
            outcome = Outcome(f"none: making input {key!r} failed", "", f"{type(error).__name__}: {error}")
        inputs = f" (inputs made in {time.perf_counter() - start:.1f} s)" if needed else ""
        if outcome is None:
            outcome = run(argv, work, env | command.env, COMMAND_TIMEOUT_S)
        seconds = time.perf_counter() - start
        timings.append(f"{seconds:6.1f} s  exit {outcome.status}{inputs}  README line {command.line}: {command.text}")
        if outcome.status != 0:
            failures.append(
                f"README line {command.line}: `{command.text}`\n  ran: {' '.join(argv)}\n  exit status "
                f"{outcome.status} after {seconds:.1f} s\n  stdout (tail):\n{_tail(outcome.stdout)}\n"
                f"  stderr (tail):\n{_tail(outcome.stderr)}"
            )
    print("\n".join(timings))
    if not failures:
        shutil.rmtree(work)  # exported models and weights
    assert not failures, f"{len(failures)} of {len(runnable)} README commands failed:\n\n" + "\n\n".join(failures)
