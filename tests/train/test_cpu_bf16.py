"""The engine's float32 3-D convolutions for CPU bf16 runs (hilovit.train.cpu_bf16)."""

from __future__ import annotations

import torch
from torch import nn

from hilovit.train.cpu_bf16 import Float32Conv3d, keep_conv3d_in_float32


def _weight_gradients(conv: nn.Module, x: torch.Tensor, calls: int) -> list[torch.Tensor]:
    gradients = []
    for _ in range(calls):
        conv.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            conv(x).float().square().mean().backward()
        gradients.append(conv.weight.grad.clone())
    return gradients


def test_conv3d_weight_gradients_at_depth_2_are_the_same_at_every_call():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv3d(16, 16, 3, padding=1), nn.GELU(), nn.ConvTranspose3d(16, 4, 2, stride=2))
    keys = list(model.state_dict())
    assert keep_conv3d_in_float32(model) == 1
    assert type(model[0]) is Float32Conv3d and type(model[2]) is nn.ConvTranspose3d
    assert list(model.state_dict()) == keys
    x = torch.randn(1, 16, 2, 4, 4)  # depth 2: where torch 2.14.1's bf16 weight gradient is not reproducible
    first, *others = _weight_gradients(model[0], x, 8)
    assert torch.isfinite(first).all() and all(torch.equal(first, other) for other in others)
    with torch.no_grad():
        plain = nn.functional.conv3d(x, model[0].weight, model[0].bias, padding=1)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert model[0](x).dtype == torch.float32
            assert torch.equal(model[0](x), plain)
