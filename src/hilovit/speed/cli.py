"""The `hilovit bench attention|models` and `hilovit tune` commands (argparse wiring and output)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from hilovit.speed.attention_bench import MECHANISMS, AttentionSettings, bench_attention, hilo_summary
from hilovit.speed.breakdown import print_breakdowns
from hilovit.speed.export import Report, write_csv, write_json
from hilovit.speed.measure import DTYPES, MODES
from hilovit.speed.model_bench import ModelSettings, bench_models, default_baseline, model_label, resolve_models
from hilovit.speed.report import fastest_lines, point_tables, results_table
from hilovit.speed.tune import SDPA_BACKENDS, TuneResult, TuneSettings, default_name, tune, write_config


def _list(kind: Callable[[str], Any]) -> Callable[[str], tuple]:
    def parse(text: str) -> tuple:
        try:
            return tuple(kind(item.strip()) for item in text.split(",") if item.strip())
        except ValueError as error:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated list of {kind.__name__}, got {text!r}"
            ) from error

    return parse


def _modes(text: str) -> tuple[str, ...]:
    choices = {"forward": ("forward",), "backward": ("forward+backward",), "both": MODES}
    if text not in choices:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(choices)}, got {text!r}")
    return choices[text]


def _add_run_arguments(parser: argparse.ArgumentParser, repeats: int) -> None:
    default_device = "cuda" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--device", default=default_device, help=f"torch device (default {default_device})")
    parser.add_argument("--dtype", choices=DTYPES, default="float32", help="autocast dtype (float32: no autocast)")
    parser.add_argument("--threads", type=int, default=None, help="intra-op CPU threads (default: torch's)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per candidate first")
    parser.add_argument("--repeats", type=int, default=repeats, help="timed samples per candidate, interleaved")
    parser.add_argument("--json", type=Path, default=None, help="write environment, settings and rows here")
    parser.add_argument("--csv", type=Path, default=None, help="write one line per row here")
    parser.add_argument("--plots", type=Path, default=None, help="write PNG plots into this folder")


def _add_common_arguments(parser: argparse.ArgumentParser, batch: int, size: int) -> None:
    _add_run_arguments(parser, repeats=7)
    parser.add_argument(
        "--batch", type=_list(int), default=(batch,), help=f"batch size(s), comma list (default {batch})"
    )
    parser.add_argument(
        "--size", type=_list(int), default=(size,), help=f"side(s), comma list: a sweep (default {size})"
    )
    parser.add_argument(
        "--mode", type=_modes, default=("forward",), help="forward, backward (forward+backward) or both"
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="after timing, profile each candidate (3 calls) and print its time by kind of work "
        "(matmul, attention, normalization, casts, copies, ...)",
    )


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add `bench attention`, `bench models` and `tune` to the `hilovit` command's subparsers."""
    bench = subparsers.add_parser("bench", help="measure attention mechanisms or models on this device")
    targets = bench.add_subparsers(dest="target", required=True)
    attention = targets.add_parser(
        "attention", help="single attention layers: MSA, SRA, (shifted) window, HiLo, timm's Swin and PVTv2"
    )
    _add_common_arguments(attention, batch=64, size=14)
    attention.add_argument("--dim", type=int, default=768, help="channels (default 768)")
    attention.add_argument("--heads", type=int, default=12, help="attention heads (default 12)")
    attention.add_argument(
        "--mechanisms",
        type=_list(str),
        default=MECHANISMS,
        help=f"comma list of {', '.join(MECHANISMS)} (default: all)",
    )
    attention.add_argument("--alpha", type=_list(float), default=(0.5, 0.9), help="HiLo alpha(s) (default 0.5,0.9)")
    attention.add_argument("--hilo-window", type=int, default=2, help="HiLo window / pooling size (default 2)")
    attention.add_argument("--window", type=int, default=7, help="(shifted) window side (default 7)")
    attention.add_argument("--sr-ratio", type=int, default=2, help="SRA reduction ratio (default 2)")
    attention.add_argument("--baseline", default="msa", help="candidate the ratios refer to (default msa)")
    attention.set_defaults(run=attention_command)
    models = targets.add_parser("models", help="LITv2 against timm models by name")
    _add_common_arguments(models, batch=32, size=224)
    models.add_argument("--models", default="s", help="comma list of sets (s, m, b, all) and/or timm names (default s)")
    models.add_argument(
        "--baseline",
        default=None,
        help="model the ratios refer to (default: Swin-T when measured, else the first model)",
    )
    models.add_argument("--channels-last", action="store_true", help="channels-last models and input")
    models.add_argument("--compile", action="store_true", help="torch.compile every model first")
    models.set_defaults(run=models_command)
    _add_tune_command(subparsers)


def _add_tune_command(subparsers: argparse._SubParsersAction) -> None:
    tune = subparsers.add_parser(
        "tune", help="sweep HiLo alpha/windows (and implementation choices) of a LITv2 model or a HiLo layer"
    )
    tune.add_argument("target", help="a LITv2 model name (litv2_s, ...) or 'hilo' for one layer (--dim, --heads)")
    _add_run_arguments(tune, repeats=5)
    tune.add_argument("--size", type=int, default=None, help="image side (model, default 224) or map side (layer, 14)")
    tune.add_argument("--batch", type=int, default=None, help="batch (default 8 for a model, 64 for a layer)")
    tune.add_argument("--mode", choices=MODES, default="forward", help="pass to time")
    tune.add_argument("--dim", type=int, default=768, help="layer channels (hilo only)")
    tune.add_argument("--heads", type=int, default=12, help="layer heads (hilo only)")
    tune.add_argument("--alpha", type=_list(float), default=(0.5, 0.75, 0.9, 1.0), help="alphas to try")
    tune.add_argument("--windows", type=_list(int), default=(1, 2), help="windows to try in every HiLo stage")
    tune.add_argument("--sdpa", type=_list(str), default=(), help=f"SDPA backends to try: {', '.join(SDPA_BACKENDS)}")
    tune.add_argument("--try-channels-last", action="store_true", help="also try channels-last (models)")
    tune.add_argument("--try-compile", action="store_true", help="also try torch.compile")
    tune.add_argument("--min-hifi-heads", type=int, default=0, help="Hi-Fi heads every windowed stage keeps")
    tune.add_argument("--max-gmacs", type=float, default=None, help="upper bound on GMACs per image")
    tune.add_argument("--out", type=Path, default=None, help="chosen builder kwargs (default tuned_<target>.json)")
    tune.set_defaults(run=tune_command)


def attention_settings(args: argparse.Namespace) -> AttentionSettings:
    return AttentionSettings(
        dim=args.dim,
        num_heads=args.heads,
        sizes=args.size,
        batches=args.batch,
        modes=args.mode,
        mechanisms=args.mechanisms,
        alphas=args.alpha,
        hilo_window=args.hilo_window,
        window=args.window,
        sr_ratio=args.sr_ratio,
        baseline=args.baseline,
        device=args.device,
        dtype=args.dtype,
        threads=args.threads,
        warmup=args.warmup,
        repeats=args.repeats,
        breakdown=args.breakdown,
    )


def model_settings(args: argparse.Namespace) -> ModelSettings:
    models = resolve_models(args.models)
    return ModelSettings(
        models=tuple(models),
        sizes=args.size,
        batches=args.batch,
        modes=args.mode,
        baseline=args.baseline or default_baseline(models),
        device=args.device,
        dtype=args.dtype,
        threads=args.threads,
        channels_last=args.channels_last,
        compile=args.compile,
        warmup=args.warmup,
        repeats=args.repeats,
        breakdown=args.breakdown,
    )


def _settings(make: Callable[[argparse.Namespace], Any], args: argparse.Namespace) -> Any:
    """Settings from the arguments; a bad value exits with its message instead of a traceback."""
    try:
        return make(args)
    except ValueError as error:
        raise SystemExit(f"hilovit: error: {error}") from error


def emit(report: Report, args: argparse.Namespace, baseline_label: str, what: str, console: Console) -> None:
    """Tables, a summary and the requested files (JSON, CSV, plots)."""
    console.print("  ".join(f"{key}={value}" for key, value in report.environment.items()), style="dim")
    for table in point_tables(report.rows, baseline_label, what):
        console.print(table)
    console.print(
        "GMACs: multiply-accumulates per image, analytic (the papers' count); counted: "
        "torch.utils.flop_counter / 2 (CPU SDPA included). p50/p90: latency of one batch; "
        "spread: IQR / median; peak MiB: allocated above the inputs during one call.",
        style="dim",
    )
    for line in fastest_lines(report.rows):
        console.print(line)
    print_breakdowns(report.breakdowns, console)
    if args.json:
        write_json(args.json, report)
    if args.csv:
        write_csv(args.csv, report.rows)
    if args.plots:
        try:
            from hilovit.speed.plots import write_plots
        except ModuleNotFoundError as error:
            raise SystemExit(f"--plots needs matplotlib ({error}): pip install 'hilovit[plot]'") from error

        for path in write_plots(report.rows, args.plots, what):
            console.print(f"wrote {path}")


def attention_command(args: argparse.Namespace, console: Console | None = None) -> Report:
    """`hilovit bench attention`."""
    console = console or Console()
    settings = _settings(attention_settings, args)
    report = bench_attention(settings, console)
    baseline = next(row.label for row in report.rows if row.name == settings.baseline)
    emit(report, args, baseline, f"attention, dim {settings.dim}, {settings.num_heads} heads: ", console)
    for line in hilo_summary(report.rows):
        console.print(line)
    return report


def models_command(args: argparse.Namespace, console: Console | None = None) -> Report:
    """`hilovit bench models`."""
    console = console or Console()
    settings = _settings(model_settings, args)
    report = bench_models(settings, console)
    emit(report, args, model_label(settings.baseline), f"models, {settings.dtype}: ", console)
    return report


def tune_settings(args: argparse.Namespace) -> TuneSettings:
    layer = args.target == "hilo"
    return TuneSettings(
        target=args.target,
        size=args.size or (14 if layer else 224),
        batch=args.batch or (64 if layer else 8),
        mode=args.mode,
        dim=args.dim,
        num_heads=args.heads,
        alphas=args.alpha,
        windows=args.windows,
        sdpa=args.sdpa,
        channels_last=(False, True) if args.try_channels_last else (False,),
        compile=(False, True) if args.try_compile else (False,),
        min_hifi_heads=args.min_hifi_heads,
        max_gmacs=args.max_gmacs,
        device=args.device,
        dtype=args.dtype,
        threads=args.threads,
        warmup=args.warmup,
        repeats=args.repeats,
    )


def tune_command(args: argparse.Namespace, console: Console | None = None) -> TuneResult:
    """`hilovit tune`: all configurations, the Pareto front, and the chosen one written as builder kwargs."""
    console = console or Console()
    settings = _settings(tune_settings, args)
    result = tune(settings, console)
    baseline = default_name(settings, result.configs)
    emit(result.report, args, baseline, f"{settings.target}: ", console)
    cells = (
        (row.label, f"{row.gmacs:.3f}", f"{row.images_per_s:.1f}", str(result.configs[row.name].hifi_heads))
        for row in result.front
    )
    console.print(
        results_table("speed/FLOPs Pareto front", ("configuration", "GMACs", "img/s", "min Hi-Fi heads"), cells)
    )
    if result.chosen is None:
        console.print("no configuration meets the constraints (--min-hifi-heads, --max-gmacs)", style="bold red")
        return result
    out = args.out or Path(f"tuned_{settings.target}.json")
    write_config(out, result.chosen)
    console.print(f"fastest within the constraints: {result.chosen.name}; builder kwargs written to {out}")
    return result
