"""HiLo-FPN is a drop-in torchvision FPN: same interface and keys, and the plain FPN when its blocks are off."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7

from hilovit.dense import HiLoBlock2d, HiLoFPN, build_fpn

IN_CHANNELS = [8, 16, 32]


def features(batch: int = 2) -> OrderedDict[str, torch.Tensor]:
    torch.manual_seed(0)  # odd sizes that halve with flooring, as LITv2's stages do
    sizes = [(17, 23), (8, 11), (4, 5)]
    return OrderedDict(
        (f"c{i}", torch.randn(batch, c, *hw)) for i, (c, hw) in enumerate(zip(IN_CHANNELS, sizes, strict=True))
    )


def silence(fpn: HiLoFPN) -> None:
    """Zero the last projection of every residual branch: each HiLo block becomes the identity."""
    with torch.no_grad():
        for block in fpn.hilo_blocks:
            attn = block.block.attn  # a branch whose head count rounds to zero has no projection
            for module in (getattr(attn, "l_proj", None), getattr(attn, "h_proj", None), block.block.mlp.fc2):
                if module is not None:
                    nn.init.zeros_(module.weight)
                    nn.init.zeros_(module.bias)


@pytest.mark.parametrize("extra", [None, "pool", "p6p7"])
def test_silenced_hilo_fpn_equals_torchvision_fpn_with_its_weights(extra):
    def extra_blocks():
        return {None: None, "pool": LastLevelMaxPool(), "p6p7": LastLevelP6P7(IN_CHANNELS[-1], 16)}[extra]

    plain = FeaturePyramidNetwork(IN_CHANNELS, 16, extra_blocks())
    hilo = HiLoFPN(IN_CHANNELS, 16, extra_blocks(), num_heads=2)
    result = hilo.load_state_dict(plain.state_dict(), strict=False)
    assert not result.unexpected_keys and all(k.startswith("hilo_blocks.") for k in result.missing_keys)
    silence(hilo)
    x = features()
    expected, got = plain(x), hilo(x)
    assert list(got) == list(expected)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name])


def test_hilo_blocks_change_every_level_and_keep_shapes():
    x = features()
    plain = FeaturePyramidNetwork(IN_CHANNELS, 16, LastLevelMaxPool())
    hilo = HiLoFPN(IN_CHANNELS, 16, LastLevelMaxPool(), num_heads=2)
    hilo.load_state_dict(plain.state_dict(), strict=False)
    expected, got = plain(x), hilo(x)
    assert hilo.window_sizes == (4, 2, 1)
    for name in expected:
        assert got[name].shape == expected[name].shape
        assert not torch.allclose(got[name], expected[name])


def test_hilo_fpn_replaces_the_fpn_of_a_torchvision_resnet_backbone():
    backbone = resnet_fpn_backbone(backbone_name="resnet18", weights=None, trainable_layers=5).eval()
    channels = [fpn_conv[0].in_channels for fpn_conv in backbone.fpn.inner_blocks]
    backbone.fpn = HiLoFPN(channels, backbone.out_channels, LastLevelMaxPool(), num_heads=4, mlp_ratio=1.0)
    with torch.no_grad():
        out = backbone(torch.rand(1, 3, 75, 99))
    assert list(out) == ["0", "1", "2", "3", "pool"]
    assert all(level.shape[1] == 256 for level in out.values())


def test_build_fpn_checks_the_kind_and_its_options():
    assert type(build_fpn("plain", IN_CHANNELS, 16)) is FeaturePyramidNetwork
    assert isinstance(build_fpn("hilo", IN_CHANNELS, 16, num_heads=4, window_sizes=(1, 1, 1)), HiLoFPN)
    with pytest.raises(ValueError, match="unknown fpn 'big'"):
        build_fpn("big", IN_CHANNELS, 16)
    with pytest.raises(ValueError, match="dim=16 must be divisible by num_heads=3"):
        build_fpn("hilo", IN_CHANNELS, 16, num_heads=3)


def test_hilo_block_names_a_channel_mismatch():
    block = HiLoBlock2d(64, 8)
    with pytest.raises(
        ValueError, match=r"HiLoBlock2d expects 64 input channels, got 32 \(input shape \(1, 32, 8, 8\)\)"
    ):
        block(torch.randn(1, 32, 8, 8))
    with pytest.raises(ValueError, match=r"HiLoBlock2d expects a \(B, 64, H, W\) map, got a 3-d input"):
        block(torch.randn(1, 64, 8))
