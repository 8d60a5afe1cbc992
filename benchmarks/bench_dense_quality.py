"""Detection quality after the same short CPU training budget: RetinaNet-LITv2 with torchvision's FPN vs HiLo-FPN.

Each run trains from scratch (random weights, nothing downloaded) for the same wall-clock budget with the same
seed, data and settings, then is evaluated with pycocotools' COCOeval on the validation split:

* Fashion-MNIST scenes (``hilovit.data.scenes``, generated into a temporary directory), plain FPN and HiLo-FPN;
* the deepforest tree-crown tiles (``hilovit.data.treecrowns``), plain FPN and HiLo-FPN.

The ratio column is the AP against the plain FPN of the same dataset, measured in this run ("n/a" while that
AP is below 1). AP after a few
minutes on a CPU is far from converged: it compares the two necks at an equal, small compute budget only.

Example:
    python benchmarks/bench_dense_quality.py --budget-s 240 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from rich.console import Console

from hilovit.speed import environment, fixed_threads, results_table
from hilovit.train import load_config, train

MIN_BASELINE_AP = 1.0  # below this the plain FPN has learnt nothing yet, and a ratio to it means nothing
RUNS = (("scenes", "plain"), ("scenes", "hilo"), ("treecrowns", "plain"), ("treecrowns", "hilo"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget-s", type=float, default=240.0, help="training seconds per run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="retinanet_litv2_nano")
    parser.add_argument("--scene-size", type=int, default=128, help="side of the scene canvases")
    parser.add_argument("--tile-size", type=int, default=256, help="side the 400 px tree tiles are resized to")
    parser.add_argument("--scene-images", type=int, nargs=2, default=(1000, 100), metavar=("TRAIN", "VAL"))
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=2e-4)
    args = parser.parse_args()
    console = Console(width=140)
    rows, baseline = [], {}
    with fixed_threads(args.threads), tempfile.TemporaryDirectory() as cache:
        os.environ["HILOVIT_CACHE"] = cache
        for data, fpn in RUNS:
            size = args.scene_size if data == "scenes" else args.tile_size
            settings = {
                "model": args.model,
                "fpn": fpn,
                "data": data,
                "img_size": size,
                "scene_images": list(args.scene_images),
                "epochs": 10**6,
                "time_budget": args.budget_s,
                "batch_size": args.batch_size,
                "lr": args.lr,
                "output": str(Path(cache) / f"{data}_{fpn}"),
                "progress": False,
            }
            overrides = [f"{key}={json.dumps(value)}" for key, value in settings.items()]
            cfg = load_config("retinanet_litv2_nano_scenes", overrides)
            result = train(cfg)
            metrics = result.evaluation.metrics
            baseline.setdefault(data, metrics["AP"])
            ratio = f"{metrics['AP'] / baseline[data]:.2f}x" if baseline[data] >= MIN_BASELINE_AP else "n/a"
            rows.append(
                [
                    f"{data}: {fpn} FPN",
                    f"{cfg.img_size}",
                    f"{result.train_time_s:.0f}",
                    f"{result.steps}",
                    *(f"{metrics[k]:.1f}" for k in ("AP", "AP50", "AP75")),
                    ratio,
                ]
            )
            console.print(" | ".join(rows[-1]))
        env = environment("cpu")
    columns = ["run", "image px", "train s", "steps", "AP", "AP50", "AP75", "AP vs plain"]
    title = f"{args.model}, {args.budget_s:.0f} s of CPU training each, batch {args.batch_size}, AdamW lr {args.lr}"
    console.print(results_table(title, columns, rows))
    console.print(", ".join(f"{k}: {v}" for k, v in env.items()))


if __name__ == "__main__":
    main()
