"""HiLo3d against a loop-over-windows reference (float64), the 2-D layer on T = 1, its forms, FLOPs and errors."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from hilovit import HiLo, HiLo3d, HiLo3dChannelsFirst
from hilovit.attention.flops import count_flops


def _attend(m: HiLo3d, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return torch.softmax(q @ k.transpose(-2, -1) * m.scale, -1) @ v


def loop_reference(m: HiLo3d, x: torch.Tensor, T: int, H: int, W: int) -> torch.Tensor:
    """HiLo3d written out plainly: zero-pad, loop over windows, explicit softmax, pooled keys by a mean, crop."""
    B, _, C = x.shape
    t, h, w = m.window
    Tp, Hp, Wp = (math.ceil(n / s) * s for n, s in zip((T, H, W), m.window, strict=True))
    padded = F.pad(x.reshape(B, T, H, W, C), (0, 0, 0, Wp - W, 0, Hp - H, 0, Tp - T))
    starts = list(itertools.product(range(0, Tp, t), range(0, Hp, h), range(0, Wp, w)))
    branches = []
    if m.h_heads:
        qkv = m.h_qkv(padded).reshape(B, Tp, Hp, Wp, 3, m.h_heads, m.head_dim)
        out = torch.zeros(B, Tp, Hp, Wp, m.h_dim, dtype=x.dtype)
        for i, j, k in starts:
            block = qkv[:, i : i + t, j : j + h, k : k + w].reshape(B, t * h * w, 3, m.h_heads, m.head_dim)
            q, key, v = block.permute(2, 0, 3, 1, 4).unbind(0)
            out[:, i : i + t, j : j + h, k : k + w] = _attend(m, q, key, v).transpose(1, 2).reshape(B, t, h, w, -1)
        branches.append(m.h_proj(out))
    if m.l_heads:
        pooled = torch.stack(
            [padded[:, i : i + t, j : j + h, k : k + w].mean(dim=(1, 2, 3)) for i, j, k in starts], dim=1
        )
        q = m.l_q(padded).reshape(B, -1, m.l_heads, m.head_dim).transpose(1, 2)
        key, v = m.l_kv(pooled).reshape(B, -1, 2, m.l_heads, m.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        out = _attend(m, q, key, v).transpose(1, 2).reshape(B, Tp, Hp, Wp, m.l_dim)
        branches.append(m.l_proj(out))
    return torch.cat(branches, -1)[:, :T, :H, :W].reshape(B, T * H * W, C)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    T=st.integers(1, 7),
    H=st.integers(1, 9),
    W=st.integers(1, 9),
    window=st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4)),
    heads=st.sampled_from([1, 2, 4]),
    alpha=st.sampled_from([0.0, 0.5, 0.75, 1.0]),
)
def test_matches_the_loop_reference_on_any_grid(T, H, W, window, heads, alpha):
    torch.manual_seed(0)
    m = HiLo3d(8 * heads // 2 or 4, heads, qkv_bias=True, window_size=window, alpha=alpha).double()
    x = torch.randn(2, T * H * W, m.dim, dtype=torch.float64, requires_grad=True)
    out, expected = m(x, T, H, W), loop_reference(m, x, T, H, W)
    torch.testing.assert_close(out, expected)
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, [x, *m.parameters()], grad)
    want = torch.autograd.grad(expected, [x, *m.parameters()], grad)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(("ws", "alpha", "H", "W"), [(2, 0.5, 6, 8), (3, 0.75, 7, 5), (1, 0.5, 4, 3), (4, 0.0, 9, 9)])
def test_window_1_s_s_on_one_frame_equals_2d_hilo_with_the_same_weights(ws, alpha, H, W):
    torch.manual_seed(0)
    flat = HiLo(32, 4, qkv_bias=True, window_size=ws, alpha=alpha)
    volume = HiLo3d(32, 4, qkv_bias=True, window_size=(1, ws, ws), alpha=alpha)
    volume.load_state_dict(flat.state_dict(), strict=True)
    x = torch.randn(3, H * W, 32)
    torch.testing.assert_close(volume(x, 1, H, W), flat(x, H, W), rtol=1e-5, atol=1e-6)
    assert volume.flops(1, H, W) == flat.flops(H, W)


def test_padding_is_zero_tokens_at_the_back_bottom_right_then_cropped():
    torch.manual_seed(0)
    m = HiLo3d(16, 2, window_size=(2, 3, 2), alpha=0.5).double()
    x = torch.randn(1, 3, 4, 5, 16, dtype=torch.float64)
    padded = F.pad(x, (0, 0, 0, 1, 0, 2, 0, 1))  # to 4 x 6 x 6
    whole = m(padded.reshape(1, -1, 16), 4, 6, 6).reshape(1, 4, 6, 6, 16)[:, :3, :4, :5]
    torch.testing.assert_close(m(x.reshape(1, -1, 16), 3, 4, 5).reshape(1, 3, 4, 5, 16), whole)


def test_channels_first_form_has_the_same_weights_and_output():
    torch.manual_seed(0)
    tokens = HiLo3d(16, 4, window_size=(2, 2, 2), alpha=0.5)
    volume = HiLo3dChannelsFirst(16, 4, window_size=(2, 2, 2), alpha=0.5)
    volume.load_state_dict(tokens.state_dict(), strict=True)
    x = torch.randn(2, 16, 3, 5, 4)
    expected = tokens(x.flatten(2).transpose(1, 2), 3, 5, 4).transpose(1, 2).reshape(x.shape)
    torch.testing.assert_close(volume(x), expected)


def test_window_of_one_token_is_global_attention_and_int_window_is_a_cube():
    assert HiLo3d(16, 4, window_size=1, alpha=0.25).l_heads == 4
    assert HiLo3d(16, 4, window_size=2).window == (2, 2, 2)
    assert set(HiLo3d(16, 4, window_size=(1, 2, 2)).state_dict()) == set(HiLo(16, 4).state_dict())


def test_packed_window_path_matches(monkeypatch):
    torch.manual_seed(0)
    m = HiLo3d(16, 4, window_size=(2, 2, 2), alpha=0.5)
    x = torch.randn(2, 3 * 5 * 6, 16)
    expected = m(x, 3, 5, 6)
    monkeypatch.setattr(HiLo3d, "_packs_windows", lambda self, x: True)
    torch.testing.assert_close(m(x, 3, 5, 6), expected)


@pytest.mark.parametrize(
    ("window", "alpha", "grid"), [((2, 2, 2), 0.5, (4, 6, 6)), ((1, 1, 1), 0.5, (3, 4, 4)), ((2, 3, 3), 0.0, (3, 5, 7))]
)
def test_flops_agree_with_the_flop_counter(window, alpha, grid):
    m = HiLo3d(32, 4, window_size=window, alpha=alpha)
    x = torch.randn(1, math.prod(grid), 32)
    assert count_flops(lambda: m(x, *grid)) == 2 * m.flops(*grid)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"window_size": (2, 2)}, ValueError, r"window_size must be an int or a \(t, h, w\) triple, got \(2, 2\)"),
        ({"window_size": (2, 0, 2)}, ValueError, r"window_size must be >= 1, got \(2, 0, 2\)"),
        ({"window_size": (2, 2.0, 2)}, TypeError, "window_size must be an int, got 2.0"),
        ({"num_heads": 3}, ValueError, "dim=32 must be divisible by num_heads=3"),
        ({"alpha": 2}, ValueError, r"alpha .* must be in \[0, 1\], got 2"),
        ({"alpha": "0.5"}, TypeError, r"alpha .* must be a number in \[0, 1\], got '0.5'"),
        ({"attn_drop": 1.0}, ValueError, r"attn_drop must be in \[0, 1\), got 1.0"),
    ],
)
def test_bad_configs(kwargs, error, match):
    with pytest.raises(error, match=match):
        HiLo3d(**{"dim": 32, "num_heads": 4, **kwargs})


def test_bad_inputs():
    m = HiLo3d(32, 4)
    with pytest.raises(ValueError, match="N=30 tokens for T=2, H=3, W=4"):
        m(torch.randn(1, 30, 32), 2, 3, 4)
    with pytest.raises(ValueError, match=r"\(B, N, C\), got a 4-d tensor"):
        m(torch.randn(1, 2, 12, 32), 2, 3, 4)
    with pytest.raises(ValueError, match="HiLo3d was built for dim=32 channels, got 16"):
        m(torch.randn(1, 24, 16), 2, 3, 4)
    with pytest.raises(TypeError, match=r"floating-point input with the model's dtype float32, got int64"):
        m(torch.ones(1, 24, 32, dtype=torch.int64), 2, 3, 4)
    with pytest.raises(TypeError, match=r"HiLo3d expects .* dtype float32, got float64"):
        m(torch.randn(1, 24, 32, dtype=torch.float64), 2, 3, 4)
    with pytest.raises(TypeError, match=r"T, H and W must be ints, got T=2.0, H=3, W=4"):
        m(torch.randn(1, 24, 32), 2.0, 3, 4)
    with pytest.raises(ValueError, match=r"HiLo3d.flops needs T, H, W >= 1, got T=0"):
        m.flops(0, 3, 4)
    volume = HiLo3dChannelsFirst(32, 4)
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\) volume, got a 4-d tensor"):
        volume(torch.randn(1, 32, 3, 4))
    with pytest.raises(ValueError, match="built for dim=32 channels, got 8"):
        volume(torch.randn(1, 8, 2, 3, 4))
    with pytest.raises(ValueError, match="HiLo3dChannelsFirst needs T, H, W >= 1, got T=0, H=3, W=4"):
        volume(torch.randn(1, 32, 0, 3, 4))
