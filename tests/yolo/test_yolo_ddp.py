"""Multi-GPU YOLO: the script ultralytics writes for its DDP workers, run in a fresh interpreter on CPU.

ultralytics pickles the trainer class and model next to a generated script and starts new processes on it; a worker
imports ultralytics afresh. With hilovit's trainer the worker registers the HiLo modules before it builds a model;
with ultralytics' own trainer it cannot parse a HiLo YAML.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ultralytics")
pytest.importorskip("cloudpickle")

import hilovit.yolo

# Runs the generated DDP script as a worker would (``__main__``), up to ``trainer.train()``; there it builds the
# model from the YAML, as a worker's ``setup_model`` does for a run that starts from a YAML, and reports on a line
# of its own that starts with REPORT (ultralytics logs to stdout too).
REPORT = "worker report: "
WORKER = """
import json, runpy, sys
from ultralytics.engine.trainer import BaseTrainer
hilovit_before = any(name.startswith("hilovit") for name in sys.modules)

def report(trainer):
    from ultralytics.nn import tasks
    try:
        model = trainer.get_model(cfg=trainer.args.model, verbose=False)
        built = sorted({type(m).__name__ for m in model.modules() if "HiLo" in type(m).__name__})
    except KeyError as error:  # parse_model: the YAML names a module ultralytics does not know
        built = f"KeyError: {error}"
    report = {"hilovit_before": hilovit_before, "trainer": type(trainer).__name__, "built": built,
              "unpickled": type(trainer.model).__name__, "parse_model_patched": hasattr(tasks, "C2fHiLo")}
    print("worker report: " + json.dumps(report))

BaseTrainer.train = report
runpy.run_path(sys.argv[1], run_name="__main__")
"""


def _start_worker(trainer_class: type, scenes: Path, tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """The DDP script ultralytics generates for ``trainer_class`` on yolov8n-hilo, started in WORKER."""
    from ultralytics.utils.dist import generate_ddp_file

    overrides = dict(
        model=str(hilovit.yolo.model_yaml("yolov8-hilo", "n")), data=str(scenes), imgsz=64, epochs=1, batch=2,
        workers=0, device="cpu", plots=False, project=str(tmp_path), name=trainer_class.__name__, amp=False,
    )  # fmt: skip
    trainer = trainer_class(overrides=overrides)
    trainer.model = trainer.get_model(cfg=overrides["model"], verbose=False)
    script = Path(generate_ddp_file(trainer))
    env = os.environ | {"OMP_NUM_THREADS": "1"}  # a model build, not a benchmark: no thread pool to spin up
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(script)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return worker, script


@pytest.fixture(scope="module")
def worker_reports(scenes: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict | str]:
    """Trainer class name -> its worker's report, or the worker's whole output when it printed none. The two
    workers run side by side (each is one import of ultralytics and one model build)."""
    hilovit.yolo.register()
    from ultralytics.models.yolo.detect import DetectionTrainer

    from hilovit.yolo.trainers import HiLoDetectionTrainer

    tmp_path = tmp_path_factory.mktemp("ddp")
    started = [_start_worker(trainer, scenes, tmp_path) for trainer in (HiLoDetectionTrainer, DetectionTrainer)]
    reports: dict[str, dict | str] = {}
    for (worker, script), name in zip(started, ("HiLoDetectionTrainer", "DetectionTrainer"), strict=True):
        try:
            output, _ = worker.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            worker.kill()
            output = worker.communicate()[0] + "\n(killed after 300 s)"
        finally:
            script.unlink()
            script.with_suffix(".pt").unlink()
        lines = [line for line in output.splitlines() if line.startswith(REPORT)]
        reports[name] = (
            json.loads(lines[-1].removeprefix(REPORT))
            if worker.returncode == 0 and lines
            else f"worker exited with {worker.returncode}; its output:\n{output[-6000:]}"
        )
    return reports


def _report(reports: dict[str, dict | str], trainer: str) -> dict:
    report = reports[trainer]
    assert isinstance(report, dict), report  # the failure shows everything the worker printed
    return report


def test_ddp_worker_registers_hilovit_before_building_the_model(worker_reports: dict[str, dict | str]) -> None:
    report = _report(worker_reports, "HiLoDetectionTrainer")
    assert report["hilovit_before"] is False  # the worker starts with ultralytics only, as ultralytics runs it
    assert report["trainer"] == "HiLoDetectionTrainer" and report["parse_model_patched"]
    assert {"C2fHiLo", "HiLoBlock", "HiLoLayer"} <= set(report["built"]) and report["unpickled"] == "DetectionModel"


def test_ddp_worker_of_ultralytics_own_trainer_cannot_parse_a_hilo_yaml(worker_reports: dict[str, dict | str]) -> None:
    """Why the hilovit trainer exists: the plain trainer's worker has no HiLo modules in ultralytics' parser."""
    report = _report(worker_reports, "DetectionTrainer")
    assert report["built"] == "KeyError: 'C2fHiLo'" and not report["parse_model_patched"]


def test_trainer_for_picks_the_registering_trainer_of_the_model_family() -> None:
    hilovit.yolo.register()
    from ultralytics import RTDETR, YOLO

    from hilovit.yolo.trainers import HiLoDetectionTrainer, HiLoRTDETRTrainer, trainer_for

    assert trainer_for(YOLO(hilovit.yolo.model_yaml("yolov8-hilo-neck", "n"))) is HiLoDetectionTrainer
    assert trainer_for(RTDETR(hilovit.yolo.model_yaml("rtdetr-hilo-l"))) is HiLoRTDETRTrainer
    assert trainer_for(YOLO("yolov8n-cls.yaml")) is None  # other tasks keep ultralytics' own trainer
