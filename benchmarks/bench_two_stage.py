"""Faster / Mask R-CNN on LITv2 with HiLo in the RPN head and the RoI box head, against the plain heads, one run.

Speed table: parameters, GFLOPs (``hilovit.dense.dense_flops``: ``torch.utils.flop_counter`` of one eval forward,
so the box head counts the proposals of that image) and the CPU latency of one ``--imgsz`` image (batch 1, eval,
``time_interleaved``) of each head option, with ratios to the plain detector of the same builder:
``hilo_rpn_head=True`` (a HiLo block before the RPN conv, shared over P2-P6), ``hilo_box_head=True`` (a HiLo block
over the 7x7 RoI features before the two fc layers) and both.

With ``--train``: COCO AP after the same CPU time budget (``--budget-s``) per option, from scratch, seed 0, with
hilovit's one training engine (the ``detect`` task, the bundled ``retinanet_litv2_nano_scenes`` recipe with the
model replaced), on the Fashion-MNIST scenes and the tree crowns. Nothing is downloaded.

Examples (the full measurement, on a quiet machine):
    python benchmarks/bench_two_stage.py --variant s --threads 2
    python benchmarks/bench_two_stage.py --no-speed --train --variant nano --budget-s 600 --threads 2
Smoke test (seconds): python benchmarks/bench_two_stage.py --variant nano --imgsz 96 --repeats 1 --warmup 0
"""

from __future__ import annotations

import argparse
import os
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from hilovit.dense import dense_flops, fasterrcnn_litv2, maskrcnn_litv2
from hilovit.dense.detection import HiLoBoxHead, HiLoRPNHead
from hilovit.speed import environment, fixed_threads, results_table, time_interleaved

BUILDERS = {"fasterrcnn_litv2": fasterrcnn_litv2, "maskrcnn_litv2": maskrcnn_litv2}
OPTIONS: dict[str, dict[str, bool]] = {
    "plain heads": {},
    "hilo_rpn_head": {"hilo_rpn_head": True},
    "hilo_box_head": {"hilo_box_head": True},
    "both": {"hilo_rpn_head": True, "hilo_box_head": True},
}


def speed_rows(builder: str, args: argparse.Namespace) -> list[tuple[str, ...]]:
    size = dict(min_size=args.imgsz, max_size=args.imgsz)
    models, figures = {}, {}
    x = [torch.rand(3, args.imgsz, args.imgsz, generator=torch.Generator().manual_seed(0))]
    for option, keywords in OPTIONS.items():
        torch.manual_seed(args.seed)
        model = BUILDERS[builder](args.variant, 80, **size, **keywords).eval()
        figures[option] = (sum(p.numel() for p in model.parameters()), dense_flops(model, args.imgsz, args.imgsz) / 1e9)
        models[option] = model
    with torch.inference_mode():
        timings = time_interleaved(
            {option: partial(model, x) for option, model in models.items()}, warmup=args.warmup, repeats=args.repeats
        )
    base_params, base_flops = figures["plain heads"]
    base_ms = timings["plain heads"].median_s * 1e3
    rows = []
    for option, (params, flops) in figures.items():
        ms = timings[option].median_s * 1e3
        rows.append(
            (
                option,
                f"{params / 1e6:.2f}",
                f"{params / base_params:.3f}x",
                f"{flops:.1f}",
                f"{flops / base_flops:.2f}x",
                f"{ms:.0f}",
                f"{timings[option].quantile_s(0.9) * 1e3:.0f}",
                f"{timings[option].spread:.0%}",
                f"{ms / base_ms:.2f}x",
            )
        )
    return rows


def train_one(builder: str, keywords: dict[str, bool], dataset: str, output: Path, args: argparse.Namespace) -> dict:
    """COCO AP of one run of the engine's detection task with the head options ``keywords``."""
    from hilovit.train import distributed
    from hilovit.train.config import load_config
    from hilovit.train.dense_tasks import DetectionTrainer

    class HeadsTrainer(DetectionTrainer):
        """The detection task, building the detector with the HiLo head options of this run."""

        def architecture(self) -> dict[str, Any]:
            return super().architecture() | keywords

    overrides = [
        f"model={builder}_{args.variant}", f"data={dataset}", f"time_budget={args.budget_s}", "epochs=10000",
        f"img_size={args.scene_size if dataset == 'scenes' else args.tile_size}", f"seed={args.seed}",
        f"scene_images=[{args.scene_images[0]}, {args.scene_images[1]}]", f"batch_size={args.batch_size}",
        f"output={output}", "progress=false", "device=cpu",
    ]  # fmt: skip
    cfg = load_config("retinanet_litv2_nano_scenes", overrides)
    env = distributed.setup(cfg.device)
    try:
        trainer = HeadsTrainer(cfg, env)
        result = trainer.fit()
    finally:
        distributed.teardown(env)
    heads = {type(m) for m in trainer.eval_model.modules()}
    expected = {
        head for head, key in ((HiLoRPNHead, "hilo_rpn_head"), (HiLoBoxHead, "hilo_box_head")) if key in keywords
    }
    if not expected <= heads:
        raise RuntimeError(f"the engine did not build the heads of {keywords}")
    return result.summary()


def quality_rows(builder: str, dataset: str, args: argparse.Namespace, root: Path) -> list[tuple[str, ...]]:
    results = {
        option: train_one(builder, keywords, dataset, root / f"{builder}-{dataset}-{option.replace(' ', '_')}", args)
        for option, keywords in OPTIONS.items()
    }
    base = results["plain heads"]["AP"]
    return [
        (
            option,
            f"{summary['AP']:.2f}",
            f"{summary['AP50']:.2f}",
            f"{summary['AP'] / base:.2f}x" if base >= 1.0 else "n/a",
            str(summary["steps"]),
            f"{summary['train_time_s']:.0f}",
        )
        for option, summary in results.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--builders", default=",".join(BUILDERS), help="comma list (default: both)")
    parser.add_argument("--variant", default="s", help="LITv2 size (default s, the paper's)")
    parser.add_argument("--imgsz", type=int, default=640, help="latency input side (default 640)")
    parser.add_argument("--threads", type=int, default=None, help="intra-op CPU threads (default: torch's)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-speed", action="store_true", help="skip the speed table")
    parser.add_argument("--train", action="store_true", help="AP at an equal CPU time budget (Faster R-CNN)")
    parser.add_argument("--datasets", default="scenes,treecrowns", help="comma list of scenes, treecrowns")
    parser.add_argument("--budget-s", type=float, default=600.0, help="training seconds per run (default 600)")
    parser.add_argument("--scene-size", type=int, default=256)
    parser.add_argument("--tile-size", type=int, default=400, help="side the tree tiles are trained at")
    parser.add_argument("--scene-images", type=int, nargs=2, default=(1000, 100), metavar=("TRAIN", "VAL"))
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
    console = Console(width=160)
    builders = [b for b in args.builders.split(",") if b]
    with fixed_threads(args.threads), tempfile.TemporaryDirectory() as scratch:
        console.print(f"environment: {environment('cpu')}")
        if not args.no_speed:
            columns = ("heads", "params (M)", "ratio", "GFLOPs", "ratio", "p50 ms", "p90 ms", "spread", "latency ratio")
            for builder in builders:
                title = f"{builder}_{args.variant}: CPU latency, batch 1, {args.imgsz} px, eval; ratios vs plain heads"
                console.print(results_table(title, columns, speed_rows(builder, args)))
        if args.train:
            os.environ.setdefault("HILOVIT_CACHE", str(Path(scratch) / "cache"))
            for dataset in (d for d in args.datasets.split(",") if d):
                rows = quality_rows("fasterrcnn_litv2", dataset, args, Path(scratch))
                title = (
                    f"{dataset}: COCO AP after {args.budget_s:.0f} s of CPU training each, fasterrcnn_litv2_"
                    f"{args.variant} from scratch, seed {args.seed}; ratio vs plain heads"
                )
                columns = ("heads", "AP", "AP50", "AP ratio", "steps", "train s")
                console.print(results_table(title, columns, rows))


if __name__ == "__main__":
    main()
