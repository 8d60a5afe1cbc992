"""The `hilovit bench deploy` command: arguments, the table with ratios over PyTorch eager, JSON/CSV/PNG files."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from hilovit.export.runtimes import MissingRuntimeError
from hilovit.grammar import (
    NON_NEGATIVE_FLOAT,
    POSITIVE_INT,
    add_command,
    add_flags,
    argument_type,
    comma_list,
    prepare_output_file,
)
from hilovit.speed.deploy import CANDIDATES, DeployReport, DeployRow, DeploySettings, bench_deploy, quality_drop
from hilovit.speed.report import results_table
from hilovit.validation import one_of

ROW_FIELDS = tuple(f.name for f in dataclasses.fields(DeployRow))
#: ``--runtimes``: a comma list of :data:`~hilovit.speed.deploy.CANDIDATES`
RUNTIMES = comma_list(argument_type(str, one_of(CANDIDATES)))
PROFILE_ROWS = 8


def add_deploy_command(targets: argparse._SubParsersAction) -> None:
    """Add `deploy` to the `bench` command's targets."""
    parser = add_command(
        targets,
        "deploy",
        help="one model in PyTorch, torch.compile, ONNX Runtime and OpenVINO, fp32 and int8, on this CPU",
    )
    parser.add_argument("model", help="a classifier or dense backbone (`hilovit models` lists them) or 'hilo'")
    parser.add_argument(
        "--checkpoint", type=Path, default=None, help="trained weights (last.pt or .safetensors): top-1 measured"
    )
    add_flags(
        parser,
        "batch_size",
        "img_size",
        "device",
        "threads",
        "warmup",
        "repeats",
        "json",
        "csv",
        "plots",
        batch_size_default=32,
        batch_size_help="throughput batch (latency is measured at batch 1)",
        img_size_help="image side (map side for hilo); None: the checkpoint's, else 224 (hilo: 14)",
        device_default="cpu",
        device_help="cpu: the runtimes measured are CPU ones",
        threads_help="intra-op threads of every runtime (None: torch's)",
        plots_help="also write speed_vs_accuracy.png into this folder",
    )
    parser.add_argument(
        "--runtimes", type=RUNTIMES, default=",".join(CANDIDATES), help="comma list of the candidates to measure"
    )
    parser.add_argument(
        "--calibration", type=Path, default=None, help="image folder or dataset directory (None: Fashion-MNIST)"
    )
    parser.add_argument("--calibration-images", type=POSITIVE_INT, default=64, help="images to calibrate int8 with")
    parser.add_argument(
        "--eval-images",
        type=POSITIVE_INT,
        default=None,
        help="calibration-disjoint images for fidelity (None: 256; with --checkpoint the whole test split)",
    )
    parser.add_argument("--save", type=Path, default=None, help="keep the fastest artifact within the drop here")
    parser.add_argument(
        "--max-top1-drop", type=NON_NEGATIVE_FLOAT, default=0.5, help="top-1 points an artifact kept by --save may lose"
    )
    parser.add_argument(
        "--sensitivity", action="store_true", help="also quantise each group of layers alone (which to keep in fp32)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="also show where ONNX Runtime's and OpenVINO's time goes, by operator"
    )
    parser.set_defaults(run=deploy_command)


def deploy_settings(args: argparse.Namespace) -> DeploySettings:
    if args.device != "cpu":
        raise ValueError(f"bench deploy measures CPU runtimes (ONNX Runtime, OpenVINO); got --device {args.device}")
    eval_images = args.eval_images or (None if args.checkpoint is not None else 256)
    return DeploySettings(
        model=args.model,
        checkpoint=args.checkpoint,
        img_size=args.img_size,
        batch_size=args.batch_size,
        candidates=args.runtimes,
        calibration=args.calibration,
        calibration_images=args.calibration_images,
        eval_images=eval_images,
        threads=args.threads,
        warmup=args.warmup,
        repeats=args.repeats,
        max_top1_drop=args.max_top1_drop,
        save=args.save,
        sensitivity=args.sensitivity,
        profile=args.profile,
    )


def _cell(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else format(value, spec) + suffix


def deploy_tables(report: DeployReport, title: str) -> list:
    """One table per batch size, rows in candidate order, speedup over PyTorch eager at that batch."""
    columns = (
        "runtime",
        "precision",
        "p50 ms",
        "img/s",
        "speedup",
        "peak MiB",
        "file MiB",
        "max |diff|",
        "cosine",
        "agree %",
        "top-1 %",
        "drop",
    )
    tables = []
    for batch in dict.fromkeys(row.batch_size for row in report.rows):
        rows = [row for row in report.rows if row.batch_size == batch]
        cells = [
            (row.runtime, row.precision, row.error or "", *("-" * 9))
            if row.error
            else (
                row.runtime,
                row.precision,
                _cell(row.latency_ms, ".2f"),
                _cell(row.images_per_s, ".1f"),
                _cell(row.speedup, ".2f", "x"),
                _cell(row.peak_mib, ".1f"),
                _cell(row.file_mib, ".2f"),
                _cell(row.max_abs_diff, ".2e"),
                _cell(row.cosine, ".5f"),
                _cell(row.top1_agreement, ".2f"),
                _cell(row.top1, ".2f"),
                _cell(row.top1_drop, "+.2f"),
            )
            for row in rows
        ]
        size = f"{rows[0].height}x{rows[0].width}"
        tables.append(results_table(f"{title}, batch {batch}, {size}; speedup = over PyTorch eager", columns, cells))
    return tables


def write_files(report: DeployReport, json_path: Path | None, csv_path: Path | None) -> None:
    if json_path is not None:
        document = {
            "environment": report.environment,
            "settings": report.settings,
            "rows": [dataclasses.asdict(row) for row in report.rows],
            "notes": report.notes,
            "sensitivity": [dataclasses.asdict(item) for item in report.sensitivity],
            "profiles": {name: [dataclasses.asdict(op) for op in ops] for name, ops in report.profiles.items()},
        }
        json_path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    if csv_path is not None:
        with open(csv_path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=ROW_FIELDS)
            writer.writeheader()
            for row in report.rows:
                writer.writerow({k: "" if v is None else v for k, v in dataclasses.asdict(row).items()})


def speed_vs_accuracy(rows: Sequence[DeployRow], batch: int, path: Path, title: str) -> Path:
    """Speedup over PyTorch eager at ``batch`` against top-1 drop (or 1 - cosine for outputs without classes)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    measured = [row for row in rows if row.batch_size == batch and row.speedup is not None]
    by_drop = all(quality_drop(row) is not None for row in measured)
    for row in measured:
        x = quality_drop(row) if by_drop else 1.0 - row.cosine
        axes.scatter(x, row.speedup, s=40)
        axes.annotate(f"{row.runtime} {row.precision}", (x, row.speedup), xytext=(5, 4), textcoords="offset points")
    labelled = any(row.top1_drop is not None for row in measured)
    what = "top-1 drop on the labels (points)" if labelled else "images whose top-1 changed (%)"
    axes.set_xlabel(f"{what}, vs PyTorch fp32" if by_drop else "1 - cosine vs PyTorch fp32")
    axes.set_ylabel(f"speedup over PyTorch eager, batch {batch}")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return path


def deploy_command(args: argparse.Namespace, console: Console | None = None) -> DeployReport:
    """`hilovit bench deploy`."""
    console = console or Console(width=max(Console().width, 140))
    settings = deploy_settings(args)
    for path in (args.json, args.csv):
        prepare_output_file(path)
    try:
        report = bench_deploy(settings, log=lambda text: console.print(text, style="dim"))
    except MissingRuntimeError as error:  # an ImportError: reported by run_command as a user error
        raise ValueError(f"bench deploy: {error} (or leave it out with --runtimes)") from error
    console.print("  ".join(f"{key}={value}" for key, value in report.environment.items()), style="dim")
    title = f"{settings.model}" + (f" ({settings.checkpoint})" if settings.checkpoint else ", random weights")
    for table in deploy_tables(report, title):
        console.print(table)
    console.print(
        "p50 ms: median latency of one batch; peak MiB: PyTorch allocator peak above the inputs, other runtimes "
        "resident-memory growth during the first call of a fresh session; max |diff|, cosine, top-1 agree: "
        f"outputs vs PyTorch fp32 on {report.settings['evaluation_images']} images disjoint from the calibration "
        "set; top-1 / drop: accuracy on the test labels (trained checkpoints only).",
        style="dim",
    )
    for note in report.notes:
        console.print(note)
    if report.sensitivity:
        cells = (
            (
                item.group,
                str(item.nodes),
                "yes" if item.quantized else "no int8 kernel",
                f"{item.fidelity.max_abs_diff:.2e}",
                f"{item.fidelity.cosine:.5f}",
                _cell(item.fidelity.top1_agreement, ".2f"),
            )
            for item in report.sensitivity
        )
        columns = ("group quantised alone", "nodes", "quantised", "max |diff|", "cosine", "top-1 agree %")
        console.print(results_table("int8 sensitivity (onnxruntime), worst first", columns, cells))
    for name, ops in report.profiles.items():
        cells = ((op.op, f"{op.ms:.2f}", f"{op.share:.0%}") for op in ops[:PROFILE_ROWS])
        title = f"{name}: time by operator, batch {settings.batch_size} (slowest {PROFILE_ROWS})"
        console.print(results_table(title, ("operator (OpenVINO: + kernel)", "ms per call", "share"), cells))
    write_files(report, args.json, args.csv)
    if args.plots is not None:
        path = speed_vs_accuracy(report.rows, settings.batch_size, args.plots / "speed_vs_accuracy.png", title)
        console.print(f"wrote {path}")
    return report
