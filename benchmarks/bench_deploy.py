"""Deployed speed: LITv2-S (random weights, fidelity only) and the demo model (trained, top-1 per runtime) in
PyTorch eager, torch.compile, ONNX Runtime and OpenVINO, fp32 and int8, through `hilovit bench deploy`.

Each model is one run of the command: candidates timed interleaved on the same inputs, batch 1 and batch 32,
ratios over PyTorch eager. The JSON, CSV and PNG of each go to --out. Example (a quiet machine, 2 threads):

    python benchmarks/bench_deploy.py --checkpoint runs/demo/hilo/last.pt --threads 2 --out runs/deploy

--quick is a smoke run, not a measurement: LITv2-nano at 32 px in LITv2-S's place, batch 2, 4 calibration and
4 evaluation images, one timed call, PyTorch and ONNX Runtime fp32 only (unless --runtimes says otherwise), no
sensitivity or profiles.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hilovit.cli import main as hilovit

#: what --quick passes to every command: the smallest run that still goes through export, timing and files
QUICK = ["--batch-size", "2", "--calibration-images", "4", "--eval-images", "4", "--warmup", "0", "--repeats", "1"]
QUICK_RUNTIMES = "pytorch,onnxruntime"


def commands(
    checkpoint: Path | None, threads: int | None, out: Path, quick: bool, runtimes: str | None = None
) -> list[list[str]]:
    """The `hilovit bench deploy` command lines this benchmark runs."""
    common = ["--threads", str(threads)] if threads else []
    runtimes = runtimes or (QUICK_RUNTIMES if quick else None)
    common += ["--runtimes", runtimes] if runtimes else []
    common += QUICK if quick else ["--sensitivity", "--profile"]
    # (name of the files, model, its arguments)
    runs = [("random_weights", "litv2_nano" if quick else "litv2_s", ["--img-size", "32" if quick else "224"])]
    if checkpoint is not None:
        runs.append(("demo_model", "litv2_nano", ["--checkpoint", str(checkpoint)]))
    lines = []
    for name, model, extra in runs:
        files = ["--json", str(out / f"{name}.json"), "--csv", str(out / f"{name}.csv"), "--plots", str(out / name)]
        lines.append(["bench", "deploy", model, *extra, *common, *files, "--save", str(out / name / "artifact")])
    return lines


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkpoint", type=Path, default=None, help="the demo model (`make demo` writes runs/demo/hilo/last.pt)"
    )
    parser.add_argument("--threads", type=int, default=None, help="threads of every runtime (default torch's)")
    parser.add_argument("--out", type=Path, default=Path("runs/deploy"), help="folder for JSON, CSV, PNG, artifacts")
    parser.add_argument(
        "--runtimes",
        default=None,
        help=f"comma list passed to `bench deploy --runtimes` (default: all; with --quick {QUICK_RUNTIMES})",
    )
    parser.add_argument("--quick", action="store_true", help="tiny inputs, one repeat, two runtimes: a smoke run")
    return parser.parse_args()


if __name__ == "__main__":
    args = parse_args()
    for line in commands(args.checkpoint, args.threads, args.out, args.quick, args.runtimes):
        print("hilovit " + " ".join(line))
        hilovit(line)
