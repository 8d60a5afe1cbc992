"""`hilovit bench deploy`: one model in the runtimes it is deployed with, measured in one run on this CPU.

Candidates (same inputs, timed interleaved by :func:`~hilovit.speed.timing.time_interleaved`): PyTorch eager,
``torch.compile``, ONNX Runtime fp32 and OpenVINO fp32 (both from the same :func:`~hilovit.export.to_onnx` file),
and int8 by static post-training quantisation calibrated on real images (:func:`~hilovit.export.int8.quantize`):
ONNX Runtime QDQ and OpenVINO NNCF. Each is measured at batch 1 (latency) and batch N (throughput), with its
peak memory, file size and fidelity to PyTorch fp32 on images disjoint from the calibration set (and, for a
trained checkpoint, its top-1 accuracy on the whole test split).

Modules: :mod:`.settings` (what is measured, what is reported), :mod:`.target` (the model and its images),
:mod:`.candidates` (export, quantise, load), :mod:`.measure` (timing and memory at one input), :mod:`.bench`
(the run), :mod:`.choice` (the artifact kept by ``--save``).
"""

from hilovit.speed.deploy.bench import bench_deploy
from hilovit.speed.deploy.choice import MIN_COSINE, choose, quality_drop
from hilovit.speed.deploy.settings import CANDIDATES, DeployReport, DeployRow, DeploySettings

__all__ = [
    "CANDIDATES",
    "MIN_COSINE",
    "DeployReport",
    "DeployRow",
    "DeploySettings",
    "bench_deploy",
    "choose",
    "quality_drop",
]
