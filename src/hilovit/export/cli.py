"""The `hilovit export onnx|torch-export MODEL` commands: build (and load) a model, export it, print the parity."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import timm
import torch
from torch import nn

from hilovit import dense as dense_models
from hilovit.attention import HiLo2d
from hilovit.export.capture import ExportError
from hilovit.export.onnx import DEFAULT_OPSET, to_onnx
from hilovit.export.parity import DEFAULT_TOLERANCE, ExportResult, ParityError
from hilovit.export.torch_export import to_torch_export
from hilovit.models import LITv2Backbone, litv2_config, load_official

BACKBONE_SUFFIX = "_backbone"
MODEL_SIZES = "224x224,160x96,97x131"
LAYER_SIZES = "14x14,10x6,13x17"
MODEL_HELP = (
    "hilo (a HiLo2d layer, see --dim/--heads), a LITv2 classifier (litv2_nano, litv2_tiny, litv2_s, litv2_m, "
    "litv2_b), a LITv2 backbone (litv2_s_backbone, or a classifier name with --backbone), or a dense model "
    "<builder>_<variant> with builder semantic_fpn_litv2, retinanet_litv2, fasterrcnn_litv2 or maskrcnn_litv2 and "
    "variant nano, tiny, s, m or b (detectors: with --backbone, their LITv2 + FPN feature extractor)"
)
DENSE_PATTERN = re.compile(
    r"(?P<builder>semantic_fpn_litv2|retinanet_litv2|fasterrcnn_litv2|maskrcnn_litv2)_(?P<variant>\w+)"
)


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"224x224,97x131"`` -> ``[(224, 224), (97, 131)]`` (height x width)."""
    sizes = []
    for item in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", item)
        if match is None or min(int(match[1]), int(match[2])) < 2:
            raise argparse.ArgumentTypeError(f"expected sizes like 224x224,97x131 (sides >= 2), got {item!r}")
        sizes.append((int(match[1]), int(match[2])))
    return sizes


def build_model(args: argparse.Namespace) -> tuple[nn.Module, int]:
    """The model named by ``args.model`` and the channels of its input."""
    name = args.model
    if name == "hilo":
        if args.checkpoint is not None:
            raise ValueError(f"--checkpoint {args.checkpoint} applies to LITv2 models, not to the hilo layer")
        return HiLo2d(args.dim, args.heads, qkv_bias=True, window_size=args.window, alpha=args.alpha), args.dim
    backbone = args.backbone or name.endswith(BACKBONE_SUFFIX)
    arch = name.removesuffix(BACKBONE_SUFFIX)
    dense = DENSE_PATTERN.fullmatch(arch)
    model: nn.Module
    if dense:
        builder = getattr(dense_models, dense["builder"])
        classes = {} if args.num_classes is None else {"num_classes": args.num_classes}
        model = builder(dense["variant"], backbone_weights=args.checkpoint, **classes)
        return (model.backbone if backbone else model), 3
    if not arch.startswith("litv2_") or arch not in timm.list_models("litv2_*"):
        raise ValueError(f"unknown model {name!r}; expected {MODEL_HELP}")
    if backbone:
        model = LITv2Backbone(**litv2_config(arch.removesuffix("_384")))
    else:
        model = timm.create_model(arch, num_classes=1000 if args.num_classes is None else args.num_classes)
    if args.checkpoint is not None:
        load_official(model, args.checkpoint, allow_missing=("norm",) if backbone else ())
    return model, 3


def export_command(args: argparse.Namespace) -> ExportResult:
    """Build the model, export it in ``args.format`` and print the file and its parity report."""
    torch.manual_seed(args.seed)
    try:
        model, channels = build_model(args)
        sizes = args.sizes or parse_sizes(LAYER_SIZES if args.model == "hilo" else MODEL_SIZES)
        example = torch.randn(args.batch, channels, *sizes[0])
        settings = dict(sizes=sizes, check=not args.no_check, check_batch=args.check_batch, tolerance=args.tolerance)
        if args.format == "onnx":
            result = to_onnx(model, example, args.output, opset=args.opset, **settings)
        else:
            result = to_torch_export(model, example, args.output, **settings)
    except (ExportError, ParityError, ValueError, TypeError, OSError) as error:  # OSError: e.g. no --checkpoint file
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from error
    print(f"wrote {result.path} ({result.path.stat().st_size / 2**20:.1f} MiB)")
    if result.parity is not None:
        print("\n".join(result.parity.lines()))
    return result


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add `export onnx` and `export torch-export` to the `hilovit` command's subparsers."""
    export = subparsers.add_parser("export", help="ONNX / torch.export files with dynamic batch and image size")
    formats = export.add_subparsers(dest="format", required=True)
    for name, suffix, helptext in (
        ("onnx", ".onnx", "ONNX file, checked with onnxruntime"),
        ("torch-export", ".pt2", "torch.export program (.pt2), checked after loading it back"),
    ):
        parser = formats.add_parser(name, help=helptext)
        parser.add_argument("model", help=MODEL_HELP)
        parser.add_argument("--backbone", action="store_true", help="the LITv2 dense-prediction backbone")
        parser.add_argument("--checkpoint", type=Path, default=None, help="official LITv2 weights to load first")
        parser.add_argument(
            "--sizes",
            type=parse_sizes,
            default=None,
            help=f"HxW list: the first is the example traced, all are checked (default {MODEL_SIZES} for "
            f"models, {LAYER_SIZES} for hilo: LITv2-S stage-3 maps)",
        )
        parser.add_argument("--batch", type=int, default=2, help="batch of the example traced (default 2)")
        parser.add_argument("--check-batch", type=int, default=1, help="batch of the parity check (default 1)")
        parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE, help="max abs diff allowed")
        parser.add_argument("--no-check", action="store_true", help="skip the parity check")
        parser.add_argument("--output", type=Path, default=None, help=f"file to write (default <model>{suffix})")
        parser.add_argument("--num-classes", type=int, default=None, help="classifier / segmentation classes")
        parser.add_argument("--dim", type=int, default=384, help="hilo: channels (default 384, LITv2-S stage 3)")
        parser.add_argument("--heads", type=int, default=12, help="hilo: attention heads (default 12)")
        parser.add_argument("--window", type=int, default=2, help="hilo: window size (default 2)")
        parser.add_argument("--alpha", type=float, default=0.9, help="hilo: share of Lo-Fi heads (default 0.9)")
        parser.add_argument("--seed", type=int, default=0, help="seed of the random weights and inputs")
        if name == "onnx":
            parser.add_argument(
                "--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})"
            )
        parser.set_defaults(run=export_command)
