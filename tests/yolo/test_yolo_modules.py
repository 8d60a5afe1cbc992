"""The HiLo modules alone: shapes at any map size, channels, gradients, errors."""

from __future__ import annotations

import inspect

import pytest
import torch

pytest.importorskip("ultralytics")

from ultralytics.nn.modules.block import Bottleneck, C2f, C3k
from ultralytics.nn.modules.transformer import AIFI

from hilovit.yolo.aifi import AIFIHiLo
from hilovit.yolo.modules import C2fHiLo, C2HiLo, C3k2HiLo, HiLoBlock, HiLoLayer, default_heads


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
        (C2fHiLo(32, 40, n=2, shortcut=True), 40),
        (AIFIHiLo(32, 64, 4), 32),
        (AIFIHiLo(32, 64, 4, normalize_before=True, pos_embed=True), 32),
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


def test_c2fhilo_is_c2f_with_a_hilo_unit_after_each_bottleneck() -> None:
    plain, hilo = C2f(32, 64, n=2, shortcut=True), C2fHiLo(32, 64, n=2, shortcut=True)
    assert [type(block[0]) for block in hilo.m] == [Bottleneck, Bottleneck]
    assert all(isinstance(block[1], HiLoLayer) for block in hilo.m)
    for ours, theirs in zip(hilo.m, plain.m, strict=True):  # C2f's own bottlenecks (3x3 kernels, e=1.0)
        assert ours[0].cv1.conv.weight.shape == theirs.cv1.conv.weight.shape and ours[0].add == theirs.add
    assert hilo.cv1.conv.weight.shape == plain.cv1.conv.weight.shape


def test_aifihilo_takes_aifis_arguments_and_keeps_the_channels() -> None:
    ours = list(inspect.signature(AIFIHiLo).parameters)
    assert ours[:6] == list(inspect.signature(AIFI).parameters)
    torch.manual_seed(0)
    layer = AIFIHiLo(64, 128, 8).eval()
    assert (layer.attn.l_heads, layer.attn.h_heads, layer.attn.ws) == (7, 1, 2)  # LITv2's alpha 0.9, window 2
    assert layer.ffn.fc1.out_features == 128 and layer.ffn.dwconv.dwconv.groups == 128  # LITv2's ConvFFN
    x = torch.randn(2, 64, 5, 7)
    out = layer(x)
    assert out.shape == x.shape
    per_token = out.permute(0, 2, 3, 1)  # post-norm, as AIFI: every token leaves the last LayerNorm
    torch.testing.assert_close(per_token.mean(-1), torch.zeros(2, 5, 7), atol=1e-5, rtol=0)


def test_aifihilo_position_embedding_is_aifis_sincos() -> None:
    torch.manual_seed(0)
    plain = AIFIHiLo(32, 64, 4, normalize_before=True).eval()
    with_pos = AIFIHiLo(32, 64, 4, normalize_before=True, pos_embed=True).eval()
    with_pos.load_state_dict(plain.state_dict())  # no parameters of its own
    x = torch.randn(1, 32, 4, 6)
    pos = AIFI.build_2d_sincos_position_embedding(6, 4, 32, like=x).reshape(1, 4, 6, 32).permute(0, 3, 1, 2)
    shifted = x + plain.attn.forward_hwc(plain.norm1(x.permute(0, 2, 3, 1)) + pos.permute(0, 2, 3, 1)).permute(
        0, 3, 1, 2
    )
    expected = shifted + plain.ffn(plain.norm2(shifted.permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
    torch.testing.assert_close(with_pos(x), expected)
    assert not torch.allclose(plain(x), expected)
    with pytest.raises(ValueError, match="pos_embed=True needs channels divisible by 4, got c1=34"):
        AIFIHiLo(34, 64, 2, pos_embed=True)


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
    ("module", "channels"),
    [(HiLoBlock(64, 64), 64), (HiLoBlock(48, 64), 48), (HiLoLayer(64), 64), (AIFIHiLo(64, 128), 64)],
)
def test_channel_mismatch_names_the_expected_channels(module: torch.nn.Module, channels: int) -> None:
    name = type(module).__name__
    with pytest.raises(
        ValueError, match=rf"{name} expects {channels} input channels, got 32 \(input shape \(1, 32, 8, 8\)\)"
    ):
        module(torch.randn(1, 32, 8, 8))
