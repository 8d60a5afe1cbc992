"""LITv2 against timm's models of the same size, and against the official code's structure.

One run on one device: every model gets the same batch, resolution and dtype and is timed interleaved
(``hilovit.speed.time_interleaved``), so ratios come from a single measurement. Nothing is downloaded:
timm models are built with random weights.

``official_litv2_s`` is the official classification code's structure written plainly (``(B, N, C)``
tokens, the depthwise convolution between transposes, the explicit-softmax HiLo of
``hilovit.attention.reference``, DTM with ``torchvision.ops.deform_conv2d``), loaded with the same
weights as hilovit's ``litv2_s`` (DTM offsets randomised so that the deformable sampling matters); the
two outputs are checked equal in float32 before anything is timed.

With ``--cpu-groups`` the script instead times LITv2-S's CPU inference parts (``hilovit.cpu_inference``): the
same weights with its fast ops (fused oneDNN kernels, explicit short-key attention) off, with image grouping off
(or at other group budgets), and both off, against the official structure.

With ``--breakdown`` every model is also profiled after the timing and its time is printed by kind of work
(``hilovit.speed.breakdown``: matmul, attention, normalization, casts, copies, ...; kernel time on CUDA).

With ``--dtm`` the script instead times the Deformable Token Merging implementations at LITv2's
shapes, forward and forward+backward.

Examples:
    python benchmarks/bench_models.py --device cpu --batch 32 --threads 2
    python benchmarks/bench_models.py --device cuda --dtype bfloat16 --batch 64 --models s,m,b
    python benchmarks/bench_models.py --dtm --batch 32
    python benchmarks/bench_models.py --device cpu --batch 32 --threads 2 --cpu-groups 4,16,64
    python benchmarks/bench_models.py --device cuda --dtype bfloat16 --batch 64 --breakdown
"""

from __future__ import annotations

import argparse
import copy
import json
from dataclasses import asdict, dataclass
from functools import partial

import timm
import torch
from rich.console import Console
from torch import Tensor, nn

from hilovit import cpu_inference
from hilovit.attention.reference import HiLoReference
from hilovit.models import litv2_config  # importing hilovit.models registers the litv2_* models with timm
from hilovit.models.deform import DeformablePatchMerging
from hilovit.models.litv2 import CPU_GROUP_BYTES
from hilovit.speed import environment, fixed_threads, model_bench, results_table, time_interleaved
from hilovit.speed.breakdown import print_breakdowns
from hilovit.speed.measure import DTYPES, autocast_runner, timed_step
from hilovit.speed.report import point_tables
from hilovit.speed.results_files import Report

OFFICIAL = "official_litv2_s"
OFFICIAL_LABEL = "LITv2-S (official structure)"
# (name of the other model, what it is) for the throughput ratios the lead checks.
TARGETS = (
    (OFFICIAL, "the official structure"),
    ("swin_tiny_patch4_window7_224", "Swin-T"),
    ("convnext_tiny", "ConvNeXt-T"),
)
CHECK_TOLERANCE = 1e-4


# --------------------------------------------------------------------------------------------------
# The official classification structure, written plainly


class OfficialDWConv(nn.Module):
    """3x3 depthwise conv on (B, N, C) tokens, between two transposes."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, x: Tensor, H: int, W: int) -> Tensor:
        B, _, C = x.shape
        return self.dwconv(x.transpose(1, 2).reshape(B, C, H, W)).flatten(2).transpose(1, 2)


class OfficialDWMlp(nn.Module):
    """ConvFFN on (B, N, C) tokens: fc1, depthwise conv, GELU, fc2."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = OfficialDWConv(hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor, H: int, W: int) -> Tensor:
        return self.fc2(self.act(self.dwconv(self.fc1(x), H, W)))


class OfficialBlock(nn.Module):
    """``x + HiLo(norm1(x))`` (when the stage has attention), then ``x + DWMlp(norm2(x))``."""

    def __init__(self, dim: int, heads: int, window: int, alpha: float, mlp_ratio: float) -> None:
        super().__init__()
        if window > 0:
            self.norm1 = nn.LayerNorm(dim)
            self.attn = HiLoReference(dim, heads, qkv_bias=True, window_size=window, alpha=alpha)
        self.has_attn = window > 0
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = OfficialDWMlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor, H: int, W: int) -> Tensor:
        if self.has_attn:
            x = x + self.attn(self.norm1(x), H, W)
        return x + self.mlp(self.norm2(x), H, W)


class OfficialStage(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, window: int, alpha: float, merge: bool) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(OfficialBlock(dim, heads, window, alpha, 4.0) for _ in range(depth))
        self.downsample = DeformablePatchMerging(dim, 2 * dim, impl="torchvision") if merge else None

    def forward(self, x: Tensor, H: int, W: int) -> Tensor:
        for block in self.blocks:
            x = block(x, H, W)
        if self.downsample is None:
            return x
        B, _, C = x.shape
        x = self.downsample(x.reshape(B, H, W, C).permute(0, 3, 1, 2).contiguous())
        return x.flatten(2).transpose(1, 2)


class OfficialLITv2(nn.Module):
    """The official classification LITv2 (eval-mode computation), with the official state-dict keys."""

    def __init__(
        self,
        embed_dim: int,
        depths: tuple[int, ...],
        num_heads: tuple[int, ...],
        num_classes: int = 1000,
        alpha: float = 0.9,
        local_ws: tuple[int, ...] = (0, 0, 2, 1),
    ) -> None:
        super().__init__()
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, embed_dim, 4, stride=4)
        self.patch_embed.norm = nn.LayerNorm(embed_dim)
        last = len(depths) - 1
        self.layers = nn.ModuleList(
            OfficialStage(embed_dim * 2**i, depth, num_heads[i], local_ws[i], alpha, merge=i < last)
            for i, depth in enumerate(depths)
        )
        self.norm = nn.LayerNorm(embed_dim * 2**last)
        self.head = nn.Linear(embed_dim * 2**last, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.patch_embed.proj(x)
        H, W = x.shape[2:]
        x = self.patch_embed.norm(x.flatten(2).transpose(1, 2))
        for layer in self.layers:
            x = layer(x, H, W)
            H, W = H // 2, W // 2
        return self.head(self.norm(x).mean(dim=1))


def official_structure(arch: str, num_classes: int = 1000) -> OfficialLITv2:
    """The official structure of a named hilovit architecture (``litv2_s``, ...), randomly initialised."""
    config = litv2_config(arch)
    return OfficialLITv2(config["embed_dim"], config["depths"], config["num_heads"], num_classes)


def official_twin(model: nn.Module, arch: str) -> OfficialLITv2:
    """The official structure of `arch` holding `model`'s weights (strict load)."""
    twin = official_structure(arch, model.num_classes)
    twin.load_state_dict(model.state_dict(), strict=True)
    return twin


def randomise_dtm(model: nn.Module, generator: torch.Generator) -> None:
    """Non-zero DTM offsets (a few pixels) and BatchNorm statistics, as trained weights have."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, DeformablePatchMerging):
                offset = module.dconv.conv_offset
                fan_in = offset.weight[0].numel()
                offset.weight.normal_(0, 2.0 / fan_in**0.5, generator=generator)
                offset.bias.normal_(0, 0.5, generator=generator)
                norm = module.norm_layer
                norm.running_mean.normal_(0, 0.1, generator=generator)
                norm.running_var.uniform_(0.5, 2.0, generator=generator)


def check_official(model: nn.Module, twin: nn.Module, x: Tensor) -> float:
    """Max abs difference of the two float32 outputs; raises AssertionError above the tolerance."""
    with torch.inference_mode():
        diff = (model(x).float() - twin(x).float()).abs().max().item()
    if diff > CHECK_TOLERANCE:
        raise AssertionError(f"hilovit LITv2 differs from the official structure by {diff:.2e} > {CHECK_TOLERANCE}")
    return diff


# --------------------------------------------------------------------------------------------------
# Models: hilovit.speed.model_bench, plus the official structure


def resolve_models(spec: str) -> list[str]:
    """``s,m`` / ``all`` / timm names / ``official_litv2_s``; the ``s`` set adds the official structure
    right after LITv2-S."""
    names = model_bench.resolve_models(spec, extra=(OFFICIAL,))
    wants_official = any(item.strip() in ("s", "all") for item in spec.split(","))
    if wants_official and OFFICIAL not in names and "litv2_s" in names:
        names.insert(names.index("litv2_s") + 1, OFFICIAL)
    return names


def build_models(names: list[str], size: int) -> tuple[dict[str, tuple[str, nn.Module]], float | None]:
    """Name -> (label, model) in order; the official twin checked against litv2_s first."""
    models = model_bench.build_models([name for name in names if name != OFFICIAL])
    diff = None
    if OFFICIAL in names:
        generator = torch.Generator().manual_seed(0)
        source = models["litv2_s"][1] if "litv2_s" in models else timm.create_model("litv2_s")
        randomise_dtm(source.eval(), generator)
        twin = official_twin(source, "litv2_s").eval()
        diff = check_official(source, twin, torch.randn(2, 3, size, size, generator=generator))
        models[OFFICIAL] = (OFFICIAL_LABEL, twin)
    return {name: models[name] for name in names}, diff


def time_models(
    args: argparse.Namespace,
    device: torch.device,
    models: dict[str, tuple[str, nn.Module]],
    baseline: str,
    console: Console,
) -> Report:
    """Time `models` (name -> (label, module), in order) interleaved at the command line's settings and print
    the table, ratios over `baseline`."""
    settings = model_bench.ModelSettings(
        models=tuple(models),
        sizes=(args.size,),
        batches=(args.batch,),
        baseline=baseline,
        device=str(device),
        dtype=args.dtype,
        threads=args.threads,
        channels_last=args.channels_last,
        compile=args.compile,
        warmup=args.warmup,
        repeats=args.repeats,
        breakdown=args.breakdown,
    )
    report = model_bench.bench_models(settings, console, models)
    for table in point_tables(report.rows, models[baseline][0], f"{args.dtype}: "):
        console.print(table)
    print_breakdowns(report.breakdowns, console)
    return report


def bench_models(args: argparse.Namespace, device: torch.device, dtype: torch.dtype, console: Console) -> dict:
    names = resolve_models(args.models)
    models, diff = build_models(names, args.size)
    if diff is not None:
        console.print(
            f"official-structure check: max |LITv2-S - official structure| = {diff:.2e} "
            f"(float32, batch 2, tolerance {CHECK_TOLERANCE:.0e})"
        )
    baseline = args.baseline or model_bench.default_baseline(names)
    report = time_models(args, device, models, baseline, console)
    console.print(
        "GMACs: LITv2 model.flops() (the official count); counted: torch.utils.flop_counter / 2. "
        "p50/p90 = latency of one batch; spread = IQR / median."
    )
    speed = {row.name: row.images_per_s for row in report.rows}
    ratios = {}
    if speed.get("litv2_s"):
        for other, what in TARGETS:
            if speed.get(other):
                ratios[other] = speed["litv2_s"] / speed[other]
                console.print(f"LITv2-S throughput / {what}: {ratios[other]:.2f}x")
    return {
        "rows": [asdict(row) for row in report.rows],
        "breakdowns": [asdict(breakdown) for breakdown in report.breakdowns],
        "official_check_max_abs_diff": diff,
        "litv2_s_ratios": ratios,
        "baseline": baseline,
    }


# --------------------------------------------------------------------------------------------------
# What hilovit's CPU inference parts are worth


class WithStandardOps(nn.Module):
    """Runs the wrapped model with hilovit's CPU inference ops (fused kernels, explicit attention) switched off."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        with cpu_inference.standard_ops():
            return self.model(x)

    def flops(self, height: int, width: int) -> int:
        return self.model.flops(height, width)


def with_group_bytes(model: nn.Module, group_bytes: int | None) -> nn.Module:
    for stage in model.layers:
        stage.cpu_group_bytes = group_bytes
    return model


def cpu_part_models(group_mib: list[int]) -> dict[str, tuple[str, nn.Module]]:
    """LITv2-S (one set of weights) with each CPU inference part on or off, and its official structure."""
    generator = torch.Generator().manual_seed(0)
    source = timm.create_model("litv2_s").eval()
    randomise_dtm(source, generator)
    default_mib = CPU_GROUP_BYTES // 2**20
    models = {
        "default": (f"LITv2-S (fast ops, groups of {default_mib} MiB)", source),
        "ungrouped": ("LITv2-S, whole batch at once", with_group_bytes(copy.deepcopy(source), None)),
        "standard_ops": ("LITv2-S, standard ops", WithStandardOps(copy.deepcopy(source))),
        "plain": (
            "LITv2-S, standard ops, whole batch",
            WithStandardOps(with_group_bytes(copy.deepcopy(source), None)),
        ),
    }
    for mib in group_mib:
        if mib != default_mib:
            models[f"groups_{mib}"] = (
                f"LITv2-S, groups of {mib} MiB",
                with_group_bytes(copy.deepcopy(source), mib * 2**20),
            )
    models[OFFICIAL] = (OFFICIAL_LABEL, official_twin(source, "litv2_s").eval())
    return models


def bench_cpu_parts(args: argparse.Namespace, device: torch.device, dtype: torch.dtype, console: Console) -> dict:
    if device.type != "cpu":
        raise ValueError(f"--cpu-groups measures CPU inference, got --device {device}")
    report = time_models(args, device, cpu_part_models(args.cpu_groups), OFFICIAL, console)
    return {
        "rows": [asdict(row) for row in report.rows],
        "breakdowns": [asdict(breakdown) for breakdown in report.breakdowns],
        "baseline": OFFICIAL,
    }


# --------------------------------------------------------------------------------------------------
# Deformable Token Merging implementations


@dataclass(frozen=True)
class DTMRow:
    shape: str
    mode: str
    times_ms: dict[str, float]
    speedup: float


def dtm_shapes(size: int) -> list[tuple[int, int]]:
    """(channels, side) of LITv2-S's three DTM inputs at image size `size`."""
    dim = litv2_config("litv2_s")["embed_dim"]
    return [(dim * 2**i, size // 4 // 2**i) for i in range(3)]


def bench_dtm(args: argparse.Namespace, device: torch.device, dtype: torch.dtype, console: Console) -> dict:
    impls = ("gather", "torchvision")
    generator = torch.Generator().manual_seed(0)
    rows = []
    for channels, side in dtm_shapes(args.size):
        modules = {impl: DeformablePatchMerging(channels, 2 * channels, impl=impl) for impl in impls}
        randomise_dtm(modules["gather"], generator)
        modules["torchvision"].load_state_dict(modules["gather"].state_dict())
        # channels-last NCHW, as LITv2's (B, H, W, C) tokens hand it over
        x = torch.randn(args.batch, side, side, channels, device=device).permute(0, 3, 1, 2)
        for mode in ("forward", "forward+backward"):
            train = mode != "forward"
            calls = {}
            for impl, module in modules.items():
                module.to(device).train(train)
                inp = x.detach().requires_grad_(train)
                calls[impl] = timed_step(autocast_runner(partial(module, inp), device, dtype), train)
            timings = time_interleaved(
                calls, device=device, warmup=args.warmup, repeats=args.repeats, inference=not train
            )
            times = {impl: t.median_s * 1e3 for impl, t in timings.items()}
            rows.append(
                DTMRow(
                    f"{channels}->{2 * channels}, {side}x{side}, B={args.batch}",
                    mode,
                    times,
                    times["torchvision"] / times["gather"],
                )
            )
    title = f"Deformable Token Merging (DTM module: offsets, deformable conv, BN, GELU), {args.dtype}"
    columns = ("input", "pass", *(f"{impl} ms" for impl in impls), "gather speed-up")
    cells = ((r.shape, r.mode, *(f"{r.times_ms[i]:.1f}" for i in impls), f"{r.speedup:.2f}x") for r in rows)
    table = results_table(title, columns, cells)
    console.print(table)
    return {"dtm": [asdict(r) for r in rows]}


def mib_list(text: str) -> list[int]:
    """``4,16,64`` -> [4, 16, 64]: positive whole MiB."""
    try:
        values = [int(item) for item in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected a comma list of positive whole MiB such as 4,16,64, got {text!r}")
    return values


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--dtype",
        choices=DTYPES,
        default=None,
        help="autocast dtype; float32 (no autocast) on CPU and bfloat16 on GPU by default",
    )
    parser.add_argument("--batch", type=int, default=None, help="32 on CPU, 64 on GPU by default")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: torch's)")
    parser.add_argument("--channels-last", action="store_true", help="channels-last models and input")
    parser.add_argument("--compile", action="store_true", help="torch.compile every model first")
    parser.add_argument(
        "--models",
        default="s",
        help="comma list of sets (s, m, b, all) and/or timm names; s = LITv2-S, its official "
        "structure, Swin-T, PVTv2-B2, ConvNeXt-T, ResNet-50",
    )
    parser.add_argument(
        "--baseline", default=None, help="model the ratios refer to (default: Swin-T when measured, else the first)"
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--dtm", action="store_true", help="time the DTM implementations instead of models")
    parser.add_argument(
        "--cpu-groups",
        default=None,
        type=mib_list,
        metavar="MIB,...",
        help="instead of models, time LITv2-S with its CPU inference parts (fast ops, image groups) off in "
        "turn and with these group budgets in MiB, against the official structure",
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="after timing, profile each model (3 calls) and print its time by kind of work",
    )
    parser.add_argument("--json", default=None, help="also write the results and environment to this file")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    args.dtype = args.dtype or ("float32" if device.type == "cpu" else "bfloat16")
    args.batch = args.batch or (32 if device.type == "cpu" else 64)
    dtype = DTYPES[args.dtype]
    console = Console(width=200)
    with fixed_threads(args.threads):
        env = environment(device, dtype)
        console.print("  ".join(f"{k}={v}" for k, v in env.items()))
        bench = bench_dtm if args.dtm else bench_cpu_parts if args.cpu_groups else bench_models
        try:
            results = {"environment": env, "args": vars(args), **bench(args, device, dtype, console)}
        except ValueError as error:  # an unknown model name, a bad setting
            raise SystemExit(f"bench_models.py: error: {error}") from error
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
