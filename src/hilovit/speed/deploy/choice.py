"""Which artifact to keep: the fastest within the allowed top-1 drop, copied into the ``--save`` folder."""

from __future__ import annotations

import shutil
from pathlib import Path

from hilovit.export.int8 import QuantizedModel
from hilovit.models import save_safetensors
from hilovit.speed.deploy.candidates import Candidate
from hilovit.speed.deploy.settings import DeployReport, DeployRow, DeploySettings
from hilovit.speed.deploy.target import Target

__all__ = ["MIN_COSINE", "choose", "quality_drop", "save"]

#: outputs without classes (backbones, the HiLo layer): an int8 artifact is saved only above this mean cosine
MIN_COSINE = 0.99


def quality_drop(row: DeployRow) -> float | None:
    """Points of top-1 lost: against the labels when measured, else the images whose class changed."""
    if row.top1_drop is not None:
        return row.top1_drop
    return None if row.top1_agreement is None else 100.0 - row.top1_agreement


def choose(rows: list[DeployRow], batch_size: int, max_top1_drop: float) -> DeployRow | None:
    """The fastest row at ``batch_size`` whose top-1 drop is at most ``max_top1_drop`` (outputs without classes:
    fp32, or int8 with a mean cosine of at least :data:`MIN_COSINE`)."""

    def within(row: DeployRow) -> bool:
        drop = quality_drop(row)
        if drop is not None:
            return drop <= max_top1_drop
        return row.precision == "fp32" or (row.cosine is not None and row.cosine >= MIN_COSINE)

    eligible = [r for r in rows if r.batch_size == batch_size and r.images_per_s is not None and within(r)]
    return max(eligible, key=lambda row: row.images_per_s, default=None)


def save(report: DeployReport, candidates: dict[str, Candidate], target: Target, settings: DeploySettings) -> Path:
    """Copy the chosen artifact (ONNX, OpenVINO IR, or safetensors for PyTorch) into ``settings.save``."""
    chosen = choose(report.rows, settings.batch_size, settings.max_top1_drop)
    folder = Path(settings.save)
    folder.mkdir(parents=True, exist_ok=True)
    if chosen is None:
        raise ValueError(f"no candidate stays within --max-top1-drop {settings.max_top1_drop}: nothing saved")
    artifact = candidates[chosen.candidate].artifact
    if artifact is None:
        path = save_safetensors(target.model, folder / f"{target.name}.safetensors", arch=target.arch)
    else:
        files = artifact.files if isinstance(artifact, QuantizedModel) else (artifact,)
        for file in files:
            shutil.copy2(file, folder / f"{target.name}{'_int8' if chosen.precision == 'int8' else ''}{file.suffix}")
        path = folder / f"{target.name}{'_int8' if chosen.precision == 'int8' else ''}{files[0].suffix}"
    report.notes.append(
        f"saved {chosen.candidate} ({chosen.images_per_s:.1f} img/s at batch {chosen.batch_size}) to {path}"
    )
    return path
