"""onnxruntime (CPU) against eager PyTorch on the same exported models, at a classification and a detection size.

Each model is exported once with :func:`hilovit.export.to_onnx` (dynamic batch, height and width; the
example is traced at a small size), and the same ONNX file then runs at every size of its cases: the
LITv2-S classifier at 224x224, the LITv2-S backbone at a detection input of 800x1344, and a HiLo layer
of LITv2-S stage 3 (384 channels, 12 heads, window 2, alpha 0.9) on the stride-16 maps of both images
(14x14 and 50x84). Both runtimes get the same number of intra-op threads; their timings are interleaved
in one run, and the outputs are compared at the timed input. The ratio is PyTorch time / onnxruntime
time (above 1: onnxruntime is faster). Example:  python benchmarks/bench_export.py --threads 2
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import onnxruntime
import timm
import torch
from rich.console import Console
from torch import Tensor, nn

import hilovit.models  # noqa: F401  registers the LITv2 builders with timm
from hilovit import HiLo2d
from hilovit.export import onnxruntime_runner, to_onnx
from hilovit.export.parity import flatten_outputs
from hilovit.models import LITv2Backbone, litv2_config
from hilovit.speed import environment, fixed_threads, results_table, time_interleaved

Runner = Callable[[Tensor], list[Tensor]]


@dataclass(frozen=True)
class Case:
    label: str
    model: str
    channels: int
    height: int
    width: int


MODELS = {
    "LITv2-S": lambda: timm.create_model("litv2_s"),
    "LITv2-S backbone": lambda: LITv2Backbone(**litv2_config("litv2_s")),
    "HiLo 384/12": lambda: HiLo2d(384, 12, qkv_bias=True, window_size=2, alpha=0.9),
}
EXAMPLES = {"LITv2-S": (3, 64, 64), "LITv2-S backbone": (3, 64, 64), "HiLo 384/12": (384, 8, 8)}
CASES = (
    Case("LITv2-S classifier, 224x224", "LITv2-S", 3, 224, 224),
    Case("HiLo layer, 14x14 (stride 16 of 224)", "HiLo 384/12", 384, 14, 14),
    Case("LITv2-S backbone, 800x1344", "LITv2-S backbone", 3, 800, 1344),
    Case("HiLo layer, 50x84 (stride 16 of 800x1344)", "HiLo 384/12", 384, 50, 84),
)
QUICK_SIZES = {224: 96, 14: 6, 800: 160, 1344: 224, 50: 10, 84: 14}
COLUMNS = ("case", "batch", "PyTorch ms", "onnxruntime ms", "ratio", "max abs diff")


def export_models(names: set[str], folder: Path, threads: int) -> dict[str, tuple[nn.Module, Runner]]:
    """Each model in eval mode with its onnxruntime runner (exported once, parity checked by to_onnx)."""
    built = {}
    for name in sorted(names):
        torch.manual_seed(0)
        model = MODELS[name]().eval()
        example = torch.randn(1, *EXAMPLES[name])
        result = to_onnx(model, example, folder / f"{name.replace(' ', '_').replace('/', '-')}.onnx")
        built[name] = (model, onnxruntime_runner(result.path, threads=threads))
    return built


def measure(case: Case, model: nn.Module, run_onnx: Runner, batch: int, repeats: int) -> tuple[str, ...]:
    x = torch.randn(batch, case.channels, case.height, case.width)
    with torch.inference_mode():
        expected = flatten_outputs(model(x))
    actual = run_onnx(x)
    diff = max((a - e).abs().max().item() for a, e in zip(actual, expected, strict=True))
    timings = time_interleaved({"torch": lambda: model(x), "onnx": lambda: run_onnx(x)}, repeats=repeats)
    torch_ms, onnx_ms = timings["torch"].median_s * 1e3, timings["onnx"].median_s * 1e3
    return (case.label, str(batch), f"{torch_ms:.2f}", f"{onnx_ms:.2f}", f"{torch_ms / onnx_ms:.2f}x", f"{diff:.1e}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads of both runtimes")
    parser.add_argument("--batch", type=int, default=1, help="images (maps) per call (default 1)")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved timed samples per runtime")
    parser.add_argument("--quick", action="store_true", help="small sizes: check that the benchmark runs")
    args = parser.parse_args(argv)
    console = Console(width=200)
    cases = CASES
    if args.quick:
        cases = tuple(
            Case(c.label + " (quick)", c.model, c.channels, QUICK_SIZES[c.height], QUICK_SIZES[c.width]) for c in CASES
        )
    with fixed_threads(args.threads), tempfile.TemporaryDirectory() as folder:
        threads = torch.get_num_threads()
        models = export_models({case.model for case in cases}, Path(folder), threads)
        console.print("exported; timing", style="dim")
        rows = [measure(case, *models[case.model], args.batch, args.repeats) for case in cases]
        env = environment("cpu") | {"onnxruntime": onnxruntime.__version__}
    title = "onnxruntime CPU vs eager PyTorch (ratio = PyTorch ms / onnxruntime ms)"
    console.print(results_table(title, COLUMNS, rows))
    console.print("environment: " + "  ".join(f"{k}={v}" for k, v in env.items()))


if __name__ == "__main__":
    main()
