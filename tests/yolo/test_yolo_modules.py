"""The HiLo modules alone: shapes at any map size, channels, gradients, errors."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("ultralytics")

from ultralytics.nn.modules.block import Bottleneck, C3k

from hilovit.yolo.modules import C2HiLo, C3k2HiLo, HiLoBlock, HiLoLayer, default_heads


@pytest.mark.parametrize("size", [(1, 1), (5, 9), (13, 7), (8, 8)])
def test_modules_keep_any_map_size(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 32, *size)
    for module, channels in (
        (HiLoLayer(32), 32),
        (HiLoBlock(32, 48, n=2), 48),
        (C3k2HiLo(32, 40, n=1), 40),
        (C3k2HiLo(32, 24, n=2, c3k=True), 24),
        (C2HiLo(32, 32), 32),
    ):
        out = module.eval()(x)
        assert out.shape == (2, channels, *size), type(module).__name__
        assert torch.isfinite(out).all()


def test_layer_is_residual_and_trains() -> None:
    torch.manual_seed(0)
    layer = HiLoLayer(32, window_size=2, alpha=0.5)
    x = torch.randn(2, 32, 6, 10, requires_grad=True)
    layer(x).square().mean().backward()
    assert x.grad is not None and all(p.grad is not None for p in layer.parameters())
    assert layer.attn.l_heads == 1 and layer.attn.h_heads == 1  # default_heads(32) == 2, alpha 0.5


def test_block_projects_only_when_channels_change() -> None:
    assert isinstance(HiLoBlock(64, 64).proj, torch.nn.Identity)
    assert HiLoBlock(32, 64).proj.conv.in_channels == 32


def test_c3k2hilo_inner_blocks_follow_c3k() -> None:
    assert isinstance(C3k2HiLo(64, 64, c3k=False).m[0][0], Bottleneck)
    assert isinstance(C3k2HiLo(64, 64, c3k=True).m[0][0], C3k)
    assert isinstance(C3k2HiLo(64, 64).m[0][1], HiLoLayer)


def test_default_heads() -> None:
    assert [default_heads(c) for c in (16, 32, 64, 128, 256)] == [2, 2, 2, 4, 8]


def test_errors_name_the_bad_value() -> None:
    with pytest.raises(ValueError, match="c1=64 must equal c2=32"):
        C2HiLo(64, 32)
    with pytest.raises(ValueError, match="divisible"):
        HiLoLayer(36, num_heads=8)
    with pytest.raises(ValueError, match="alpha"):
        HiLoBlock(32, 32, alpha=1.5)


@pytest.mark.parametrize(
    ("module", "channels"), [(HiLoBlock(64, 64), 64), (HiLoBlock(48, 64), 48), (HiLoLayer(64), 64)]
)
def test_channel_mismatch_names_the_expected_channels(module: torch.nn.Module, channels: int) -> None:
    name = type(module).__name__
    with pytest.raises(
        ValueError, match=rf"{name} expects {channels} input channels, got 32 \(input shape \(1, 32, 8, 8\)\)"
    ):
        module(torch.randn(1, 32, 8, 8))
