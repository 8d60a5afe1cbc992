"""hilovit.cpu_inference: the fast ops equal the standard ones and run only in plain CPU inference, and LITv2's
grouped, fused CPU inference equals its standard whole-batch computation."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from hilovit import cpu_inference
from hilovit.models import LITv2

pytestmark = pytest.mark.skipif(not cpu_inference._ONEDNN, reason="this PyTorch build has no oneDNN")

SMALL = dict(embed_dim=16, depths=(1, 1, 2, 1), num_heads=(1, 2, 2, 4), alpha=0.5, drop_path_rate=0.0)


@pytest.mark.parametrize(
    ("shape", "bias", "view"),
    [
        ((7, 24), True, lambda x: x),
        ((2, 5, 3, 24), True, lambda x: x),
        ((2, 5, 3, 24), False, lambda x: x),
        ((2, 24, 5), True, lambda x: x.transpose(1, 2)),  # not contiguous
    ],
)
def test_linear_matches_eager(shape: tuple[int, ...], bias: bool, view: Callable) -> None:
    layer = nn.Linear(24, 40, bias=bias).eval()
    x = view(torch.randn(shape))
    with torch.inference_mode():
        assert cpu_inference.fusable(x, layer)
        torch.testing.assert_close(cpu_inference.linear(layer, x), layer(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("channels_last", [True, False])  # as LITv2's ConvFFN hands it over / plain NCHW
def test_depthwise_conv_gelu_matches_eager(approximate: str, channels_last: bool) -> None:
    conv = nn.Conv2d(32, 32, 3, padding=1, groups=32).eval()
    act = nn.GELU(approximate=approximate)
    x = torch.randn(2, 9, 7, 32).permute(0, 3, 1, 2) if channels_last else torch.randn(2, 32, 9, 7)
    with torch.inference_mode():
        fused = cpu_inference.conv2d_act(conv, act, x)
        torch.testing.assert_close(fused, act(conv(x)), atol=1e-5, rtol=1e-5)


def test_other_activations_run_the_modules() -> None:
    conv = nn.Conv2d(4, 4, 3, padding=1).eval()
    x = torch.randn(1, 4, 5, 5)
    with torch.inference_mode():
        torch.testing.assert_close(cpu_inference.conv2d_act(conv, nn.ReLU(), x), torch.relu(conv(x)))


def _train(layer: nn.Module) -> AbstractContextManager:
    layer.train()
    return nullcontext()


def _hooked(layer: nn.Module) -> AbstractContextManager:
    layer.register_forward_hook(lambda *_: None)
    return nullcontext()


@pytest.mark.parametrize(
    ("setup", "dtype"),
    [
        (lambda layer: torch.enable_grad(), torch.float32),
        (_train, torch.float32),
        (lambda layer: nullcontext(), torch.float64),
        (lambda layer: torch.autocast("cpu", dtype=torch.bfloat16), torch.float32),
        (lambda layer: FlopCounterMode(display=False), torch.float32),
        (lambda layer: cpu_inference.standard_ops(), torch.float32),
        (_hooked, torch.float32),
    ],
    ids=["grad", "train", "float64", "autocast", "flop-counter", "standard-ops", "hooked"],
)
def test_fused_kernels_stay_out_of_the_way(setup: Callable, dtype: torch.dtype) -> None:
    layer = nn.Linear(8, 8).eval().to(dtype)
    x = torch.randn(3, 8, dtype=dtype)
    with torch.no_grad():
        assert cpu_inference.fusable(x.float(), nn.Linear(8, 8).eval())  # the baseline the cases spoil
        with setup(layer):
            assert not cpu_inference.fusable(x, layer)


def test_image_groups() -> None:
    x = torch.randn(5, 2)
    assert [len(group) for group in cpu_inference.image_groups(x, 10, 25)] == [2, 2, 1]
    assert [len(group) for group in cpu_inference.image_groups(torch.randn(7, 2), 10, 50)] == [4, 3]  # not [5, 2]
    assert [len(group) for group in cpu_inference.image_groups(x, 10, 5)] == [1] * 5
    assert cpu_inference.image_groups(x, 10, 50) is None  # one group would hold the batch
    assert cpu_inference.image_groups(x, 10, None) is None


def test_litv2_cpu_inference_equals_the_eager_whole_batch() -> None:
    torch.manual_seed(0)
    model = LITv2(**SMALL, num_classes=5).eval()
    with torch.no_grad():  # non-zero DTM offsets, as trained weights have
        for stage in model.layers[:-1]:
            stage.downsample.dconv.conv_offset.bias.normal_(0, 0.5)
    images = torch.randn(5, 3, 45, 38)
    with torch.inference_mode(), cpu_inference.standard_ops():
        for stage in model.layers:
            stage.cpu_group_bytes = None
        expected = model(images)
    batches: list[int] = []
    for stage in model.layers:
        stage.cpu_group_bytes = 1  # one image per group
        stage.blocks.register_forward_pre_hook(lambda _, args: batches.append(args[0].shape[0]))
    with torch.inference_mode():
        actual = model(images)
    assert batches == [1] * 5 * len(model.layers)
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)


def test_hooks_on_inner_layers_still_fire() -> None:
    model = LITv2(**SMALL, num_classes=5).eval()
    seen = []
    model.layers[2].blocks[0].attn.l_q.register_forward_hook(lambda *_: seen.append("l_q"))
    model.layers[0].blocks[0].mlp.dwconv.dwconv.register_forward_hook(lambda *_: seen.append("dwconv"))
    with torch.inference_mode():
        model(torch.randn(1, 3, 32, 32))
    assert seen == ["dwconv", "l_q"]


def test_flop_counter_sees_every_layer_in_inference() -> None:
    model = LITv2(**SMALL, num_classes=5).eval()
    image = torch.randn(2, 3, 32, 32)
    counts = []
    for context in (nullcontext(), torch.inference_mode()):
        with context, FlopCounterMode(display=False) as counter:
            model(image)
        counts.append(counter.get_total_flops())
    assert counts[0] == counts[1] > 0


@pytest.mark.parametrize("keys", [4, 49, 100])  # explicit up to 64 keys, SDPA beyond
def test_attention_matches_sdpa(keys: int) -> None:
    module = nn.Identity().eval()
    q = torch.randn(2, 3, 17, 8)
    k, v = torch.randn(2, 2, 3, keys, 8).unbind(0)
    with torch.inference_mode():
        expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=0.3)
        torch.testing.assert_close(cpu_inference.attention(module, q, k, v, 0.3, 0.0), expected)


def _fake_cache(root: Path, index: int, kind: str, size: str) -> None:
    folder = root / f"index{index}"
    folder.mkdir(parents=True)
    (folder / "type").write_text(f"{kind}\n")
    (folder / "size").write_text(f"{size}\n")


def test_group_budget_is_half_the_last_level_cache(tmp_path: Path) -> None:
    for index, (kind, size) in enumerate(
        [("Data", "48K"), ("Instruction", "64M"), ("Unified", "2048K"), ("Unified", "32M")]
    ):
        _fake_cache(tmp_path, index, kind, size)
    assert cpu_inference.last_level_cache_bytes(tmp_path) == 32 * 2**20
    assert cpu_inference.default_group_bytes(tmp_path) == 16 * 2**20


def test_group_budget_falls_back_where_the_cache_is_unknown(tmp_path: Path) -> None:
    _fake_cache(tmp_path, 0, "Unified", "lots")
    assert cpu_inference.last_level_cache_bytes(tmp_path) is None
    assert cpu_inference.default_group_bytes(tmp_path / "missing") == cpu_inference.FALLBACK_GROUP_BYTES


def test_flop_counter_counts_the_fused_kernels_as_the_ops_they_replace() -> None:
    layer, conv = nn.Linear(24, 40).eval(), nn.Conv2d(8, 8, 3, padding=1, groups=8).eval()
    x, image = torch.randn(2, 5, 24), torch.randn(1, 8, 9, 7)
    counts = []
    for fast in (False, True):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            if fast:
                torch.ops.mkldnn._linear_pointwise(x, layer.weight, layer.bias, "none", [], "")
                torch.ops.mkldnn._convolution_pointwise(
                    image, conv.weight, conv.bias, conv.padding, conv.stride, conv.dilation, conv.groups, "gelu", [],
                    "none",
                )  # fmt: skip
            else:
                layer(x), conv(image)
        counts.append(counter.get_total_flops())
    assert counts[0] == counts[1] == 2 * 10 * 24 * 40 + 2 * 63 * 8 * 9
