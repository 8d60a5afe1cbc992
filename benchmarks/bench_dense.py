"""Speed of the LITv2 detectors against torchvision's ResNet-50-FPN ones, and of HiLo-FPN against the FPN.

One run on one device, eval mode, batch 1: at each size every model is timed interleaved
(``hilovit.speed.time_interleaved``); the ratio column is throughput over the ResNet-50-FPN detector of
the same type (RetinaNet or Mask R-CNN) at the same size, and a closing line compares RetinaNet-LITv2-S
with HiLo-FPN to the one with torchvision's FPN. Nothing is downloaded: all models have random weights
(seeded), 80 object classes.

Input size: each detector gets ``min_size``/``max_size`` equal to the image's short/long side, so its
transform does not resize the image; it then pads it to a multiple of 32 as mmdet does (800x1333 runs at
800x1344). Post-processing does the work of a trained model: score thresholds are 0, so Mask R-CNN runs its
mask head on 100 detections and RetinaNet keeps 300 boxes. MACs are counted by ``torch.utils.flop_counter``
(convolutions, matrix products, attention; not deformable sampling, RoIAlign or NMS) on the same image.

Examples:
    python benchmarks/bench_dense.py --quick --sizes 320x320 --threads 2
    python benchmarks/bench_dense.py --device cuda --sizes 640x640,800x1333
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from rich.console import Console
from torch import nn
from torchvision.models.detection import maskrcnn_resnet50_fpn, retinanet_resnet50_fpn

from hilovit.dense import image_forward, maskrcnn_litv2, retinanet_litv2
from hilovit.speed import environment, fixed_threads, results_table
from hilovit.speed.measure import DTYPES, Case, Point, Row, autocast_runner, parameter_count
from hilovit.speed.sweep import run_sweep

NUM_CLASSES = 80  # object classes; torchvision's detectors get one more for the background


@dataclass(frozen=True)
class Candidate:
    """A detector to time: its label, its type (ratios compare within a type), how to build it."""

    label: str
    kind: str
    build: Callable[..., nn.Module]


CANDIDATES = {
    "retinanet_r50": Candidate(
        "RetinaNet R50-FPN",
        "RetinaNet",
        lambda **kw: retinanet_resnet50_fpn(
            weights=None, weights_backbone=None, num_classes=NUM_CLASSES + 1, score_thresh=0.0, **kw
        ),
    ),
    "retinanet_litv2_s": Candidate(
        "RetinaNet LITv2-S", "RetinaNet", lambda **kw: retinanet_litv2("s", NUM_CLASSES, score_thresh=0.0, **kw)
    ),
    "retinanet_litv2_s_hilofpn": Candidate(
        "RetinaNet LITv2-S HiLo-FPN",
        "RetinaNet",
        lambda **kw: retinanet_litv2("s", NUM_CLASSES, fpn="hilo", score_thresh=0.0, **kw),
    ),
    "maskrcnn_r50": Candidate(
        "Mask R-CNN R50-FPN",
        "Mask R-CNN",
        lambda **kw: maskrcnn_resnet50_fpn(
            weights=None, weights_backbone=None, num_classes=NUM_CLASSES + 1, box_score_thresh=0.0, **kw
        ),
    ),
    "maskrcnn_litv2_s": Candidate(
        "Mask R-CNN LITv2-S",
        "Mask R-CNN",
        lambda **kw: maskrcnn_litv2("s", NUM_CLASSES, box_score_thresh=0.0, **kw),
    ),
}
BASELINES = {"RetinaNet": "retinanet_r50", "Mask R-CNN": "maskrcnn_r50"}
HILO_PAIR = ("retinanet_litv2_s_hilofpn", "retinanet_litv2_s")


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"640x640,800x1333"`` -> ``[(640, 640), (800, 1333)]`` (height x width)."""
    sizes = []
    for item in text.split(","):
        parts = item.strip().lower().split("x")
        if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise ValueError(f"size {item!r} is not HEIGHTxWIDTH with positive integers, e.g. 800x1333")
        sizes.append((int(parts[0]), int(parts[1])))
    return sizes


def parse_models(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    unknown = [name for name in names if name not in CANDIDATES]
    if unknown:
        raise ValueError(f"unknown model(s) {', '.join(unknown)}; expected any of {', '.join(CANDIDATES)}")
    return [name for name in CANDIDATES if name in names]


def detector_cases(names: list[str], point: Point, device: torch.device, dtype: torch.dtype) -> list[Case]:
    """The detectors built for ``point``'s size (no resizing by their transform), on one random image."""
    image = torch.rand(3, point.height, point.width, generator=torch.Generator().manual_seed(0)).to(device)
    size = dict(min_size=min(point.height, point.width), max_size=max(point.height, point.width))
    cases = []
    for name in names:
        torch.manual_seed(0)
        candidate = CANDIDATES[name]
        model = candidate.build(**size).to(device).eval()
        run = autocast_runner(image_forward(model, image), device, dtype)
        cases.append(Case(name, candidate.label, run, parameter_count(model), None, run))
    return cases


def with_type_ratios(rows: list[Row]) -> list[Row]:
    """Ratios against the ResNet-50-FPN detector of the same type at the same size (None without it)."""
    latency = {(row.name, row.point): row.latency_p50_ms for row in rows}
    fixed = []
    for row in rows:
        base = latency.get((BASELINES[CANDIDATES[row.name].kind], row.point))
        ratio = base / row.latency_p50_ms if base and row.latency_p50_ms else None
        fixed.append(replace(row, ratio=ratio))
    return fixed


def print_tables(rows: list[Row], console: Console, dtype_name: str) -> None:
    columns = ("model", "params (M)", "GMACs", "FPS", "p50 ms", "p90 ms", "spread", "peak MiB", "ratio")
    for point in dict.fromkeys(row.point for row in rows):
        title = (
            f"{point.height}x{point.width}, batch 1, eval, {dtype_name}; "
            "ratio = FPS over the ResNet-50-FPN detector of the same type"
        )
        cells = [
            (
                row.label,
                f"{row.params / 1e6:.2f}",
                f"{row.counted_gmacs:.1f}",
                f"{row.images_per_s:.2f}" if row.error is None else row.error,
                *(f"{value:.1f}" if value is not None else "-" for value in (row.latency_p50_ms, row.latency_p90_ms)),
                f"{row.spread:.0%}" if row.spread is not None else "-",
                f"{row.peak_mib:.0f}" if row.peak_mib is not None else "-",
                f"{row.ratio:.2f}x" if row.ratio is not None else "-",
            )
            for row in rows
            if row.point == point
        ]
        console.print(results_table(title, columns, cells))


def hilo_fpn_lines(rows: list[Row]) -> list[str]:
    """HiLo-FPN against torchvision's FPN on the same RetinaNet-LITv2-S, at each size where both ran."""
    found = {(row.name, row.point): row for row in rows if row.error is None}
    lines = []
    for point in dict.fromkeys(row.point for row in rows):
        hilo, plain = (found.get((name, point)) for name in HILO_PAIR)
        if hilo and plain:
            lines.append(
                f"HiLo-FPN vs FPN (RetinaNet LITv2-S), {point.height}x{point.width}: "
                f"{plain.latency_p50_ms / hilo.latency_p50_ms:.2f}x the FPS, "
                f"{hilo.counted_gmacs - plain.counted_gmacs:+.1f} GMACs, "
                f"{(hilo.params - plain.params) / 1e6:+.2f}M params"
            )
    return lines


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=DTYPES, default="float32", help="autocast dtype (float32: none)")
    parser.add_argument("--sizes", default="640x640,800x1333", help="comma list of HEIGHTxWIDTH")
    parser.add_argument("--models", default=",".join(CANDIDATES), help=f"comma list of {', '.join(CANDIDATES)}")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="1 warm-up call and 3 repeats (a smoke run on a CPU)")
    args = parser.parse_args(argv)
    try:
        sizes, names = parse_sizes(args.sizes), parse_models(args.models)
    except ValueError as error:
        parser.error(str(error))
    warmup, repeats = (1, 3) if args.quick else (args.warmup, args.repeats)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    console = Console(width=160)
    with fixed_threads(args.threads):
        env = environment(device, dtype)
        console.print("  ".join(f"{key}={value}" for key, value in env.items()))
        rows = run_sweep(
            [Point("forward", 1, height, width) for height, width in sizes],
            lambda point: detector_cases(names, point, device, dtype),
            device=device,
            baseline=names[0],
            warmup=warmup,
            repeats=repeats,
            console=console,
        )
    rows = with_type_ratios(rows)
    print_tables(rows, console, args.dtype)
    for line in hilo_fpn_lines(rows):
        console.print(line)
    console.print(
        "GMACs: counted by torch.utils.flop_counter on the image (convs, matmuls, attention; not deformable "
        "sampling, RoIAlign, NMS). Inputs padded to a multiple of 32 by the detectors' transform. "
        "p50/p90: latency of one image; spread: IQR / median."
    )
    return rows


if __name__ == "__main__":
    main()
