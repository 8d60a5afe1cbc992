"""hilovit.HiLo against the seed's explicit-softmax formulation, and against the machine's matmul speed.

For each shape, one interleaved run times: hilovit.HiLo, the reference (same weights, outputs checked
equal first) and a square matmul in the same dtype, whose throughput is the roofline the layer's achieved
GFLOP/s is compared with. Example:  python benchmarks/bench_hilo.py --device cpu --dtype float32
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass

import torch
from rich.console import Console
from rich.table import Table

from hilovit import HiLo
from hilovit.attention.reference import HiLoReference
from hilovit.speed import (
    cuda_graphed,
    environment,
    fixed_threads,
    peak_memory_bytes,
    results_table,
    time_interleaved,
)
from hilovit.speed.measure import DTYPES


@dataclass(frozen=True)
class Shape:
    label: str
    dim: int
    heads: int
    H: int
    W: int
    batch: int


# dim/heads, H x W, batch; alpha 0.9 and window 2 throughout, as in LITv2.
SHAPES = (
    Shape("a: paper single layer", 768, 12, 14, 14, 64),
    Shape("b: LITv2-S stage 3", 384, 12, 14, 14, 64),
    Shape("c: detection stage 3", 384, 12, 50, 50, 2),
    Shape("d: high-res map", 192, 6, 56, 56, 8),
)
QUICK_BATCH = {"a": 8, "b": 8, "c": 1, "d": 2}


@dataclass(frozen=True)
class Row:
    shape: str
    hilo_ms: float
    reference_ms: float
    speedup: float
    gflops_per_s: float
    matmul_gflops_per_s: float
    matmul_share: float
    hilo_peak_mib: float
    reference_peak_mib: float
    max_abs_diff: float


def matmul_probe(device: torch.device, dtype: torch.dtype):
    """A square matmul big enough to reach the device's sustained throughput; returns (fn, flops)."""
    n = 2048 if device.type == "cpu" else 8192
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    return (lambda: a @ b), 2 * n**3


def measure(shape: Shape, device: torch.device, dtype: torch.dtype, repeats: int, graphs: bool = False) -> Row:
    torch.manual_seed(0)
    hilo = HiLo(shape.dim, shape.heads, qkv_bias=True, window_size=2, alpha=0.9).to(device, dtype).eval()
    reference = HiLoReference(shape.dim, shape.heads, qkv_bias=True, window_size=2, alpha=0.9)
    reference = reference.to(device, dtype).eval()
    reference.load_state_dict(hilo.state_dict(), strict=True)
    x = torch.randn(shape.batch, shape.H * shape.W, shape.dim, device=device, dtype=dtype)

    def run_hilo():
        return hilo(x, shape.H, shape.W)

    def run_reference():
        return reference(x, shape.H, shape.W)

    with torch.inference_mode():
        diff = (run_hilo().float() - run_reference().float()).abs().max().item()
    tolerance = 1e-4 if dtype == torch.float32 else 5e-2
    if diff > tolerance:
        raise AssertionError(f"{shape.label}: HiLo differs from the reference by {diff:.2e} > {tolerance:.0e}")
    matmul, matmul_flops = matmul_probe(device, dtype)
    candidates = {"hilo": run_hilo, "reference": run_reference, "matmul": matmul}
    if graphs:
        candidates = {name: cuda_graphed(fn) for name, fn in candidates.items()}
    timings = time_interleaved(candidates, device=device, repeats=repeats)
    hilo_s, reference_s = timings["hilo"].median_s, timings["reference"].median_s
    layer_gflops = 2 * hilo.flops(shape.H, shape.W) * shape.batch / hilo_s / 1e9
    matmul_gflops = matmul_flops / timings["matmul"].median_s / 1e9
    return Row(
        shape=f"{shape.label} ({shape.dim}/{shape.heads}, {shape.H}x{shape.W}, B={shape.batch})",
        hilo_ms=hilo_s * 1e3,
        reference_ms=reference_s * 1e3,
        speedup=reference_s / hilo_s,
        gflops_per_s=layer_gflops,
        matmul_gflops_per_s=matmul_gflops,
        matmul_share=layer_gflops / matmul_gflops,
        hilo_peak_mib=peak_memory_bytes(run_hilo, device) / 2**20,
        reference_peak_mib=peak_memory_bytes(run_reference, device) / 2**20,
        max_abs_diff=diff,
    )


COLUMNS = ("shape", "HiLo ms", "ref ms", "speed-up", "GFLOP/s", "matmul GFLOP/s", "of matmul", "HiLo MiB", "ref MiB")


def render(rows: list[Row], env: dict) -> Table:
    cells = (
        (
            r.shape,
            f"{r.hilo_ms:.2f}",
            f"{r.reference_ms:.2f}",
            f"{r.speedup:.2f}x",
            f"{r.gflops_per_s:.1f}",
            f"{r.matmul_gflops_per_s:.1f}",
            f"{r.matmul_share:.0%}",
            f"{r.hilo_peak_mib:.1f}",
            f"{r.reference_peak_mib:.1f}",
        )
        for r in rows
    )
    title = "HiLo vs the seed formulation  " + "  ".join(f"{k}={v}" for k, v in env.items())
    return results_table(title, COLUMNS, cells)


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=DTYPES, default=None, help="float32 on CPU, bfloat16 on GPU by default")
    parser.add_argument("--shapes", default="abcd", help="which of the shapes a, b, c, d to run")
    parser.add_argument("--quick", action="store_true", help="smaller batches and fewer repeats (the demo)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--cuda-graphs",
        action="store_true",
        help="time CUDA-graph replays of every candidate: GPU work without launch overhead",
    )
    parser.add_argument("--json", default=None, help="also write the rows and environment to this file")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    dtype = DTYPES[args.dtype or ("float32" if device.type == "cpu" else "bfloat16")]
    if args.cuda_graphs and device.type != "cuda":
        parser.error(f"--cuda-graphs needs a CUDA device, got --device {device}")
    unknown = set(args.shapes) - set(QUICK_BATCH)
    if unknown:
        parser.error(f"unknown shape(s) {sorted(unknown)}; expected letters from 'abcd'")
    shapes = [s for s in SHAPES if s.label[0] in args.shapes]
    if args.quick:
        shapes = [Shape(s.label, s.dim, s.heads, s.H, s.W, QUICK_BATCH[s.label[0]]) for s in shapes]
    repeats = args.repeats or (3 if args.quick else 7)
    console = Console(width=200)
    with fixed_threads(args.threads):
        env = environment(device, dtype) | ({"timing": "cuda-graphs"} if args.cuda_graphs else {})
        rows = []
        for shape in shapes:
            rows.append(measure(shape, device, dtype, repeats, args.cuda_graphs))
            console.print(f"measured {shape.label}", style="dim")
    console.print(render(rows, env))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": env, "rows": [asdict(r) for r in rows]}, f, indent=2)
    return rows


if __name__ == "__main__":
    main()
