"""Train, validate and export through ultralytics with the network refused; reload in a fresh interpreter."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("ultralytics")
onnxruntime = pytest.importorskip("onnxruntime")

import hilovit.yolo  # noqa: E402
from hilovit.cli import main  # noqa: E402
from hilovit.speed import fixed_threads  # noqa: E402

IMGSZ = 64
# A fresh interpreter: network refused from the first line, hilovit.yolo before ultralytics, the checkpoint
# loaded with YOLO(path) after register(); prints what it saw as JSON.
RELOAD = """
import json, socket, sys
import torch
threads = torch.get_num_threads()  # torch's own default: nothing else imported yet
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args[:2]))
    raise OSError("network refused")
socket.getaddrinfo = socket.create_connection = socket.socket.connect = refuse
import hilovit.yolo
hilovit.yolo.register()
from ultralytics import YOLO
model = YOLO(sys.argv[1]).model.eval()
with torch.inference_mode():
    torch.save(model(torch.load(sys.argv[2]))[0], sys.argv[3])
types = sorted({f"{type(m).__module__}.{type(m).__name__}" for m in model.modules()})
print(json.dumps({"threads": threads, "attempts": attempts, "hilovit": [t for t in types if "hilovit" in t]}))
"""
ULTRALYTICS_FIRST = """
import ultralytics, torch
import hilovit.yolo
hilovit.yolo.register()
print(torch.get_num_threads())
"""


def _python(code: str, *args: str) -> str:
    """Run ``code`` in a fresh interpreter started without OMP_NUM_THREADS; returns its stdout's last line."""
    env = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def trained(scenes: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[str]]]:
    """One epoch of yolo11n-hilo on the scenes with plain ultralytics calls, network refused: (best.pt, attempts)."""
    attempts: list[str] = []

    def refuse(*args, **kwargs):
        attempts.append(repr(args[:2]))
        raise OSError("network refused")

    hilovit.yolo.register()
    from ultralytics import YOLO

    with pytest.MonkeyPatch.context() as patch:
        for owner, name in ((socket, "getaddrinfo"), (socket, "create_connection"), (socket.socket, "connect")):
            patch.setattr(owner, name, refuse)
        model = YOLO(hilovit.yolo.model_yaml("yolo11-hilo", "n"))
        model.train(
            data=str(scenes), imgsz=IMGSZ, epochs=1, batch=4, workers=0, device="cpu", seed=0, plots=False,
            project=str(tmp_path_factory.mktemp("runs")), name="train", verbose=False,
        )  # fmt: skip
    yield Path(model.trainer.best), attempts


def test_training_is_offline(trained: tuple[Path, list[str]]) -> None:
    best, attempts = trained
    assert attempts == []
    assert best.is_file() and (best.parent.parent / "results.csv").is_file()


def test_plot_text_uses_the_installed_font_offline(no_network: list[str]) -> None:
    """Plots (plots=True) draw labels with ultralytics' Arial.ttf lookup: answered by the copied DejaVu Sans."""
    hilovit.yolo.register()
    from ultralytics.utils import USER_CONFIG_DIR
    from ultralytics.utils.checks import check_font
    from ultralytics.utils.plotting import Annotator

    annotator = Annotator(np.zeros((64, 96, 3), dtype=np.uint8), pil=True, example="Bag")
    annotator.box_label([4, 4, 60, 40], "Bag 0.91")
    assert Path(check_font("Arial.ttf")) == USER_CONFIG_DIR / "Arial.ttf"
    assert Path(annotator.font.path).name == "Arial.ttf" and no_network == []


def test_val_offline(trained: tuple[Path, list[str]], scenes: Path, no_network: list[str]) -> None:
    from ultralytics import YOLO

    metrics = YOLO(trained[0]).val(data=str(scenes), imgsz=IMGSZ, batch=4, workers=0, device="cpu", plots=False)
    assert 0.0 <= metrics.box.map <= 1.0 and no_network == []


def test_onnx_export_runs_in_onnxruntime(
    trained: tuple[Path, list[str]], no_network: list[str], capsys: pytest.CaptureFixture
) -> None:
    main(["yolo", "export", "--model", str(trained[0]), "--imgsz", str(IMGSZ), "--device", "cpu", "simplify=False"])
    onnx_file = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert onnx_file.suffix == ".onnx" and no_network == []

    from ultralytics import YOLO

    x = torch.rand(1, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(0))
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    (exported,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.inference_mode():
        expected = YOLO(trained[0]).model.float().eval()(x)[0].numpy()
    assert exported.shape == expected.shape == (1, 4 + 10, sum((IMGSZ // s) ** 2 for s in (8, 16, 32)))
    np.testing.assert_allclose(exported, expected, rtol=1e-3, atol=1e-3)


@pytest.fixture(scope="module")
def fresh_process(trained: tuple[Path, list[str]], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """RELOAD's report on the trained checkpoint, plus the input it ran on and its output."""
    folder = tmp_path_factory.mktemp("fresh")
    x = torch.rand(1, 3, IMGSZ, 96, generator=torch.Generator().manual_seed(1))
    torch.save(x, folder / "x.pt")
    report = json.loads(_python(RELOAD, str(trained[0]), str(folder / "x.pt"), str(folder / "out.pt")))
    return report | {"x": x, "out": torch.load(folder / "out.pt")}


def test_checkpoint_reloads_in_fresh_process(trained: tuple[Path, list[str]], fresh_process: dict) -> None:
    from ultralytics import YOLO

    modules = {f"hilovit.yolo.modules.{name}" for name in ("C2HiLo", "C3k2HiLo", "HiLoBlock", "HiLoLayer")}
    assert modules <= set(fresh_process["hilovit"])
    with torch.inference_mode():
        expected = YOLO(trained[0]).model.eval()(fresh_process["x"])[0]
    torch.testing.assert_close(fresh_process["out"], expected, rtol=1e-4, atol=1e-4)


def test_fresh_process_import_is_offline(fresh_process: dict) -> None:
    assert fresh_process["attempts"] == []  # hilovit.yolo imported first: ultralytics' import probes nothing


def test_ultralytics_first_does_not_leave_torch_on_one_thread(fresh_process: dict) -> None:
    assert int(_python(ULTRALYTICS_FIRST)) == fresh_process["threads"]


SMALL = 32  # the smallest size ultralytics allows: one cell at stride 32, at most 21 RT-DETR queries
EVERY_OTHER_YAML = [
    hilovit.yolo.model_yaml(name, None).stem
    for name in hilovit.yolo.model_yamls()
    if name != "yolo11-hilo"  # trained above, with plain ultralytics calls
]


@pytest.mark.slow
@pytest.mark.parametrize("model", EVERY_OTHER_YAML)
def test_every_yaml_trains_validates_and_exports_offline_through_the_cli(
    model: str,
    scenes: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_network: list[str],
    capsys: pytest.CaptureFixture,
) -> None:
    """One epoch, val and ONNX export of each shipped YAML (scale n) with ``hilovit yolo``, network refused; the
    runs land under the working directory; ultralytics' settings (``runs_dir``, ...) are neither used nor changed;
    training and validation compute on torch's thread count, not on the one thread ultralytics' ``select_device``
    sets on a 2-core machine (``cpu_count() - 1``, made 1 here on any machine).
    Kept cheap: the shipped YAML as it is, at 32 px, one training step (4 images, batch 4), 2 validation images."""
    from ultralytics import YOLO
    from ultralytics.engine.trainer import BaseTrainer
    from ultralytics.models.yolo.detect import DetectionValidator
    from ultralytics.utils import SETTINGS

    threads_seen: list[int] = []

    def record_threads(method):
        def recorded(*args, **kwargs):
            threads_seen.append(torch.get_num_threads())
            return method(*args, **kwargs)

        return recorded

    monkeypatch.setattr("ultralytics.utils.torch_utils.NUM_THREADS", 1)
    monkeypatch.setattr(BaseTrainer, "optimizer_step", record_threads(BaseTrainer.optimizer_step))
    monkeypatch.setattr(DetectionValidator, "update_metrics", record_threads(DetectionValidator.update_metrics))
    watched = ("runs_dir", "datasets_dir", "weights_dir", "sync")  # export sets a one-time *_msg flag of its own
    settings = {key: SETTINGS[key] for key in watched}
    monkeypatch.chdir(tmp_path)
    common = ["--data", str(scenes), "--img-size", str(SMALL), "--device", "cpu", "--output", "runs", "plots=False"]
    with fixed_threads(2):
        main(["yolo", "train", "--model", model, "--epochs", "1", "--batch-size", "4", *common])
        best = tmp_path / "runs" / "train" / "weights" / "best.pt"
        assert capsys.readouterr().out.strip().endswith(f"weights: {best}")
        main(["yolo", "val", "--model", str(best), "--batch", "2", *common])
        assert "mAP50-95" in capsys.readouterr().out and (tmp_path / "runs" / "val").is_dir()
    assert len(threads_seen) >= 3 and set(threads_seen) == {2}, threads_seen  # a step, then validation batches
    main(["yolo", "export", "--model", str(best), "--imgsz", str(SMALL), "--device", "cpu", "simplify=False"])
    onnx_file = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert onnx_file == best.with_suffix(".onnx")

    x = torch.rand(1, 3, SMALL, SMALL, generator=torch.Generator().manual_seed(0))
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    (exported,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    detector = YOLO(best)
    assert type(detector).__name__ == ("RTDETR" if model.startswith("rtdetr") else "YOLO")
    with torch.inference_mode():
        expected = detector.model.float().eval()(x)[0].numpy()
    assert exported.shape == expected.shape
    np.testing.assert_allclose(exported, expected, rtol=1e-3, atol=1e-3)
    assert no_network == [] and {key: SETTINGS[key] for key in watched} == settings
