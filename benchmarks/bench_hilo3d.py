"""HiLo3d vs full 3-D attention vs windowed-only attention (time, peak memory), and Dice on MNI152 per mixer.

Full attention is global MSA over all T*H*W tokens (HiLo3d with a 1x1x1 window: every head global, SDPA);
windowed-only is HiLo3d with alpha 0 (every head local). SDPA's fused kernels never hold the N x N attention
matrix, so full attention's memory stays linear, but its cost is 4*N^2*C FLOPs: a candidate is skipped, with
the estimate printed, when that exceeds ``--max-gflop`` or when its estimated memory exceeds ``--max-gib``.
Run: python benchmarks/bench_hilo3d.py [--dice-budget SECONDS]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from rich.console import Console

from hilovit import HiLo3d
from hilovit.speed import environment, fixed_threads, peak_memory_bytes, results_table, time_interleaved
from hilovit.speed.memory import is_out_of_memory

GIB = 2**30


def _estimate(layer: HiLo3d, grid: tuple[int, int, int]) -> tuple[float, float, float]:
    """GFLOP of one forward, GiB the fused kernels need (activations, ~12 copies of the tokens), GiB an explicit
    attention matrix would need (largest score matrix: windows x window^2 or tokens x keys per head)."""
    tokens, keys = math.prod(grid), math.prod(grid) // layer.window_tokens
    gflop = 2 * layer.flops(*grid) / 1e9
    working = 12 * tokens * layer.dim * 4 / GIB
    scores = max(layer.h_heads * tokens * layer.window_tokens, layer.l_heads * tokens * keys) * 4 / GIB
    return gflop, working, scores


FULL, WINDOWED = "full 3-D attention (SDPA)", "windowed only (alpha 0)"
COLUMNS = (
    "grid / method",
    "ms",
    "spread",
    "peak MiB",
    "GFLOP",
    "explicit scores GiB",
    "speed-up vs full",
    "speed-up vs windowed",
    "memory / full",
)


def _ratio(numerator: object, denominator: object) -> str:
    if not isinstance(numerator, float) or not isinstance(denominator, float):
        return "n/a"
    return f"{numerator / denominator:.2f}x"


def attention_rows(args: argparse.Namespace) -> list[list[str]]:
    table = []
    for grid in args.grids:
        layers = {
            FULL: HiLo3d(args.dim, args.heads, window_size=1),
            WINDOWED: HiLo3d(args.dim, args.heads, window_size=args.window, alpha=0.0),
            f"HiLo3d (alpha {args.alpha})": HiLo3d(args.dim, args.heads, window_size=args.window, alpha=args.alpha),
        }
        x = torch.randn(1, math.prod(grid), args.dim)
        rows: dict[str, dict[str, object]] = {}
        calls = {}
        for name, layer in layers.items():
            gflop, working, scores = _estimate(layer.eval(), grid)
            rows[name] = {"GFLOP": f"{gflop:.1f}", "explicit scores GiB": f"{scores:.2f}"}
            if gflop > args.max_gflop or working > args.max_gib:
                rows[name]["ms"] = f"skipped: needs {gflop:.0f} GFLOP > limit {args.max_gflop:.0f}"
                continue
            fn = lambda layer=layer, x=x, grid=grid: layer(x, *grid)  # noqa: E731
            try:
                rows[name]["peak"] = peak_memory_bytes(fn) / 2**20
                calls[name] = fn
            except RuntimeError as error:
                if not is_out_of_memory(error):
                    raise
                rows[name]["ms"] = "out of memory"
        for name, timing in time_interleaved(calls, warmup=1, repeats=args.repeats).items():
            rows[name] |= {"time": timing.median_s * 1e3, "spread": f"{timing.spread:.0%}"}
        full, windowed = rows[FULL], rows[WINDOWED]
        for name, row in rows.items():
            table.append(
                [
                    f"{'x'.join(map(str, grid))} {name}",
                    f"{row['time']:.1f}" if "time" in row else str(row["ms"]),
                    str(row.get("spread", "")),
                    f"{row['peak']:.1f}" if "peak" in row else "",
                    str(row["GFLOP"]),
                    str(row["explicit scores GiB"]),
                    _ratio(full.get("time"), row.get("time")),
                    _ratio(windowed.get("time"), row.get("time")),
                    _ratio(row.get("peak"), full.get("peak")),
                ]
            )
    return table


def dice_rows(budget: float, output: Path) -> list[list[str]]:
    from hilovit.train import load_config, train

    table = []
    for mixer in ("hilo", "window", "conv"):
        cfg = load_config(
            "hilo3d_unet_mni152",
            [f"model_kwargs={{mixer: {mixer}}}", f"time_budget={budget}", f"output={output / mixer}", "progress=false"],
        )
        result = train(cfg)
        scores = result.evaluation.scalars()
        figures = (scores["test_dice"], scores["test_dice_1"], scores["test_dice_2"])
        table.append(
            [
                f"U-Net, {mixer} low-res stages",
                *(f"{v:.3f}" for v in figures),
                f"{scores['test_acc']:.2f}",
                str(result.steps),
                f"{result.throughput:.1f}",
            ]
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    grid = lambda text: tuple(map(int, text.split("x")))  # noqa: E731
    parser.add_argument("--grids", type=grid, nargs="+", default=[(8, 56, 56), (16, 112, 112)], help="TxHxW ...")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--window", type=int, nargs=3, default=(2, 4, 4))
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-gflop", type=float, default=2000.0, help="skip candidates costlier than this")
    parser.add_argument("--max-gib", type=float, default=4.0, help="skip candidates estimated to need more memory")
    parser.add_argument("--dice-budget", type=float, default=0.0, help="seconds of MNI152 training per mixer (0: off)")
    parser.add_argument("--output", type=Path, default=Path("runs/bench_hilo3d"))
    args = parser.parse_args()
    console = Console(width=200)
    with fixed_threads(args.threads):
        title = f"attention, batch 1, dim {args.dim}, {args.heads} heads, window {tuple(args.window)}, float32, CPU"
        console.print(results_table(title, COLUMNS, attention_rows(args)))
        if args.dice_budget > 0:
            columns = (
                "model",
                "val Dice (mean grey/white)",
                "Dice grey",
                "Dice white",
                "voxel acc %",
                "steps",
                "crops/s (inference)",
            )
            title = f"MNI152 anterior validation slab after {args.dice_budget:.0f} s of CPU training each"
            console.print(results_table(title, columns, dice_rows(args.dice_budget, args.output)))
        console.print(environment("cpu"))


if __name__ == "__main__":
    main()
