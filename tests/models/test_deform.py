"""Deformable Token Merging: the gather implementation against torchvision.ops.deform_conv2d."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.ops import deform_conv2d

from hilovit.models.deform import DeformablePatchMerging, default_impl, deform_conv2x2

FP32 = dict(rtol=1e-5, atol=1e-5)


def random_problem(B, C, H, W, out=6, offset_scale=3.0, dtype=torch.float32, seed=0):
    """Input, offsets (a few pixels: many sample points fall outside the map), weight, bias."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, C, H, W, generator=g, dtype=dtype)
    offset = torch.randn(B, 8, H // 2, W // 2, generator=g, dtype=dtype) * offset_scale
    weight = torch.randn(out, C, 2, 2, generator=g, dtype=dtype) / (4 * C) ** 0.5
    bias = torch.randn(out, generator=g, dtype=dtype)
    return x, offset, weight, bias


def outputs_and_grads(impl, x, offset, weight, bias, seed=1):
    leaves = [t.detach().clone().requires_grad_() for t in (x, offset, weight, bias)]
    out = deform_conv2x2(*leaves, impl=impl)
    grad_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
    return [out, *torch.autograd.grad(out, leaves, grad_out)]


def sample_points_outside(offset, H, W):
    """How many of the sample points lie (partly) outside the H x W map."""
    B, _, Ho, Wo = offset.shape
    dy, dx = offset.view(B, 4, 2, Ho, Wo).unbind(2)
    tap_i = torch.tensor([0.0, 0.0, 1.0, 1.0]).view(4, 1, 1)
    tap_j = torch.tensor([0.0, 1.0, 0.0, 1.0]).view(4, 1, 1)
    y = 2 * torch.arange(Ho).view(-1, 1) + tap_i + dy
    x = 2 * torch.arange(Wo) + tap_j + dx
    return int(((y < 0) | (y > H - 1) | (x < 0) | (x > W - 1)).sum())


@pytest.mark.parametrize("shape", [(1, 3, 6, 6), (2, 5, 9, 7), (3, 4, 5, 11), (2, 8, 2, 3), (1, 16, 28, 28)])
def test_forward_and_backward_match_torchvision(shape):
    problem = random_problem(*shape)
    assert sample_points_outside(problem[1], *shape[2:]) > 0
    ours = outputs_and_grads("gather", *problem)
    reference = outputs_and_grads("torchvision", *problem)
    for name, a, b in zip(("output", "x", "offset", "weight", "bias"), ours, reference, strict=True):
        torch.testing.assert_close(a, b, **FP32, msg=lambda m, name=name: f"{name}: {m}")


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    B=st.integers(1, 3),
    C=st.integers(1, 6),
    H=st.integers(2, 9),
    W=st.integers(2, 9),
    scale=st.sampled_from([0.3, 1.0, 4.0]),
    seed=st.integers(0, 2**16),
)
def test_property_matches_torchvision_in_float64(B, C, H, W, scale, seed):
    problem = random_problem(B, C, H, W, out=3, offset_scale=scale, dtype=torch.float64, seed=seed)
    for a, b in zip(outputs_and_grads("gather", *problem), outputs_and_grads("torchvision", *problem), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_points_entirely_outside_read_zero():
    x, offset, weight, bias = random_problem(2, 4, 6, 8)
    far = torch.full_like(offset, -50.0)
    far[1] = 50.0  # image 0 samples far above/left of the map, image 1 far below/right
    out = deform_conv2x2(x, far, weight, bias, impl="gather")
    torch.testing.assert_close(out, bias.view(1, -1, 1, 1).expand_as(out))


def test_huge_and_non_finite_offsets_stay_in_range():
    x, offset, weight, bias = random_problem(2, 3, 12, 14)
    offset[0, :, ::2] = 1e30
    offset[1, :, 1::3] = -1e30
    torch.testing.assert_close(
        deform_conv2x2(x, offset, weight, bias), deform_conv2d(x, offset, weight, bias, stride=2)
    )
    offset[0, 3, 2, 4] = float("nan")
    offset[1, 4] = float("inf")
    out = deform_conv2x2(x, offset, weight, bias)  # no out-of-range read
    assert out[0, :, 2, 4].isnan().all() and out[0, :, 1, 4].isfinite().all()


def test_zero_offsets_are_a_plain_strided_conv():
    merge = DeformablePatchMerging(8, 16)
    x = torch.randn(2, 8, 9, 7)
    conv = F.conv2d(x, merge.dconv.weight, merge.dconv.bias, stride=2)
    torch.testing.assert_close(merge.dconv(x), conv, **FP32)


def test_state_dict_has_the_official_keys():
    shapes = {k: tuple(v.shape) for k, v in DeformablePatchMerging(32, 64).state_dict().items()}
    assert shapes == {
        "dconv.weight": (64, 32, 2, 2),
        "dconv.bias": (64,),
        "dconv.conv_offset.weight": (8, 32, 2, 2),
        "dconv.conv_offset.bias": (8,),
        "norm_layer.weight": (64,),
        "norm_layer.bias": (64,),
        "norm_layer.running_mean": (64,),
        "norm_layer.running_var": (64,),
        "norm_layer.num_batches_tracked": (),
    }
    offset = DeformablePatchMerging(32, 64).dconv.conv_offset
    assert not offset.weight.any() and not offset.bias.any()


def make_trained_like(dim=8, out_dim=16, seed=0):
    torch.manual_seed(seed)
    merge = DeformablePatchMerging(dim, out_dim)
    torch.nn.init.normal_(merge.dconv.conv_offset.weight, std=0.5)
    torch.nn.init.normal_(merge.dconv.conv_offset.bias, std=0.5)
    return merge.eval()


@pytest.mark.parametrize("shape", [(1, 8, 7, 9), (3, 8, 8, 8)])
def test_module_matches_torchvision_and_floors_odd_sizes(shape):
    merge = make_trained_like()
    x = torch.randn(shape)
    out = merge(x)
    assert out.shape == (shape[0], 16, shape[2] // 2, shape[3] // 2)
    assert out.permute(0, 2, 3, 1).is_contiguous()  # channels-last: the token view is free
    merge.impl = "torchvision"
    torch.testing.assert_close(out, merge(x), **FP32)


def test_module_backward_reaches_the_offset_conv_from_zero_init():
    merge = DeformablePatchMerging(4, 8).train()
    x = torch.randn(2, 4, 6, 6)
    merge(x).square().sum().backward()
    grads = {name: p.grad for name, p in merge.named_parameters()}
    assert all(g is not None for g in grads.values())
    assert grads["dconv.conv_offset.weight"].abs().sum() > 0
    reference = DeformablePatchMerging(4, 8, impl="torchvision").train()
    reference.load_state_dict(merge.state_dict())
    reference(x).square().sum().backward()
    for name, p in reference.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, **FP32)


@pytest.mark.parametrize("input_dtype", [torch.float32, torch.bfloat16])
def test_autocast_runs_in_float32(input_dtype):
    merge = make_trained_like()
    x = torch.randn(2, 8, 6, 6).to(input_dtype)
    expected = merge(x.float())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = merge(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


def test_low_precision_module_keeps_its_dtype():
    merge = make_trained_like().to(torch.bfloat16)
    assert merge(torch.randn(1, 8, 6, 6)).dtype == torch.bfloat16


def test_auto_resolves_per_device():
    assert default_impl("cpu") == "gather"
    assert default_impl("cuda") == "torchvision"
    x, offset, weight, bias = random_problem(1, 3, 6, 6)
    torch.testing.assert_close(
        deform_conv2x2(x, offset, weight, bias), deform_conv2d(x, offset, weight, bias, stride=2)
    )


def test_flops_follow_the_official_count():
    # official DTM.flops(): conv_flops(2, C, 12, ...) for the offsets (sic, the conv has 8 outputs),
    # conv_flops(2, C, 2C, ...) for the kernel, one op per output element for the norm
    locations = 28 * 28
    expected = locations * (4 * 96 * 12 + 12) + locations * (4 * 96 * 192 + 192) + locations * 192
    assert DeformablePatchMerging(96, 192).flops(56, 56) == expected
    assert DeformablePatchMerging(96, 192).flops(57, 55) == 28 * 27 * (4 * 96 + 1) * (12 + 192) + 28 * 27 * 192


def test_export_traces_standard_ops():
    merge = make_trained_like()
    x = torch.randn(2, 8, 6, 10)
    program = torch.export.export(merge, (x,))
    torch.testing.assert_close(program.module()(x), merge(x))


@pytest.mark.parametrize(
    ("x", "error", "match"),
    [
        (torch.randn(2, 36, 8), ValueError, r"rank 4 .*got shape \(2, 36, 8\)"),
        (torch.randn(1, 5, 6, 6), ValueError, "expected 8 input channels, got 5"),
        (torch.ones(1, 8, 6, 6, dtype=torch.int64), TypeError, "floating-point input, got dtype torch.int64"),
        (torch.randn(1, 8, 1, 6), ValueError, r"H and W >= 2, got input shape \(1, 8, 1, 6\)"),
    ],
)
def test_bad_inputs_are_named(x, error, match):
    with pytest.raises(error, match=match):
        DeformablePatchMerging(8, 16)(x)


def test_bad_arguments_are_named():
    x, offset, weight, bias = random_problem(1, 3, 6, 6)
    with pytest.raises(ValueError, match=r"impl must be one of .*got 'cuda'"):
        DeformablePatchMerging(3, 6, impl="cuda")
    with pytest.raises(ValueError, match=r"offsets of shape \(1, 8, 3, 3\), got \(1, 8, 2, 3\)"):
        deform_conv2x2(x, offset[:, :, :2], weight, bias)
    with pytest.raises(ValueError, match=r"\(out, C, 2, 2\) weight, got shape \(6, 3, 3, 3\)"):
        deform_conv2x2(x, offset, torch.randn(6, 3, 3, 3), bias)
    with pytest.raises(ValueError, match=r"bias of shape \(6,\), got \(5,\)"):
        deform_conv2x2(x, offset, weight, bias[:5])
