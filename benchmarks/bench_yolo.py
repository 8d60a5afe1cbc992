"""HiLo inside ultralytics models (the shipped YOLO11, YOLOv8 and RT-DETR YAMLs) against their stock twins, one run.

Speed tables: parameters, GFLOPs as ultralytics reports them (thop: convolutions and linear layers only,
extrapolated from small images) and as counted by ``torch.utils.flop_counter`` at the full size (attention
included, ``hilovit.attention.flops.count_flops``), and the CPU latency of one image (batch 1, eval, Conv+BN fused
as ultralytics deploys, ``time_interleaved``), with ratios to the stock model: every YOLO YAML at ``--imgsz`` per
scale; RT-DETR (``rtdetr-l`` vs ``rtdetr-hilo-l``, and ``+pos``: AIFIHiLo with AIFI's sin-cos position embedding)
at each of ``--rtdetr-sizes``, where the encoder's token count grows with the square of the side, and the
encoder layer alone (AIFI vs AIFIHiLo) on the stride-32 map of those sizes.

With ``--train``: mAP50-95 / mAP50 after the same CPU time budget per model (``--budget-s``, ultralytics' ``time``;
or the same number of ``--epochs``, which does not depend on the machine's speed), from scratch, seed 0,
ultralytics' default recipe, on the Fashion-MNIST scenes and the tree crowns (the dense tasks' splits in YOLO
layout), with the ratio to the stock twin. Nothing is downloaded.

Examples (the full measurement, on a quiet machine):
    python benchmarks/bench_yolo.py --scales n,s --threads 2
    python benchmarks/bench_yolo.py --families rtdetr --rtdetr-sizes 640,1024 --threads 2
    python benchmarks/bench_yolo.py --families rtdetr --no-speed --train --budget-s 900 --threads 2
Smoke test (seconds): python benchmarks/bench_yolo.py --scales n --imgsz 64 --rtdetr-sizes 64 --repeats 1 --warmup 0
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

FAMILIES = ("yolo11", "yolov8", "rtdetr")
#: shipped RT-DETR YAML -> ultralytics' stock twin
RTDETR_TWINS = {"rtdetr-hilo-l": "rtdetr-l", "rtdetr-hilo-resnet50": "rtdetr-resnet50"}
POS = "+pos"  # suffix of the AIFIHiLo-with-sin-cos variant, written to a scratch YAML
AIFI_ROW, AIFI_POS_ROW = "[-1, 1, AIFIHiLo, [1024, 8]]", "[-1, 1, AIFIHiLo, [1024, 8, 0.0, None, False, 2, 0.9, True]]"
SPEED_COLUMNS = ("model", "params (M)", "ratio", "GFLOPs thop", "GFLOPs counted", "ratio", "p50 ms", "p90 ms",
                 "spread", "latency ratio")  # fmt: skip


def model_file(name: str, scale: str | None, scratch: Path) -> str:
    """What ultralytics builds for ``name``: its own YAML for a stock model (``yolov8`` + scale, ``rtdetr-l``), a
    shipped hilovit YAML, or (``rtdetr-hilo-l+pos``) the shipped YAML with AIFIHiLo's ``pos_embed`` on."""
    if name in ("yolo11", "yolov8"):
        return f"{name}{scale}.yaml"
    if name in RTDETR_TWINS.values():
        return f"{name}.yaml"
    if name.endswith(POS):
        shipped = hilovit.yolo.model_yaml(name.removesuffix(POS))
        variant = scratch / f"{name.removesuffix(POS)}-pos.yaml"
        text = shipped.read_text()
        if AIFI_ROW not in text:
            raise ValueError(f"{shipped} has no row {AIFI_ROW}")
        variant.write_text(text.replace(AIFI_ROW, AIFI_POS_ROW))
        return str(variant)
    return str(hilovit.yolo.model_yaml(name, scale))


def label(name: str, scale: str | None) -> str:
    for family in ("yolo11", "yolov8"):
        if name.startswith(family):
            return name.replace(family, f"{family}{scale}", 1)
    return name


def build(name: str, scale: str | None, scratch: Path, nc: int | None = None) -> torch.nn.Module:
    from ultralytics.nn.tasks import DetectionModel, RTDETRDetectionModel

    detector = RTDETRDetectionModel if name.startswith("rtdetr") else DetectionModel
    return detector(model_file(name, scale, scratch), nc=nc, verbose=False).eval()


def speed_rows(names: list[str], scale: str | None, imgsz: int, args: argparse.Namespace, scratch: Path) -> list:
    """One row per model of ``names`` (the stock twin first, the ratios' base) at ``imgsz``."""
    from ultralytics.utils.torch_utils import get_flops

    models, figures = {}, {}
    x = torch.zeros(1, 3, imgsz, imgsz)
    for name in names:
        model = build(name, scale, scratch)
        params = sum(p.numel() for p in model.parameters())
        thop_gflops = get_flops(model, imgsz)
        with torch.inference_mode():
            counted = count_flops(partial(model, x)) / 1e9
        models[name] = model.fuse(verbose=False)
        figures[name] = (params, thop_gflops, counted)
    timings = time_interleaved(
        {name: partial(model, x) for name, model in models.items()}, warmup=args.warmup, repeats=args.repeats
    )
    base_params, _, base_counted = figures[names[0]]
    base_ms = timings[names[0]].median_s * 1e3
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


def encoder_rows(image_sizes: list[int], args: argparse.Namespace) -> list[tuple[str, ...]]:
    """RT-DETR-L's encoder layer alone (256 channels, FFN 1024, 8 heads) on the stride-32 map of each image size:
    ultralytics' AIFI against AIFIHiLo without and with the sin-cos embedding (ratios vs AIFI at that size)."""
    from ultralytics.nn.modules.transformer import AIFI

    from hilovit.yolo.aifi import AIFIHiLo

    layers = {
        "AIFI": AIFI(256, 1024, 8),
        "AIFIHiLo": AIFIHiLo(256, 1024, 8),
        f"AIFIHiLo{POS}": AIFIHiLo(256, 1024, 8, pos_embed=True),
    }
    rows = []
    for size in image_sizes:
        x = torch.zeros(1, 256, size // 32, size // 32)
        with torch.inference_mode():
            flops = {name: count_flops(partial(layer.eval(), x)) / 1e9 for name, layer in layers.items()}
            timings = time_interleaved(
                {name: partial(layer, x) for name, layer in layers.items()}, warmup=args.warmup, repeats=args.repeats
            )
        base_ms = timings["AIFI"].median_s * 1e3
        for name, layer in layers.items():
            ms = timings[name].median_s * 1e3
            rows.append(
                (
                    f"{size} px: {size // 32}x{size // 32} = {(size // 32) ** 2} tokens",
                    name,
                    f"{sum(p.numel() for p in layer.parameters()) / 1e6:.3f}",
                    f"{flops[name]:.3f}",
                    f"{flops[name] / flops['AIFI']:.2f}x",
                    f"{ms:.2f}",
                    f"{ms / base_ms:.2f}x",
                )
            )
    return rows


def yolo_names(family: str, models: list[str]) -> list[str]:
    return [family, *(m for m in models if m.startswith(f"{family}-"))]


def rtdetr_names(models: list[str]) -> list[list[str]]:
    """Per shipped RT-DETR YAML: its stock twin, the YAML and its ``+pos`` variant."""
    return [[RTDETR_TWINS[m], m, f"{m}{POS}"] for m in models if m in RTDETR_TWINS]


#: the smallest mAP50-95 the quality table shows (4 decimals); a lower base is indistinguishable from an untrained
#: model, and a ratio to it is noise
MIN_MAP = 0.00005


def map_ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base >= MIN_MAP else "-"


def quality_rows(names: list[str], scale: str | None, data: Path, args: argparse.Namespace, scratch: Path) -> list:
    """Train every model of ``names`` for ``--budget-s`` seconds, or ``--epochs`` epochs when given (the first
    model is the ratios' base: :func:`map_ratio`), then validate."""
    from hilovit.yolo.cli import run

    results = {}
    for name in names:
        runs, run_name = scratch / "runs", f"{data.parent.name}-{label(name, scale)}"
        steps = []
        start = time.perf_counter()
        yolo, _ = run(
            "train", model_file(name, scale, scratch), callbacks={"on_train_batch_end": steps.append},
            data=str(data), epochs=args.epochs or 10**4, time=None if args.epochs else args.budget_s / 3600,
            imgsz=args.train_imgsz, batch=args.batch, workers=0, device="cpu", seed=args.seed, deterministic=True,
            plots=False, project=str(runs), name=run_name, exist_ok=True, verbose=False,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        _, metrics = run(
            "val", str(yolo.trainer.best), data=str(data), imgsz=args.train_imgsz, batch=args.batch, workers=0,
            device="cpu", plots=False, project=str(runs), name=f"val-{run_name}", exist_ok=True, verbose=False,
        )  # fmt: skip
        results[name] = (metrics.box.map, metrics.box.map50, len(steps), yolo.trainer.epoch + 1, seconds)
    base_map = results[names[0]][0]
    return [
        (
            label(name, scale),
            f"{map5095:.4f}",
            f"{map50:.4f}",
            map_ratio(map5095, base_map),
            str(steps),
            str(epochs),
            f"{seconds:.0f}",
        )
        for name, (map5095, map50, steps, epochs, seconds) in results.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default=",".join(FAMILIES), help=f"comma list of {', '.join(FAMILIES)}")
    parser.add_argument("--models", default=",".join(hilovit.yolo.model_yamls()), help="comma list of HiLo YAMLs")
    parser.add_argument("--scales", default="n,s", help="comma list of YOLO scales (default n,s)")
    parser.add_argument("--imgsz", type=int, default=640, help="YOLO latency input side (default 640)")
    parser.add_argument("--rtdetr-sizes", default="640,1024", help="RT-DETR latency input sides (default 640,1024)")
    parser.add_argument("--threads", type=int, default=None, help="intra-op CPU threads (default: torch's)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-speed", action="store_true", help="skip the speed tables")
    parser.add_argument("--train", action="store_true", help="quality at an equal CPU time budget (see above)")
    parser.add_argument("--datasets", default="scenes,treecrowns", help="comma list of scenes, treecrowns")
    parser.add_argument("--train-scale", default="n", help="the YOLO scale trained (default n)")
    parser.add_argument("--budget-s", type=float, default=900.0, help="training seconds per model (default 900)")
    parser.add_argument("--epochs", type=int, default=None, help="train this many epochs instead of --budget-s")
    parser.add_argument("--scene-images", type=int, nargs=2, default=(1000, 100), metavar=("TRAIN", "VAL"))
    parser.add_argument("--train-imgsz", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", type=Path, default=None, help="datasets and runs directory (default: a temp dir)")
    args = parser.parse_args()

    hilovit.yolo.register()
    console = Console(width=200)
    families = [f for f in args.families.split(",") if f]
    models = [m for m in args.models.split(",") if m]
    scales = [s for s in args.scales.split(",") if s]
    with fixed_threads(args.threads), tempfile.TemporaryDirectory() as temporary:
        scratch = args.root or Path(temporary)
        scratch.mkdir(parents=True, exist_ok=True)
        console.print(f"environment: {environment('cpu')}")
        yolo_families = [family for family in families if family != "rtdetr"]
        rtdetr_groups = rtdetr_names(models) if "rtdetr" in families else []
        if not args.no_speed:
            for family in yolo_families:
                for scale in scales:
                    rows = speed_rows(yolo_names(family, models), scale, args.imgsz, args, scratch)
                    title = f"{family}{scale}: CPU latency, batch 1, {args.imgsz} px, fused, eval; ratios vs stock"
                    console.print(results_table(title, SPEED_COLUMNS, rows))
            rtdetr_sizes = [int(side) for side in args.rtdetr_sizes.split(",") if side]
            if rtdetr_groups:
                columns = ("input", "encoder layer", "params (M)", "GFLOPs counted", "ratio", "p50 ms", "latency ratio")
                title = "RT-DETR-L's encoder layer alone on the stride-32 map, CPU, batch 1, eval; ratios vs AIFI"
                console.print(results_table(title, columns, encoder_rows(rtdetr_sizes, args)))
            for names in rtdetr_groups:
                for size in rtdetr_sizes:
                    rows = speed_rows(names, None, size, args, scratch)
                    tokens = (size // 32) ** 2
                    title = f"{names[0]}: CPU latency, batch 1, {size} px ({tokens} encoder tokens), fused, eval"
                    console.print(results_table(title, SPEED_COLUMNS, rows))
        if args.train:
            from hilovit.yolo.data import bundled_yolo_dataset

            groups = [(yolo_names(family, models), args.train_scale) for family in yolo_families]
            groups += [(names, None) for names in rtdetr_groups]
            for dataset in (d for d in args.datasets.split(",") if d):
                data = bundled_yolo_dataset(dataset, scratch / dataset, args.train_imgsz, tuple(args.scene_images))
                for names, scale in groups:
                    rows = quality_rows(names, scale, data, args, scratch)
                    budget = f"{args.epochs} epochs" if args.epochs else f"{args.budget_s:.0f} s of CPU training"
                    title = (
                        f"{dataset}: mAP after {budget} each from scratch, "
                        f"{args.train_imgsz} px, batch {args.batch}, seed {args.seed}; ratios vs {names[0]}"
                    )
                    columns = ("model", "mAP50-95", "mAP50", "mAP50-95 ratio", "steps", "epochs", "train s")
                    console.print(results_table(title, columns, rows))


if __name__ == "__main__":
    main()
