"""The `hilovit export onnx|torch-export MODEL` commands: build (and load) a model, export it, print the parity."""

from __future__ import annotations

import argparse
import re
from functools import partial
from pathlib import Path

import torch
from torch import nn

from hilovit.attention import HiLo2d
from hilovit.dense.backbone import load_backbone_weights
from hilovit.export.onnx import DEFAULT_OPSET, to_onnx
from hilovit.export.parity import DEFAULT_CHECK_BATCHES, DEFAULT_TOLERANCE, ExportResult, ParityError
from hilovit.export.torch_export import to_torch_export
from hilovit.grammar import NON_NEGATIVE_FLOAT, POSITIVE_INT, POSITIVE_INTS, add_command, add_flags
from hilovit.models import create_model, create_model_from_file, load_official, read_arch
from hilovit.models.registry import model_entry

LAYER = "hilo"
MODEL_SIZES = "224x224,160x96,97x131"
LAYER_SIZES = "14x14,10x6,13x17"
MODEL_HELP = (
    f"'{LAYER}' (a HiLo2d layer, see --dim/--heads) or a model name (`hilovit models` lists them): a LITv2 "
    "classifier, a backbone litv2_<v>_backbone, or a dense model (with --backbone: its LITv2 + FPN feature "
    "extractor, the part of a detector that exports)"
)


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"224x224,97x131"`` -> ``[(224, 224), (97, 131)]`` (height x width); ``"224"`` is ``224x224``."""
    sizes = []
    for item in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", item)
        if match is None or min(int(match[1]), int(match[2] or match[1])) < 2:
            raise argparse.ArgumentTypeError(f"expected sizes like 224x224,97x131 or 224 (sides >= 2), got {item!r}")
        sizes.append((int(match[1]), int(match[2] or match[1])))
    return sizes


def _named_model(args: argparse.Namespace) -> nn.Module:
    """The registered model ``args.model`` (its backbone with ``--backbone``), with ``--checkpoint``'s weights."""
    name, checkpoint = args.model, args.checkpoint
    entry = model_entry(name)  # an unknown name fails here, with the close matches
    dense = entry.task in ("detect", "segment")
    if args.backbone and not (dense or entry.task == "classification"):
        raise ValueError(f"--backbone applies to LITv2 classifiers and dense models, not to {name} ({entry.task})")
    classes = {} if args.num_classes is None else {"num_classes": args.num_classes}
    recorded = read_arch(checkpoint) if checkpoint is not None and not args.backbone else None
    if recorded is not None:  # a hilovit file: the model it records, with its settings
        if recorded["model_name"] != name:
            raise ValueError(f"--checkpoint {checkpoint} holds a {recorded['model_name']}, not a {name}")
        model = create_model_from_file(checkpoint, **classes)
    elif dense:
        model = create_model(name, backbone_weights=checkpoint, **classes)
    elif args.backbone or entry.task == "backbone":
        model = create_model(f"{name.removesuffix('_384')}_backbone" if args.backbone else name)
        if checkpoint is not None:
            load_backbone_weights(model, checkpoint)
    else:
        model = create_model(name, **classes)
        if checkpoint is not None:
            load_official(model, checkpoint)
    return model.backbone if args.backbone and dense else model


def build_export_model(args: argparse.Namespace) -> tuple[nn.Module, int]:
    """The model named by ``args.model`` and the channels of its input."""
    if args.model == LAYER:
        if args.checkpoint is not None:
            raise ValueError(f"--checkpoint {args.checkpoint} applies to models, not to the {LAYER} layer")
        return HiLo2d(args.dim, args.heads, qkv_bias=True, window_size=args.window, alpha=args.alpha), args.dim
    model = _named_model(args)
    channels = getattr(getattr(model, "patch_embed", None), "proj", None)
    return model, channels.in_channels if isinstance(channels, nn.Conv2d) else 3


def export_command(args: argparse.Namespace) -> ExportResult:
    """Build the model, export it in ``args.format`` and print the file and its parity report."""
    torch.manual_seed(args.seed)
    model, channels = build_export_model(args)
    sizes = args.img_size or parse_sizes(LAYER_SIZES if args.model == LAYER else MODEL_SIZES)
    example = torch.randn(args.batch_size, channels, *sizes[0])
    settings = dict(sizes=sizes, check=not args.no_check, check_batches=args.check_batch, tolerance=args.tolerance)
    export = partial(to_onnx, opset=args.opset) if args.format == "onnx" else to_torch_export
    try:
        result = export(model, example, args.output, **settings)
    except ParityError as error:  # the per-size table to stdout; the error itself is one line
        print("\n".join(error.report.lines()))
        raise
    print(f"wrote {result.path} ({result.path.stat().st_size / 2**20:.1f} MiB)")
    if result.parity is not None:
        print("\n".join(result.parity.lines()))
    return result


def add_export_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add `export onnx` and `export torch-export` to the `hilovit` command's subparsers."""
    export = add_command(subparsers, "export", help="ONNX / torch.export files with dynamic batch and image size")
    formats = export.add_subparsers(dest="format", required=True)
    for name, suffix, helptext in (
        ("onnx", ".onnx", "ONNX file, checked with onnxruntime"),
        ("torch-export", ".pt2", "torch.export program (.pt2), checked after loading it back"),
    ):
        parser = add_command(formats, name, help=helptext)
        parser.add_argument("model", help=MODEL_HELP)
        parser.add_argument("--backbone", action="store_true", help="the LITv2 (+ FPN) feature extractor")
        parser.add_argument(
            "--checkpoint",
            type=Path,
            default=None,
            help="weights to load first: a hilovit file (its recorded model is rebuilt) or official LITv2 weights",
        )
        add_flags(
            parser,
            "img_size",
            "batch_size",
            "output",
            "seed",
            img_size_type=parse_sizes,
            img_size_help=f"HxW comma list: the first is traced, all are checked (None: {MODEL_SIZES} for models, "
            f"{LAYER_SIZES} for {LAYER}, LITv2-S stage-3 maps)",
            batch_size_default=2,
            batch_size_help="batch of the example traced",
            output_help=f"file to write (None: <model>{suffix})",
            seed_help="seed of the random weights and inputs",
        )
        parser.add_argument(
            "--check-batch",
            type=POSITIVE_INTS,
            default=DEFAULT_CHECK_BATCHES,
            help="batch(es) of the parity check, comma list",
        )
        parser.add_argument("--tolerance", type=NON_NEGATIVE_FLOAT, default=DEFAULT_TOLERANCE, help="max abs diff")
        parser.add_argument("--no-check", action="store_true", help="skip the parity check")
        parser.add_argument("--num-classes", type=POSITIVE_INT, default=None, help="classifier / segmentation classes")
        parser.add_argument("--dim", type=POSITIVE_INT, default=384, help=f"{LAYER}: channels (LITv2-S stage 3)")
        parser.add_argument("--heads", type=POSITIVE_INT, default=12, help=f"{LAYER}: attention heads")
        parser.add_argument("--window", type=POSITIVE_INT, default=2, help=f"{LAYER}: window size")
        parser.add_argument("--alpha", type=float, default=0.9, help=f"{LAYER}: share of Lo-Fi heads")
        if name == "onnx":
            parser.add_argument("--opset", type=POSITIVE_INT, default=DEFAULT_OPSET, help="ONNX opset")
        parser.set_defaults(run=export_command)
