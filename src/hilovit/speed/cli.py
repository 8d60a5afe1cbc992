"""The `hilovit bench attention|models` and `hilovit tune` commands (argparse wiring and output)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from hilovit.grammar import (
    NON_NEGATIVE_FLOAT,
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    POSITIVE_INTS,
    add_command,
    add_flags,
    comma_list,
    prepare_output_file,
    resolve_device,
)
from hilovit.speed.attention_bench import MECHANISMS, AttentionSettings, bench_attention, hilo_summary
from hilovit.speed.breakdown import print_breakdowns
from hilovit.speed.deploy_cli import add_deploy_command
from hilovit.speed.measure import DTYPES, MODES
from hilovit.speed.model_bench import ModelSettings, bench_models, default_baseline, model_label, resolve_models
from hilovit.speed.report import fastest_lines, point_tables, results_table
from hilovit.speed.results_files import Report, write_csv, write_json
from hilovit.speed.tune import SDPA_BACKENDS, TuneResult, TuneSettings, default_name, tune, write_config


def _modes(text: str) -> tuple[str, ...]:
    choices = {"forward": ("forward",), "backward": ("forward+backward",), "both": MODES}
    if text not in choices:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(choices)}, got {text!r}")
    return choices[text]


def _add_run_arguments(parser: argparse.ArgumentParser, repeats: int) -> None:
    add_flags(parser, "device", "json", "csv", "plots", "threads", "warmup", "repeats", repeats_default=repeats)
    parser.add_argument("--dtype", choices=DTYPES, default="float32", help="autocast dtype (float32: no autocast)")


def _add_common_arguments(parser: argparse.ArgumentParser, batch: int, size: int) -> None:
    _add_run_arguments(parser, repeats=7)
    add_flags(
        parser,
        "batch_size",
        "img_size",
        batch_size_type=POSITIVE_INTS,
        batch_size_default=(batch,),
        batch_size_help="images per batch; a comma list is a sweep",
        img_size_type=POSITIVE_INTS,
        img_size_default=(size,),
        img_size_help="side of the (square) input; a comma list is a sweep",
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


def add_bench_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add `bench attention`, `bench models` and `tune` to the `hilovit` command's subparsers."""
    bench = add_command(subparsers, "bench", help="measure attention mechanisms or models on this device")
    targets = bench.add_subparsers(dest="target", required=True)
    attention = add_command(
        targets, "attention", help="single attention layers: MSA, SRA, (shifted) window, HiLo, timm's Swin and PVTv2"
    )
    _add_common_arguments(attention, batch=64, size=14)
    attention.add_argument("--dim", type=POSITIVE_INT, default=768, help="channels")
    attention.add_argument("--heads", type=POSITIVE_INT, default=12, help="attention heads")
    attention.add_argument(
        "--mechanisms",
        type=comma_list(str),
        default=MECHANISMS,
        help=f"comma list of {', '.join(MECHANISMS)}",
    )
    attention.add_argument("--alpha", type=comma_list(float), default=(0.5, 0.9), help="HiLo alpha(s)")
    attention.add_argument("--hilo-window", type=POSITIVE_INT, default=2, help="HiLo window / pooling size")
    attention.add_argument("--window", type=POSITIVE_INT, default=7, help="(shifted) window side")
    attention.add_argument("--sr-ratio", type=POSITIVE_INT, default=2, help="SRA reduction ratio")
    attention.add_argument("--baseline", default="msa", help="candidate the ratios refer to")
    attention.set_defaults(run=attention_command)
    models = add_command(targets, "models", help="LITv2 against timm models by name")
    _add_common_arguments(models, batch=32, size=224)
    models.add_argument(
        "--models", default="s", help="comma list of sets (s, m, b, all), hilovit classifiers and/or timm names"
    )
    models.add_argument(
        "--baseline",
        default=None,
        help="model the ratios refer to (None: Swin-T when measured, else the first model)",
    )
    models.add_argument("--channels-last", action="store_true", help="channels-last models and input")
    models.add_argument("--compile", action="store_true", help="torch.compile every model first")
    models.set_defaults(run=models_command)
    add_deploy_command(targets)
    _add_tune_command(subparsers)


def _add_tune_command(subparsers: argparse._SubParsersAction) -> None:
    tune = add_command(
        subparsers,
        "tune",
        help="sweep HiLo alpha/windows (and implementation choices) of a LITv2 model or HiLo layer",
    )
    tune.add_argument("target", help="a LITv2 model name (litv2_s, ...) or 'hilo' for one layer (--dim, --heads)")
    _add_run_arguments(tune, repeats=5)
    add_flags(
        tune,
        "img_size",
        "batch_size",
        "output",
        img_size_help="image side (model; None: 224) or map side (layer; None: 14)",
        batch_size_help="images per batch (None: 8 for a model, 64 for a layer)",
        output_help="JSON file for the chosen builder kwargs (None: tuned_<target>.json)",
    )
    tune.add_argument("--mode", choices=MODES, default="forward", help="pass to time")
    tune.add_argument("--dim", type=POSITIVE_INT, default=768, help="layer channels (hilo only)")
    tune.add_argument("--heads", type=POSITIVE_INT, default=12, help="layer heads (hilo only)")
    tune.add_argument("--alpha", type=comma_list(float), default=(0.5, 0.75, 0.9, 1.0), help="alphas to try")
    tune.add_argument("--windows", type=comma_list(int), default=(1, 2), help="windows to try in every HiLo stage")
    tune.add_argument(
        "--sdpa", type=comma_list(str), default=(), help=f"SDPA backends to try: {', '.join(SDPA_BACKENDS)}"
    )
    tune.add_argument("--try-channels-last", action="store_true", help="also try channels-last (models)")
    tune.add_argument("--try-compile", action="store_true", help="also try torch.compile")
    tune.add_argument(
        "--min-hifi-heads", type=NON_NEGATIVE_INT, default=0, help="Hi-Fi heads every windowed stage keeps"
    )
    tune.add_argument("--max-gmacs", type=NON_NEGATIVE_FLOAT, default=None, help="upper bound on GMACs per image")
    tune.set_defaults(run=tune_command)


def prepare_outputs(args: argparse.Namespace) -> None:
    """Check every output the command was given before measuring (folders made, matplotlib present), so a long
    measurement is never lost for want of a place to write it."""
    for path in (args.json, args.csv, getattr(args, "output", None)):
        prepare_output_file(path)
    if args.plots:
        if args.plots.exists() and not args.plots.is_dir():
            raise NotADirectoryError(f"--plots {args.plots} is a file: expected a folder")
        try:
            import matplotlib  # noqa: F401
        except ModuleNotFoundError as error:
            raise ValueError(f"--plots needs matplotlib ({error}): pip install 'hilovit[plot]'") from None
        args.plots.mkdir(parents=True, exist_ok=True)


def attention_settings(args: argparse.Namespace) -> AttentionSettings:
    return AttentionSettings(
        dim=args.dim,
        num_heads=args.heads,
        sizes=args.img_size,
        batches=args.batch_size,
        modes=args.mode,
        mechanisms=args.mechanisms,
        alphas=args.alpha,
        hilo_window=args.hilo_window,
        window=args.window,
        sr_ratio=args.sr_ratio,
        baseline=args.baseline,
        device=str(resolve_device(args.device)),
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
        sizes=args.img_size,
        batches=args.batch_size,
        modes=args.mode,
        baseline=args.baseline or default_baseline(models),
        device=str(resolve_device(args.device)),
        dtype=args.dtype,
        threads=args.threads,
        channels_last=args.channels_last,
        compile=args.compile,
        warmup=args.warmup,
        repeats=args.repeats,
        breakdown=args.breakdown,
    )


def _settings(make: Callable[[argparse.Namespace], Any], args: argparse.Namespace) -> Any:
    """Settings from the arguments (a bad value is a ValueError), then the outputs checked, before measuring."""
    settings = make(args)
    prepare_outputs(args)
    return settings


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
        from hilovit.speed.plots import write_plots  # matplotlib: checked by prepare_outputs

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
        size=args.img_size or (14 if layer else 224),
        batch=args.batch_size or (64 if layer else 8),
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
        device=str(resolve_device(args.device)),
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
    out = args.output or Path(f"tuned_{settings.target}.json")
    write_config(out, result.chosen)
    console.print(f"fastest within the constraints: {result.chosen.name}; builder kwargs written to {out}")
    return result
