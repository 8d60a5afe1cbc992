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
# model from the YAML, as a worker's ``setup_model`` does for a run that starts from a YAML, and reports.
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
    print(json.dumps({"hilovit_before": hilovit_before, "trainer": type(trainer).__name__, "built": built,
                      "unpickled": type(trainer.model).__name__, "parse_model_patched": hasattr(tasks, "C2fHiLo")}))

BaseTrainer.train = report
runpy.run_path(sys.argv[1], run_name="__main__")
"""


def _worker_report(trainer_class: type, scenes: Path, tmp_path: Path, name: str) -> dict:
    from ultralytics.utils.dist import generate_ddp_file

    overrides = dict(
        model=str(hilovit.yolo.model_yaml("yolov8-hilo", "n")), data=str(scenes), imgsz=64, epochs=1, batch=2,
        workers=0, device="cpu", plots=False, project=str(tmp_path), name=name, amp=False,
    )  # fmt: skip
    trainer = trainer_class(overrides=overrides)
    trainer.model = trainer.get_model(cfg=overrides["model"], verbose=False)
    script = Path(generate_ddp_file(trainer))
    try:
        env = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}
        done = subprocess.run(
            [sys.executable, "-c", WORKER, str(script)], env=env, capture_output=True, text=True, timeout=300
        )
    finally:
        script.unlink()
        script.with_suffix(".pt").unlink()
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_ddp_worker_registers_hilovit_before_building_the_model(scenes: Path, tmp_path: Path) -> None:
    hilovit.yolo.register()
    from hilovit.yolo.trainers import HiLoDetectionTrainer

    report = _worker_report(HiLoDetectionTrainer, scenes, tmp_path, "hilovit")
    assert report["hilovit_before"] is False  # the worker starts with ultralytics only, as ultralytics runs it
    assert report["trainer"] == "HiLoDetectionTrainer" and report["parse_model_patched"]
    assert {"C2fHiLo", "HiLoBlock", "HiLoLayer"} <= set(report["built"]) and report["unpickled"] == "DetectionModel"


def test_ddp_worker_of_ultralytics_own_trainer_cannot_parse_a_hilo_yaml(scenes: Path, tmp_path: Path) -> None:
    """Why the hilovit trainer exists: the plain trainer's worker has no HiLo modules in ultralytics' parser."""
    hilovit.yolo.register()
    from ultralytics.models.yolo.detect import DetectionTrainer

    report = _worker_report(DetectionTrainer, scenes, tmp_path, "plain")
    assert report["built"] == "KeyError: 'C2fHiLo'" and not report["parse_model_patched"]


def test_trainer_for_picks_the_registering_trainer_of_the_model_family() -> None:
    hilovit.yolo.register()
    from ultralytics import RTDETR, YOLO

    from hilovit.yolo.trainers import HiLoDetectionTrainer, HiLoRTDETRTrainer, trainer_for

    assert trainer_for(YOLO(hilovit.yolo.model_yaml("yolov8-hilo-neck", "n"))) is HiLoDetectionTrainer
    assert trainer_for(RTDETR(hilovit.yolo.model_yaml("rtdetr-hilo-l"))) is HiLoRTDETRTrainer
    assert trainer_for(YOLO("yolov8n-cls.yaml")) is None  # other tasks keep ultralytics' own trainer
