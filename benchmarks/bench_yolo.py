"""YOLO11 with HiLo (the shipped YAMLs) against stock YOLO11, in one run on one device.

Speed table, per scale: parameters, GFLOPs as ultralytics reports them (thop: convolutions and linear layers only,
extrapolated from small images) and as counted by ``torch.utils.flop_counter`` at the full size (attention
included, ``hilovit.attention.flops.count_flops``), and the latency of one image at ``--imgsz`` (batch 1, eval,
Conv+BN fused as ultralytics deploys, ``time_interleaved``), with ratios to stock YOLO11 of the same scale.

With ``--train``: mAP50-95 / mAP50 on the Fashion-MNIST scenes after the same short training budget for every
model (from scratch, ``--epochs`` epochs on ``--train-images`` scenes of ``--train-imgsz`` px, ultralytics'
default recipe, seed 0), with the ratio to stock YOLO11. Nothing is downloaded.

Examples:
    python benchmarks/bench_yolo.py --scales n,s --threads 2
    python benchmarks/bench_yolo.py --train --train-models yolo11-hilo --epochs 30 --train-imgsz 128
"""

from __future__ import annotations

import argparse
import tempfile
import time
from functools import partial
from pathlib import Path

import torch
from rich.console import Console

import hilovit.yolo
from hilovit.attention.flops import count_flops
from hilovit.speed import environment, fixed_threads, results_table, time_interleaved

STOCK = "yolo11"


def model_file(name: str, scale: str) -> str:
    """ultralytics' own ``yolo11<scale>.yaml`` for the stock model, else a shipped hilovit YAML."""
    return f"yolo11{scale}.yaml" if name == STOCK else str(hilovit.yolo.model_yaml(name, scale))


def label(name: str, scale: str) -> str:
    return name.replace("yolo11", f"yolo11{scale}", 1)


def speed_rows(names: list[str], scale: str, imgsz: int, warmup: int, repeats: int) -> list[tuple[str, ...]]:
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils.torch_utils import get_flops

    models, figures = {}, {}
    x = torch.zeros(1, 3, imgsz, imgsz)
    for name in names:
        model = DetectionModel(model_file(name, scale), verbose=False).eval()
        params = sum(p.numel() for p in model.parameters())
        thop_gflops = get_flops(model, imgsz)
        with torch.inference_mode():
            counted = count_flops(partial(model, x)) / 1e9
        models[name] = model.fuse(verbose=False)
        figures[name] = (params, thop_gflops, counted)
    timings = time_interleaved(
        {name: partial(model, x) for name, model in models.items()}, warmup=warmup, repeats=repeats
    )
    base_params, _, base_counted = figures[STOCK]
    base_ms = timings[STOCK].median_s * 1e3
    rows = []
    for name in names:
        params, thop_gflops, counted = figures[name]
        timing = timings[name]
        ms = timing.median_s * 1e3
        rows.append(
            (
                label(name, scale),
                f"{params / 1e6:.2f}",
                f"{params / base_params:.2f}x",
                f"{thop_gflops:.1f}",
                f"{counted:.1f}",
                f"{counted / base_counted:.2f}x",
                f"{ms:.1f}",
                f"{timing.quantile_s(0.9) * 1e3:.1f}",
                f"{timing.spread:.0%}",
                f"{ms / base_ms:.2f}x",
            )
        )
    return rows


def accuracy_rows(names: list[str], scale: str, args: argparse.Namespace, root: Path) -> list[tuple[str, ...]]:
    from hilovit.yolo.cli import run
    from hilovit.yolo.data import scenes_yolo_dataset

    data = scenes_yolo_dataset(
        root / "scenes", args.train_images, args.val_images, image_size=args.train_imgsz, seed=args.seed
    )
    results = {}
    for name in names:
        start = time.perf_counter()
        run(
            "train", model_file(name, scale), data=str(data), epochs=args.epochs, imgsz=args.train_imgsz,
            batch=args.batch, workers=0, device="cpu", seed=args.seed, deterministic=True, plots=False,
            project=str(root / "runs"), name=label(name, scale), exist_ok=True, verbose=False,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        best = root / "runs" / label(name, scale) / "weights" / "best.pt"
        metrics = run("val", str(best), data=str(data), imgsz=args.train_imgsz, batch=args.batch, workers=0,
                      device="cpu", plots=False, project=str(root / "runs"), name=f"val-{label(name, scale)}",
                      exist_ok=True, verbose=False)  # fmt: skip
        results[name] = (metrics.box.map, metrics.box.map50, seconds)
    base_map = results[STOCK][0]
    return [
        (
            label(name, scale),
            f"{map5095:.4f}",
            f"{map50:.4f}",
            f"{map5095 / base_map:.2f}x" if base_map > 0 else "-",
            f"{seconds:.0f}",
        )
        for name, (map5095, map50, seconds) in results.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", default="n,s", help="comma list of YOLO11 scales (default n,s)")
    parser.add_argument("--models", default=",".join(hilovit.yolo.model_yamls()), help="comma list of HiLo YAMLs")
    parser.add_argument("--imgsz", type=int, default=640, help="latency input side (default 640)")
    parser.add_argument("--threads", type=int, default=None, help="intra-op CPU threads (default: torch's)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--train", action="store_true", help="also train each model briefly and report mAP")
    parser.add_argument("--train-models", default=None, help="comma list of HiLo YAMLs to train (default: --models)")
    parser.add_argument("--train-scale", default="n", help="the scale trained (default n)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--train-images", type=int, default=256)
    parser.add_argument("--val-images", type=int, default=64)
    parser.add_argument("--train-imgsz", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", type=Path, default=None, help="dataset and runs directory (default: a temp dir)")
    args = parser.parse_args()

    hilovit.yolo.register()
    console = Console(width=200)
    scales = [s for s in args.scales.split(",") if s]
    names = [STOCK, *(m for m in args.models.split(",") if m)]
    with fixed_threads(args.threads):
        console.print(f"environment: {environment('cpu')}")
        columns = ("model", "params (M)", "ratio", "GFLOPs thop", "GFLOPs counted", "ratio", "p50 ms", "p90 ms",
                   "spread", "latency ratio")  # fmt: skip
        for scale in scales:
            rows = speed_rows(names, scale, args.imgsz, args.warmup, args.repeats)
            title = (
                f"YOLO11{scale}: CPU latency, batch 1, {args.imgsz}x{args.imgsz}, fused, eval; ratios vs yolo11{scale}"
            )
            console.print(results_table(title, columns, rows))
        if args.train:
            train_names = [STOCK, *(m for m in (args.train_models or args.models).split(",") if m)]
            with tempfile.TemporaryDirectory() as scratch:
                root = args.root or Path(scratch)
                rows = accuracy_rows(train_names, args.train_scale, args, root)
                title = (
                    f"Fashion-MNIST scenes: {args.epochs} epochs from scratch on {args.train_images} images at "
                    f"{args.train_imgsz} px, batch {args.batch}, mAP on {args.val_images} val images"
                )
                columns = ("model", "mAP50-95", "mAP50", "mAP50-95 ratio", "train s")
                console.print(results_table(title, columns, rows))


if __name__ == "__main__":
    main()
