"""hilovit.speed.breakdown: operator times grouped by kind of work, and `--breakdown` on the bench commands."""

import json
import re

import pytest
import torch
from rich.console import Console
from torch import nn

from hilovit.speed.breakdown import (
    CATEGORIES,
    breakdown_table,
    op_category,
    print_breakdowns,
    time_breakdown,
)

TINY_MODELS = ["--img-size", "32", "--batch-size", "1", "--warmup", "0", "--repeats", "1", "--threads", "1"]


@pytest.mark.parametrize(
    ("chain", "expected"),
    [
        (["aten::addmm", "aten::linear"], "matmul"),
        (["aten::copy_", "aten::addmm", "aten::linear"], "matmul"),  # addmm's broadcast bias copy
        (["aten::copy_", "aten::_to_copy", "aten::to", "aten::linear"], "cast"),  # autocast's cast
        (["aten::copy_", "aten::clone", "aten::contiguous"], "copy"),
        (["aten::bmm", "aten::_scaled_dot_product_attention_math", "aten::scaled_dot_product_attention"], "attention"),
        (["aten::mkldnn_convolution", "aten::_convolution", "aten::convolution", "aten::conv2d"], "convolution"),
        (["torchvision::deform_conv2d"], "convolution"),
        (["mkldnn::_linear_pointwise"], "matmul"),
        (["aten::native_layer_norm", "aten::layer_norm"], "normalization"),
        (["aten::empty"], "other"),
        (["aten::empty", "autograd::engine::evaluate_function: AddmmBackward0"], "other"),
    ],
)
def test_events_are_attributed_through_their_callers(chain, expected):
    assert op_category(chain) == expected


class Block(nn.Module):
    def __init__(self, dim: int = 32) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.act = nn.GELU()

    def forward(self, x):
        q, k, v = self.act(self.qkv(self.norm(x))).view(x.shape[0], -1, 3, 4, 8).permute(2, 0, 3, 1, 4)
        return x + nn.functional.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(x.shape)


def test_a_block_is_split_into_its_kinds_of_work():
    block, x = Block().eval(), torch.randn(4, 64, 32)
    breakdown = time_breakdown(lambda: block(x), calls=2)
    assert breakdown.device == "cpu" and breakdown.calls == 2 and breakdown.wall_ms > 0
    assert tuple(breakdown.category_ms) == CATEGORIES
    for category in ("matmul", "attention", "normalization", "activation", "elementwise"):
        assert breakdown.category_ms[category] > 0, category
    assert breakdown.category_ms["convolution"] == 0 and breakdown.category_ms["cast"] == 0
    assert sum(breakdown.share(c) for c in CATEGORIES) == pytest.approx(1.0)
    assert sum(op.ms for op in breakdown.ops) == pytest.approx(breakdown.op_total_ms)
    assert [op.ms for op in breakdown.ops] == sorted((op.ms for op in breakdown.ops), reverse=True)
    assert {"aten::addmm", "aten::native_layer_norm"} <= {op.name for op in breakdown.ops}


def test_autocast_casts_are_their_own_kind():
    block, x = Block(), torch.randn(2, 64, 32)

    def run():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return block(x)

    breakdown = time_breakdown(run, calls=1, warmup=0)
    assert breakdown.category_ms["cast"] > 0
    assert any(op.category == "cast" and op.name == "aten::copy_" for op in breakdown.ops)


def test_a_training_step_is_profiled_with_its_backward():
    block, x = Block(), torch.randn(2, 64, 32)
    forward = time_breakdown(lambda: block(x).sum(), calls=1)
    step = time_breakdown(lambda: block(x).sum().backward(), calls=1, inference=False)
    weight_gradient = ("aten::mm", "matmul")  # the linear layer's backward; its forward is an addmm
    assert weight_gradient in {(op.name, op.category) for op in step.ops}
    assert weight_gradient not in {(op.name, op.category) for op in forward.ops}


def test_bad_call_counts_are_refused():
    with pytest.raises(ValueError, match="calls must be >= 1 and warmup >= 0, got calls=0"):
        time_breakdown(lambda: None, calls=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_breakdown_counts_kernel_time():
    layer, x = nn.Linear(256, 256).cuda(), torch.randn(512, 256, device="cuda")
    breakdown = time_breakdown(lambda: layer(x), "cuda", calls=3)
    assert breakdown.device == "cuda" and breakdown.category_ms["matmul"] > 0


def test_bench_models_breakdown_prints_and_writes_json(tmp_path, run):
    report = run(
        [
            *("bench", "models", "--models", "litv2_nano,resnet18", "--baseline", "resnet18", *TINY_MODELS),
            *("--breakdown", "--json", str(tmp_path / "m.json")),
        ]
    )
    (point_breakdown,) = report.breakdowns
    assert point_breakdown.point == report.rows[0].point
    nano, resnet = point_breakdown.by_label["litv2_nano"], point_breakdown.by_label["resnet18"]
    assert nano.category_ms["matmul"] > 0 and nano.category_ms["attention"] > 0
    assert resnet.category_ms["convolution"] > 0 and resnet.category_ms["attention"] == 0
    document = json.loads((tmp_path / "m.json").read_text())
    assert document["breakdowns"][0]["by_label"]["resnet18"]["category_ms"]["convolution"] > 0

    console = Console(width=200, record=True)
    print_breakdowns(report.breakdowns, console)
    text = console.export_text()
    assert "forward, batch 1, 32x32: operator time by kind of work" in text
    assert re.search(r"resnet18: aten::\w*conv\w* \[convolution\] \d+%", text)
    assert (
        breakdown_table(point_breakdown).row_count
        == len([c for c in CATEGORIES if nano.category_ms[c] > 0 or resnet.category_ms[c] > 0]) + 2
    )


def test_bench_attention_breakdown_covers_the_training_step(run):
    args = ["--dim", "16", "--heads", "2", "--batch-size", "1", "--img-size", "4", "--warmup", "0", "--repeats", "1"]
    options = ["--mechanisms", "msa", "--alpha", "0.5", "--mode", "both", "--breakdown"]
    report = run(["bench", "attention", *args, *options])
    assert [b.point.mode for b in report.breakdowns] == ["forward", "forward+backward"]
    forward, step = (b.by_label["MSA (ViT)"] for b in report.breakdowns)
    assert "aten::mm" in {op.name for op in step.ops} and "aten::mm" not in {op.name for op in forward.ops}
