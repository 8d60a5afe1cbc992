"""One `hilovit bench deploy` run: prepare the candidates, compare their outputs with PyTorch fp32, time them at
batch 1 and batch N, and optionally profile them, measure per-layer int8 sensitivity and keep the best artifact."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from torch import Tensor

from hilovit.export.fidelity import Fidelity, fidelity, run_batches
from hilovit.export.int8 import QuantizedModel
from hilovit.export.signal_stack import kept_signal_stack
from hilovit.speed.deploy.candidates import Candidate, prepare
from hilovit.speed.deploy.choice import save
from hilovit.speed.deploy.measure import batch_of, failure, measure_batch
from hilovit.speed.deploy.settings import CANDIDATES, DeployReport, DeployRow, DeploySettings
from hilovit.speed.deploy.target import build_target
from hilovit.speed.environment import environment, fixed_threads
from hilovit.speed.runtime_profile import profile_runtime

__all__ = ["bench_deploy"]

Quality = tuple[Fidelity, float | None, float | None]  # fidelity to PyTorch fp32, top-1, top-1 drop


def bench_deploy(
    settings: DeploySettings, folder: Path | None = None, log: Callable[[str], None] = print
) -> DeployReport:
    """Measure every candidate of ``settings``; artifacts go to ``folder`` (default a temporary one, removed)."""
    work = Path(tempfile.mkdtemp(prefix="hilovit_deploy_")) if folder is None else Path(folder)
    try:
        with fixed_threads(settings.threads), kept_signal_stack():
            return _bench(settings, work, log)
    finally:
        if folder is None:
            shutil.rmtree(work, ignore_errors=True)


def _accuracy(outputs: list[Tensor], labels: Tensor | None) -> float | None:
    if labels is None or len(outputs) != 1 or outputs[0].dim() != 2:
        return None
    return 100.0 * (outputs[0].argmax(1) == labels).double().mean().item()


def _quality(
    runners: dict[str, Callable], batches: list[Tensor], reference: list[Tensor], labels: Tensor | None
) -> tuple[dict[str, Quality], dict[str, str]]:
    """Each candidate's quality on the evaluation batches, and the errors of those that failed on them."""
    base_top1 = _accuracy(reference, labels)
    quality, failures = {}, {}
    for name, runner in runners.items():
        try:
            outputs = reference if name == "pytorch" else run_batches(runner, batches)
        except Exception as error:
            failures[name] = failure(error)
            continue
        top1 = _accuracy(outputs, labels)
        quality[name] = (fidelity(reference, outputs), top1, None if top1 is None else base_top1 - top1)
    return quality, failures


def _row(name: str, x: Tensor, measured: dict[str, tuple | str], quality: Quality | None, file_bytes: int) -> DeployRow:
    """Candidate ``name`` at the input ``x``: its timing in ``measured`` (or its error), speedup over PyTorch eager."""
    runtime, precision = CANDIDATES[name]
    batch, _, height, width = x.shape
    common = dict(runtime=runtime, precision=precision, batch_size=batch, height=height, width=width)
    result, base = measured[name], measured.get("pytorch")
    if isinstance(result, str):
        return DeployRow(**common, error=result)
    median, p90, peak = result
    fid, top1, drop = quality
    return DeployRow(
        **common,
        latency_ms=median * 1e3,
        latency_p90_ms=p90 * 1e3,
        images_per_s=batch / median,
        speedup=base[0] / median if isinstance(base, tuple) else None,
        peak_mib=peak,
        file_mib=file_bytes / 2**20,
        max_abs_diff=fid.max_abs_diff,
        cosine=fid.cosine,
        top1_agreement=fid.top1_agreement,
        top1=top1,
        top1_drop=drop,
    )


def _bench(settings: DeploySettings, work: Path, log: Callable[[str], None]) -> DeployReport:
    target = build_target(settings)
    notes: list[str] = []
    log(f"{target.name}: exporting and quantising ({', '.join(settings.candidates)}) ...")
    candidates = prepare(settings, target, work, notes)
    runners = {name: candidates[name].load() for name in candidates}
    log("fidelity on the evaluation images ...")
    batches = target.evaluation.batches(settings.batch_size)
    reference = run_batches(runners["pytorch"], batches)
    quality, failures = _quality(runners, batches, reference, target.evaluation.labels)
    rows = []
    images = target.evaluation.images
    for batch in dict.fromkeys((1, settings.batch_size)):
        log(f"timing at batch {batch} ...")
        x = batch_of(images, batch)
        live = {name: runner for name, runner in runners.items() if name not in failures}
        measured = {**failures, **measure_batch(settings, candidates, live, x)}
        rows += [
            _row(name, x, measured, quality.get(name), candidates[name].file_bytes) for name in settings.candidates
        ]
    report = DeployReport(
        rows,
        environment(),
        {key: str(value) if isinstance(value, Path) else value for key, value in vars(settings).items()}
        | {"img_size": target.img_size, "evaluation_images": len(images)},
        notes,
    )
    if settings.sensitivity and "onnxruntime" in candidates:
        from hilovit.export.sensitivity import sensitivity

        log("per-layer sensitivity (onnxruntime, one group quantised at a time) ...")
        calibration = target.calibration.batches(min(settings.batch_size, 8))
        report.sensitivity = sensitivity(candidates["onnxruntime"].artifact, calibration, batches, reference)
    if settings.profile:
        log(f"operator profiles at batch {settings.batch_size} ...")
        report.profiles = _profiles(candidates, failures, batch_of(images, settings.batch_size), settings.threads)
    if settings.save is not None:
        report.saved = save(report, candidates, target, settings)
    return report


def _profiles(candidates: dict[str, Candidate], failures: dict[str, str], x: Tensor, threads: int | None) -> dict:
    """Time by operator of every candidate that has a file (ONNX Runtime, OpenVINO) and ran."""
    profiles = {}
    for name, candidate in candidates.items():
        artifact = candidate.artifact
        if artifact is not None and name not in failures:
            path = artifact.path if isinstance(artifact, QuantizedModel) else artifact
            profiles[name] = profile_runtime(CANDIDATES[name][0], path, x, threads)
    return profiles
