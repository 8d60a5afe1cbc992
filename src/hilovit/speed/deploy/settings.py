"""What `hilovit bench deploy` measures (:class:`DeploySettings`) and what it reports (:class:`DeployRow`,
:class:`DeployReport`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hilovit.speed.runtime_profile import RuntimeOpTime
from hilovit.validation import each, interval, one_of

__all__ = ["CANDIDATES", "DeployReport", "DeployRow", "DeploySettings"]

#: candidate -> (runtime, precision), in the order the table shows them
CANDIDATES: dict[str, tuple[str, str]] = {
    "pytorch": ("pytorch", "fp32"),
    "pytorch-compile": ("pytorch-compile", "fp32"),
    "onnxruntime": ("onnxruntime", "fp32"),
    "openvino": ("openvino", "fp32"),
    "onnxruntime-int8": ("onnxruntime", "int8"),
    "openvino-int8": ("openvino", "int8"),
}


@dataclass(frozen=True)
class DeploySettings:
    """What `hilovit bench deploy` measures.

    Args:
        model: a registered classifier (``litv2_s``), dense backbone (``litv2_s_backbone``) or ``hilo``.
        checkpoint: trained weights (a training checkpoint ``last.pt`` or a hilovit ``.safetensors``); the
            model then comes from the file, and top-1 accuracy is measured on the test split.
        img_size: image side (map side for ``hilo``); default the checkpoint's, else 224 (14 for ``hilo``).
        batch_size: the throughput batch (latency is measured at batch 1).
        candidates: keys of :data:`CANDIDATES`.
        calibration: images to calibrate and evaluate on: None for the bundled Fashion-MNIST, or a directory.
        calibration_images: images to calibrate with.
        eval_images: calibration-disjoint images for fidelity (None: the whole test split).
        threads: intra-op threads of every runtime (None: torch's current setting).
        max_top1_drop: the largest top-1 drop (points) an artifact kept by ``save`` may have.
        save: keep the fastest artifact at ``batch_size`` within ``max_top1_drop`` in this folder.
        sensitivity: also quantise each group of ONNX nodes alone and report what it costs.
        profile: also profile each ONNX Runtime / OpenVINO candidate at ``batch_size`` by operator.
    """

    model: str
    checkpoint: Path | None = None
    img_size: int | None = None
    batch_size: int = 32
    candidates: tuple[str, ...] = tuple(CANDIDATES)
    calibration: Path | None = None
    calibration_images: int = 64
    eval_images: int | None = 256
    threads: int | None = None
    warmup: int = 2
    repeats: int = 7
    max_top1_drop: float = 0.5
    save: Path | None = None
    sensitivity: bool = False
    profile: bool = False

    def __post_init__(self) -> None:
        each(one_of(CANDIDATES)).check("candidates", self.candidates)
        if "pytorch" not in self.candidates:
            raise ValueError("runtimes must include pytorch: it is the reference for speedup and fidelity")
        for name in ("batch_size", "calibration_images", "warmup", "repeats"):
            interval(0 if name == "warmup" else 1, integer=True).check(name, getattr(self, name))
        for name in ("img_size", "eval_images", "threads"):
            if getattr(self, name) is not None:
                interval(1, integer=True).check(name, getattr(self, name))
        interval(0).check("max_top1_drop", self.max_top1_drop)


@dataclass(frozen=True)
class DeployRow:
    """One candidate at one batch size. Figures are None where they do not apply or the candidate failed."""

    runtime: str
    precision: str
    batch_size: int
    height: int
    width: int
    latency_ms: float | None = None
    latency_p90_ms: float | None = None
    images_per_s: float | None = None
    speedup: float | None = None
    peak_mib: float | None = None
    file_mib: float | None = None
    max_abs_diff: float | None = None
    cosine: float | None = None
    top1_agreement: float | None = None
    top1: float | None = None
    top1_drop: float | None = None
    error: str | None = None

    @property
    def candidate(self) -> str:
        return self.runtime + ("-int8" if self.precision == "int8" else "")


@dataclass
class DeployReport:
    rows: list[DeployRow]
    environment: dict[str, object]
    settings: dict[str, object]
    notes: list[str] = field(default_factory=list)
    sensitivity: list = field(default_factory=list)
    profiles: dict[str, list[RuntimeOpTime]] = field(default_factory=dict)
    saved: Path | None = None
