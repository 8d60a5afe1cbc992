"""HiLo against an explicit loop-over-windows reference, the seed formulation, and its documented edge cases."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from hilovit import HiLo, HiLo2d
from hilovit.attention.flops import count_flops
from hilovit.attention.reference import HiLoReference


def loop_reference(m: HiLo, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """HiLo written out plainly: zero-pad, loop over windows and heads, explicit softmax, crop."""
    B, _, C = x.shape
    ws, hd = m.ws, m.head_dim
    Hp, Wp = math.ceil(H / ws) * ws, math.ceil(W / ws) * ws
    padded = F.pad(x.reshape(B, H, W, C), (0, 0, 0, Wp - W, 0, Hp - H))
    windows = [(i, j) for i in range(0, Hp, ws) for j in range(0, Wp, ws)]
    branches = []
    if m.h_heads:
        qkv = m.h_qkv(padded).reshape(B, Hp, Wp, 3, m.h_heads, hd)
        rows = []
        for i in range(0, Hp, ws):
            row = []
            for j in range(0, Wp, ws):
                q, k, v = qkv[:, i : i + ws, j : j + ws].reshape(B, ws * ws, 3, m.h_heads, hd).unbind(2)
                heads = [
                    torch.softmax(q[:, :, h] @ k[:, :, h].transpose(1, 2) * m.scale, -1) @ v[:, :, h]
                    for h in range(m.h_heads)
                ]
                row.append(torch.cat(heads, -1).reshape(B, ws, ws, m.h_dim))
            rows.append(torch.cat(row, 2))
        branches.append(m.h_proj(torch.cat(rows, 1)))
    if m.l_heads:
        q = m.l_q(padded).reshape(B, Hp * Wp, m.l_heads, hd)
        pooled = torch.stack([padded[:, i : i + ws, j : j + ws].mean((1, 2)) for i, j in windows], 1)
        k, v = m.l_kv(pooled).reshape(B, len(windows), 2, m.l_heads, hd).unbind(2)
        heads = [
            torch.softmax(q[:, :, h] @ k[:, :, h].transpose(1, 2) * m.scale, -1) @ v[:, :, h] for h in range(m.l_heads)
        ]
        branches.append(m.l_proj(torch.cat(heads, -1).reshape(B, Hp, Wp, m.l_dim)))
    return torch.cat(branches, -1)[:, :H, :W].reshape(B, H * W, C)


def make(dim=32, heads=4, ws=2, alpha=0.5, seed=0, cls=HiLo, **kwargs):
    torch.manual_seed(seed)
    m = cls(dim, heads, qkv_bias=True, window_size=ws, alpha=alpha, **kwargs).eval()
    with torch.no_grad():  # non-trivial biases so that padded tokens matter
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return m


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    H=st.integers(1, 40),
    W=st.integers(1, 40),
    ws=st.integers(1, 8),
    heads=st.sampled_from([1, 2, 3, 4, 6]),
    alpha=st.sampled_from([0.0, 0.25, 0.5, 0.9, 1.0]),
    batch=st.integers(1, 2),
)
def test_matches_loop_reference_forward_and_gradients(H, W, ws, heads, alpha, batch):
    """In float64, so that parameter gradients summed over up to 3200 tokens carry no float32 rounding noise."""
    m = make(dim=heads * 4, heads=heads, ws=ws, alpha=alpha).double()
    x = torch.randn(batch, H * W, heads * 4, dtype=torch.float64, requires_grad=True)
    out = m(x, H, W)
    expected = loop_reference(m, x, H, W)
    torch.testing.assert_close(out, expected, atol=1e-10, rtol=1e-8)
    grad_out = torch.randn_like(out)
    got = torch.autograd.grad(out, [x, *m.parameters()], grad_out)
    want = torch.autograd.grad(expected, [x, *m.parameters()], grad_out)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize(("ws", "H", "W", "batch"), [(2, 14, 14, 3), (2, 9, 13, 1), (3, 10, 8, 2), (5, 11, 6, 1)])
def test_packed_window_path_matches_the_reference(monkeypatch, ws, H, W, batch):
    """The CUDA path (windows packed into ~64-token sequences, block-diagonal mask), forced on CPU;
    window counts that do not fill the last sequence included."""
    m = make(dim=24, heads=3, ws=ws, alpha=0.34)
    assert m.window_mask is not None and "window_mask" not in m.state_dict()
    monkeypatch.setattr(HiLo, "_packs_windows", lambda self, x: True)
    x = torch.randn(batch, H * W, 24, requires_grad=True)
    out = m(x, H, W)
    expected = loop_reference(m, x, H, W)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)
    (got,) = torch.autograd.grad(out.square().sum(), x)
    (want,) = torch.autograd.grad(expected.square().sum(), x)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_large_windows_are_not_packed():
    assert make(dim=16, heads=2, ws=8).window_mask is None  # 64 tokens fill a tile alone
    assert make(dim=16, heads=2, ws=2, alpha=1.0).window_mask is None  # no Hi-Fi heads


@pytest.mark.parametrize(
    ("dim", "heads", "ws", "alpha", "H", "W"),
    [
        (96, 12, 2, 0.9, 14, 14),
        (64, 8, 4, 0.5, 16, 8),
        (32, 4, 1, 0.5, 7, 5),
        (48, 6, 3, 0.75, 9, 12),
    ],
)
def test_seed_state_dict_loads_strictly_and_matches_on_divisible_sizes(dim, heads, ws, alpha, H, W):
    seed = make(dim, heads, ws, alpha, cls=HiLoReference)
    m = HiLo(dim, heads, qkv_bias=True, window_size=ws, alpha=alpha).eval()
    m.load_state_dict(seed.state_dict(), strict=True)
    x = torch.randn(3, H * W, dim)
    assert (m(x, H, W) - seed(x, H, W)).abs().max() <= 1e-5


def test_parameter_names_follow_the_official_code():
    assert set(HiLo(64, 8, qkv_bias=True).state_dict()) == {
        f"{name}.{p}" for name in ("l_q", "l_kv", "l_proj", "h_qkv", "h_proj") for p in ("weight", "bias")
    }
    shapes = {k: tuple(v.shape) for k, v in HiLo(128, 4, window_size=2, alpha=0.9).state_dict().items()}
    assert shapes["l_q.weight"] == (96, 128) and shapes["l_kv.weight"] == (192, 128)
    assert shapes["h_qkv.weight"] == (96, 128) and shapes["h_proj.weight"] == (32, 32)


def test_token_and_nchw_forms_agree_and_share_weights():
    m = make(dim=32, heads=4, ws=3, alpha=0.5)
    m2d = HiLo2d(32, 4, qkv_bias=True, window_size=3, alpha=0.5).eval()
    m2d.load_state_dict(m.state_dict(), strict=True)
    x = torch.randn(2, 32, 7, 11)
    out = m2d(x)
    assert out.shape == x.shape
    expected = m(x.flatten(2).transpose(1, 2), 7, 11).transpose(1, 2).reshape(2, 32, 7, 11)
    torch.testing.assert_close(out, expected)


def test_padding_is_zero_tokens_on_the_right_and_bottom_then_crop():
    m = make(dim=16, heads=2, ws=4, alpha=0.5)
    x = torch.randn(2, 5, 7, 16)
    padded = F.pad(x, (0, 0, 0, 1, 0, 3))  # 8 x 8
    full = m(padded.reshape(2, 64, 16), 8, 8).reshape(2, 8, 8, 16)
    torch.testing.assert_close(m(x.reshape(2, 35, 16), 5, 7).reshape(2, 5, 7, 16), full[:, :5, :7])


def test_map_smaller_than_the_window():
    m = make(dim=16, heads=2, ws=8, alpha=0.5)
    x = torch.randn(1, 3 * 2, 16)
    torch.testing.assert_close(m(x, 3, 2), loop_reference(m, x, 3, 2))


def test_window_size_one_is_plain_global_multi_head_attention():
    m = make(dim=32, heads=4, ws=1, alpha=0.3)
    assert (m.l_heads, m.h_heads) == (4, 0) and m.h_qkv is None
    x = torch.randn(2, 20, 32)
    q = m.l_q(x).view(2, 20, 4, 8).transpose(1, 2)
    k, v = m.l_kv(x).view(2, 20, 2, 4, 8).permute(2, 0, 3, 1, 4)
    attn = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(8), -1) @ v
    torch.testing.assert_close(m(x, 4, 5), m.l_proj(attn.transpose(1, 2).reshape(2, 20, 32)))


@pytest.mark.parametrize(
    ("heads", "alpha", "lofi", "hifi"),
    [
        (4, 0.0, 0, 4),
        (4, 1.0, 4, 0),
        (3, 0.3, 0, 3),
        (2, 0.9, 1, 1),
        (12, 0.9, 10, 2),
    ],
)
def test_head_split_and_missing_branches_have_no_parameters(heads, alpha, lofi, hifi):
    m = make(dim=heads * 4, heads=heads, ws=2, alpha=alpha)
    assert (m.l_heads, m.h_heads) == (lofi, hifi)
    assert (m.l_q is not None) == (lofi > 0) and (m.h_qkv is not None) == (hifi > 0)
    params = {name.split(".")[0] for name, _ in m.named_parameters()}
    assert params == ({"l_q", "l_kv", "l_proj"} if lofi else set()) | ({"h_qkv", "h_proj"} if hifi else set())
    x = torch.randn(2, 15, heads * 4)
    torch.testing.assert_close(m(x, 3, 5), loop_reference(m, x, 3, 5), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("batch", [0, 1])
def test_batch_zero_and_one(batch):
    m = make()
    assert m(torch.randn(batch, 6 * 5, 32), 6, 5).shape == (batch, 30, 32)


def test_non_contiguous_input():
    m = make()
    x = torch.randn(32, 2, 6 * 4).permute(1, 2, 0)  # (2, 24, 32), channels strided
    assert not x.is_contiguous()
    torch.testing.assert_close(m(x, 6, 4), m(x.contiguous(), 6, 4))


def test_dropout_only_in_training_and_eval_is_deterministic():
    m = make(attn_drop=0.5, proj_drop=0.5)
    x = torch.randn(2, 64, 32)
    torch.testing.assert_close(m(x, 8, 8), m(x, 8, 8))
    m.train()
    torch.manual_seed(1)
    a = m(x, 8, 8)
    torch.manual_seed(2)
    b = m(x, 8, 8)
    assert not torch.allclose(a, b)
    assert (a == 0).float().mean() > 0.3  # proj_drop zeroes about half of the outputs
    m.proj_drop.p = 0.0
    torch.manual_seed(3)
    assert not torch.allclose(m(x, 8, 8), m.eval()(x, 8, 8))  # attention dropout alone changes the output


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast(dtype):
    m = make(dim=64, heads=8, ws=2, alpha=0.5)
    x = torch.randn(2, 7 * 9, 64)
    with torch.autocast("cpu", dtype=dtype):
        out = m(x, 7, 9)
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), m(x, 7, 9), atol=5e-2, rtol=5e-2)


def test_torch_compile_fullgraph():
    m = make(dim=32, heads=4, ws=2, alpha=0.5)
    compiled = torch.compile(m, fullgraph=True, backend="aot_eager")
    for H, W in [(6, 4), (5, 7)]:
        x = torch.randn(2, H * W, 32)
        torch.testing.assert_close(compiled(x, H, W), m(x, H, W))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"dim": 30, "num_heads": 4}, ValueError, "dim=30 must be divisible by num_heads=4"),
        ({"dim": 32, "alpha": 1.5}, ValueError, r"alpha .* must be in \[0, 1\], got 1.5"),
        ({"dim": 32, "alpha": -0.1}, ValueError, "alpha"),
        ({"dim": 32, "window_size": 0}, ValueError, "window_size must be >= 1, got 0"),
        ({"dim": 32, "window_size": 2.0}, TypeError, "window_size must be an int"),
        ({"dim": 32, "num_heads": 0}, ValueError, "num_heads must be >= 1"),
        ({"dim": 32, "alpha": "0.5"}, TypeError, r"alpha .* must be a number in \[0, 1\], got '0.5' \(str\)"),
        ({"dim": 32, "attn_drop": 1.5}, ValueError, r"attn_drop must be in \[0, 1\), got 1.5"),
        ({"dim": 32, "proj_drop": -0.1}, ValueError, r"proj_drop must be in \[0, 1\), got -0.1"),
        ({"dim": 32, "attn_drop": None}, TypeError, r"attn_drop must be a number in \[0, 1\), got None"),
    ],
)
def test_bad_configs(kwargs, error, match):
    with pytest.raises(error, match=match):
        HiLo(**kwargs)


@pytest.mark.parametrize(
    ("x", "H", "W", "error", "match"),
    [
        (torch.randn(2, 30, 32), 5, 5, ValueError, "N=30 tokens for H=5, W=5"),
        (torch.randn(2, 5, 6, 32), 5, 6, ValueError, r"\(B, N, C\), got a 4-d tensor"),
        (torch.randn(2, 30, 16), 5, 6, ValueError, "built for dim=32 channels, got 16"),
        (torch.ones(2, 30, 32, dtype=torch.int64), 5, 6, TypeError, "floating-point input .* float32, got int64"),
        (torch.randn(2, 0, 32), 0, 5, ValueError, "H, W >= 1"),
        (torch.randn(1, 35, 32), 5.0, 7.0, TypeError, r"H and W must be ints, got H=5.0, W=7.0"),
        (torch.randn(1, 35, 32), True, 35, TypeError, "H and W must be ints"),
    ],
)
def test_bad_inputs(x, H, W, error, match):
    with pytest.raises(error, match=match):
        make()(x, H, W)


def test_hilo2d_bad_inputs():
    m = make(cls=HiLo2d)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\) map, got a 3-d tensor"):
        m(torch.randn(2, 32, 9))
    with pytest.raises(ValueError, match="built for dim=32 channels, got 8"):
        m(torch.randn(2, 8, 3, 3))
    with pytest.raises(ValueError, match="HiLo2d needs H, W >= 1, got H=0, W=0"):
        m(torch.randn(1, 32, 0, 0))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("cls", [HiLo, HiLo2d])
def test_input_dtype_must_match_the_weights_outside_autocast(cls, dtype):
    m = make(cls=cls)
    x = torch.randn(1, 30, 32) if cls is HiLo else torch.randn(1, 32, 5, 6)
    args = (5, 6) if cls is HiLo else ()
    name = str(dtype).removeprefix("torch.")
    with pytest.raises(TypeError, match=rf"{cls.__name__} expects .* dtype float32, got {name}: cast the input"):
        m(x.to(dtype), *args)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast casts any floating dtype but float64
        if dtype == torch.float64:
            with pytest.raises(TypeError, match="got float64"):
                m(x.to(dtype), *args)
        else:
            assert m(x.to(dtype), *args).dtype == torch.bfloat16
    assert m.to(dtype)(x.to(dtype), *args).dtype == dtype  # a layer of that dtype takes it


def test_flops_reject_bad_sizes():
    with pytest.raises(ValueError, match=r"HiLo.flops needs H, W >= 1, got H=-3, W=5"):
        make().flops(-3, 5)
    with pytest.raises(TypeError, match=r"HiLo.flops: H and W must be ints, got H=3.5"):
        make().flops(3.5, 5)


def seed_flops(m: HiLo, H: int, W: int) -> int:
    """The seed's `flops` formula, term by term."""
    Hp, Wp = m.ws * math.ceil(H / m.ws), m.ws * math.ceil(W / m.ws)
    Np, nW, L = Hp * Wp, (Hp // m.ws) * (Wp // m.ws), m.ws * m.ws
    hifi = Np * m.dim * m.h_dim * 3 + nW * L * L * m.h_dim * 2 + Np * m.h_dim * m.h_dim
    lofi = Np * m.dim * m.l_dim + nW * m.dim * m.l_dim * 2 + Np * m.l_dim * nW * 2 + Np * m.l_dim * m.l_dim
    return hifi + lofi


@pytest.mark.parametrize(
    ("dim", "heads", "ws", "alpha", "H", "W"),
    [
        (768, 12, 2, 0.9, 14, 14),
        (64, 8, 1, 0.5, 7, 7),
        (32, 4, 3, 0.5, 7, 10),
        (32, 4, 2, 0.0, 5, 5),
    ],
)
def test_flops_follow_the_seed_formula_and_the_flop_counter(dim, heads, ws, alpha, H, W):
    m = HiLo(dim, heads, window_size=ws, alpha=alpha)
    assert m.flops(H, W) == seed_flops(m, H, W)
    x = torch.randn(1, H * W, dim)
    assert count_flops(lambda: m(x, H, W)) == 2 * m.flops(H, W)  # the counter reports 2 FLOPs per MAC


def test_paper_single_layer_setting_flops():
    # N=196, C=768, Hi-Fi 128 channels, Lo-Fi 640, 49 windows / pooled keys.
    hifi = 196 * 768 * 384 + 49 * 16 * 128 * 2 + 196 * 128 * 128
    lofi = 196 * 768 * 640 + 49 * 768 * 1280 + 196 * 640 * 49 * 2 + 196 * 640 * 640
    assert HiLo(768, 12, window_size=2, alpha=0.9).flops(14, 14) == hifi + lofi == 298_296_320


@pytest.mark.parametrize("qk_scale", [None, 0.0, 0])
def test_a_zero_or_missing_qk_scale_means_the_default_as_in_the_official_code(qk_scale):
    # official: `self.scale = qk_scale or head_dim ** -0.5`
    assert make(dim=32, heads=4, ws=2, alpha=0.5, qk_scale=qk_scale).scale == 8**-0.5
    assert make(dim=32, heads=4, ws=2, alpha=0.5, qk_scale=0.25).scale == 0.25
