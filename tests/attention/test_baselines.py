"""The comparison mechanisms against naive references (explicit softmax, explicit loops over windows)."""

import pytest
import torch
import torch.nn.functional as F

from hilovit.attention.baselines import (
    GlobalAttention,
    SpatialReductionAttention,
    TimmPVTv2Attention,
    TimmSwinAttention,
    WindowAttention,
    shifted_window_mask,
)
from hilovit.attention.flops import count_flops

DIM, HEADS = 16, 2


def naive_attention(q, k, v, allowed=None):
    """softmax(q k^T / sqrt(d)) v on (heads, n, d) tensors; `allowed` (n, n) masks pairs out."""
    logits = q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5
    if allowed is not None:
        logits = logits.masked_fill(~allowed, float("-inf"))
    return logits.softmax(-1) @ v


def split_heads(t):
    return t.view(t.shape[0], HEADS, -1).transpose(0, 1)


def naive_global(layer, x, keys_from=None):
    """One image (N, C): every token attends to all of `keys_from` (default: the tokens themselves)."""
    if isinstance(layer, GlobalAttention):
        q, k, v = layer.qkv(x).chunk(3, dim=-1)
    else:
        q = layer.q(x)
        k, v = layer.kv(keys_from).chunk(2, dim=-1)
    out = naive_attention(split_heads(q), split_heads(k), split_heads(v))
    return layer.proj(out.transpose(0, 1).reshape(x.shape[0], -1))


def naive_sra(layer, x, H, W):
    s = layer.sr_ratio
    pooled = torch.stack(
        [
            torch.einsum("oikl,kli->o", layer.sr.weight, x.view(H, W, -1)[i * s : i * s + s, j * s : j * s + s])
            + layer.sr.bias
            for i in range(H // s)
            for j in range(W // s)
        ]
    )
    return naive_global(layer, x, layer.norm(pooled))


def naive_window(layer, x, H, W):
    """Explicit loop over windows; shifted windows by rolling and labelling the regions one by one."""
    s, shift = layer.window_size, layer.shift_size
    Hp, Wp = -(-H // s) * s, -(-W // s) * s
    grid = F.pad(x.view(H, W, -1), (0, 0, 0, Wp - W, 0, Hp - H))
    grid = torch.roll(grid, (-shift, -shift), (0, 1))
    region = torch.zeros(Hp, Wp, dtype=torch.long)
    if shift:
        for r in range(Hp):
            for c in range(Wp):
                # region of the unshifted position in Swin's 3 x 3 split of the shifted map
                band = lambda p, n: 0 if p < n - s else (1 if p < n - shift else 2)  # noqa: E731
                region[r, c] = 3 * band(r, Hp) + band(c, Wp)
    out = torch.zeros_like(grid)
    for i in range(0, Hp, s):
        for j in range(0, Wp, s):
            tokens = grid[i : i + s, j : j + s].reshape(s * s, -1)
            labels = region[i : i + s, j : j + s].reshape(-1)
            q, k, v = layer.qkv(tokens).chunk(3, dim=-1)
            attended = naive_attention(split_heads(q), split_heads(k), split_heads(v), labels[:, None] == labels)
            out[i : i + s, j : j + s] = layer.proj(attended.transpose(0, 1).reshape(s * s, -1)).view(s, s, -1)
    return torch.roll(out, (shift, shift), (0, 1))[:H, :W].reshape(H * W, -1)


def per_image(reference, layer, x, H, W):
    return torch.stack([reference(layer, image, H, W) for image in x])


CASES = [
    (GlobalAttention(DIM, HEADS), lambda layer, x, H, W: naive_global(layer, x)),
    (SpatialReductionAttention(DIM, HEADS, sr_ratio=2), naive_sra),
    (WindowAttention(DIM, HEADS, window_size=3), naive_window),
    (WindowAttention(DIM, HEADS, window_size=3, shift_size=1), naive_window),
    (WindowAttention(DIM, HEADS, window_size=4, shift_size=2), naive_window),
]


@pytest.mark.parametrize("H, W", [(6, 6), (7, 5), (2, 9)])
@pytest.mark.parametrize("layer, reference", CASES, ids=["msa", "sra", "window", "shifted", "shifted_ws4"])
def test_matches_naive_reference(layer, reference, H, W):
    torch.manual_seed(0)
    x = torch.randn(2, H * W, DIM)
    with torch.no_grad():
        expected = per_image(reference, layer, x, H, W)
        torch.testing.assert_close(layer(x, H, W), expected, atol=1e-5, rtol=1e-5)


def test_backward_runs_and_reaches_every_parameter():
    for layer, _ in CASES:
        x = torch.randn(1, 36, DIM, requires_grad=True)
        layer(x, 6, 6).sum().backward()
        assert x.grad is not None and all(p.grad is not None for p in layer.parameters())
        layer.zero_grad()


def test_shifted_mask_without_shift_regions_is_all_true_for_interior_windows():
    mask = shifted_window_mask(6, 6, 3, 1)
    assert mask.shape == (4, 9, 9) and mask[0].all() and not mask[-1].all()


def test_timm_pvtv2_equals_our_sra_with_the_same_weights():
    ours = SpatialReductionAttention(DIM, HEADS, sr_ratio=2)
    peer = TimmPVTv2Attention(DIM, HEADS, sr_ratio=2)
    peer.attn.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(2, 48, DIM)
    with torch.no_grad():
        torch.testing.assert_close(peer(x, 6, 8), ours(x, 6, 8), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shift", [0, 1])
def test_timm_swin_equals_ours_when_its_position_bias_is_zero(shift):
    ours = WindowAttention(DIM, HEADS, window_size=3, shift_size=shift)
    peer = TimmSwinAttention(DIM, HEADS, window_size=3, shift_size=shift)
    with torch.no_grad():
        peer.attn.relative_position_bias_table.zero_()
        peer.attn.qkv.load_state_dict(ours.qkv.state_dict())
        peer.attn.proj.load_state_dict(ours.proj.state_dict())
        x = torch.randn(2, 42, DIM)
        # -100 instead of -inf leaves e^-100 of weight on masked pairs: equal to float32 precision
        torch.testing.assert_close(peer(x, 7, 6), ours(x, 7, 6), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "layer",
    [
        GlobalAttention(DIM, HEADS),
        SpatialReductionAttention(DIM, HEADS, sr_ratio=2),
        WindowAttention(DIM, HEADS, window_size=3, shift_size=1),
        TimmPVTv2Attention(DIM, HEADS),
        TimmSwinAttention(DIM, HEADS, window_size=3),
    ],
    ids=["msa", "sra", "shifted", "timm_pvtv2", "timm_swin"],
)
def test_analytic_flops_match_the_counter(layer):
    H, W = 6, 9
    x = torch.randn(1, H * W, DIM)
    with torch.no_grad():
        assert count_flops(lambda: layer(x, H, W)) == 2 * layer.flops(H, W)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match=r"H\*W=36"):
        GlobalAttention(DIM, HEADS)(torch.randn(1, 35, DIM), 6, 6)
    with pytest.raises(ValueError, match="divisible by num_heads=3"):
        WindowAttention(DIM, 3)
    with pytest.raises(ValueError, match="shift_size"):
        WindowAttention(DIM, HEADS, window_size=3, shift_size=3)
    with pytest.raises(ValueError, match="sr_ratio=2"):
        SpatialReductionAttention(DIM, HEADS)(torch.randn(1, 3, DIM), 1, 3)
