"""LITv2 models name bad images and bad configurations clearly, and take the inputs they should."""

from __future__ import annotations

import pytest
import timm
import torch

import hilovit  # noqa: F401  registers the family with timm
from hilovit.models import LITv2, LITv2Backbone, litv2_config

NANO = litv2_config("litv2_nano")


@pytest.fixture(scope="module", params=[LITv2, LITv2Backbone])
def model(request: pytest.FixtureRequest) -> torch.nn.Module:
    return request.param(**NANO).eval()


@pytest.mark.parametrize("dtype", [torch.uint8, torch.bool, torch.int64])
def test_non_float_images_are_named(model: torch.nn.Module, dtype: torch.dtype) -> None:
    name = type(model).__name__
    expected = rf"{name} expects a floating-point image \(B, 3, H, W\) with the model's dtype float32, got "
    with pytest.raises(TypeError, match=expected + str(dtype).removeprefix("torch.")):
        model(torch.zeros(1, 3, 64, 64, dtype=dtype))


def test_float64_image_into_a_float32_model(model: torch.nn.Module) -> None:
    with pytest.raises(TypeError, match=r"dtype float32, got float64: cast the input \(.to\(torch.float32\)\)"):
        model(torch.zeros(1, 3, 64, 64, dtype=torch.float64))


def test_autocast_and_low_precision_models_still_work() -> None:
    model = LITv2(**NANO, num_classes=3).eval()
    image = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert model(image).dtype == torch.bfloat16  # float32 image, float32 model, autocast
        assert model.to(torch.bfloat16)(image.bfloat16()).dtype == torch.bfloat16


def test_channels_last_images_get_a_channel_error_first(model: torch.nn.Module) -> None:
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\) with in_chans=3 channels, got shape \(1, 64, 64, 3\).*NHWC"):
        model(torch.randn(1, 64, 64, 3))
    with pytest.raises(ValueError, match=r"in_chans=3 channels, got shape \(1, 1, 64, 64\)$"):
        model(torch.randn(1, 1, 64, 64))
    with pytest.raises(ValueError, match=r"got shape \(3, 64, 64\)"):
        model(torch.randn(3, 64, 64))


def test_an_empty_batch_gives_empty_outputs() -> None:
    classifier, backbone = LITv2(**NANO, num_classes=3).eval(), LITv2Backbone(**NANO).eval()
    with torch.no_grad():
        assert classifier(torch.randn(0, 3, 64, 63)).shape == (0, 3)
        assert [m.shape for m in backbone(torch.randn(0, 3, 64, 64))] == [
            (0, 32, 16, 16),
            (0, 64, 8, 8),
            (0, 128, 4, 4),
            (0, 256, 2, 2),
        ]
    classifier.train()(torch.randn(0, 3, 64, 64)).sum().backward()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(depths=[1, 1, -1, 1]), ValueError, r"depths entries must be >= 0, got \(1, 1, -1, 1\)"),
        (dict(depths=2), TypeError, r"depths must be a sequence of ints \(one per stage\), got 2 \(int\)"),
        (dict(depths=()), ValueError, "depths must list at least one stage"),
        (dict(local_ws=[0, 0, -1, 1]), ValueError, r"local_ws entries must be >= 0, got \(0, 0, -1, 1\)"),
        (dict(num_heads=(1, 2, 0, 8)), ValueError, r"num_heads entries must be >= 1, got \(1, 2, 0, 8\)"),
        (dict(num_heads=(1, 2, 4)), ValueError, r"num_heads=\(1, 2, 4\) has 3 entries, expected one per stage"),
        (dict(in_chans=0), ValueError, "in_chans must be >= 1, got 0"),
        (dict(embed_dim=32.0), TypeError, r"embed_dim must be an int, got 32.0 \(float\)"),
        (dict(drop_path_rate=2), ValueError, r"drop_path_rate must be in \[0, 1\), got 2"),
        (dict(drop_rate=-0.1), ValueError, r"drop_rate must be in \[0, 1\), got -0.1"),
        (dict(attn_drop_rate="0"), TypeError, r"attn_drop_rate must be a number in \[0, 1\), got '0' \(str\)"),
        (dict(mlp_ratio=0), ValueError, "mlp_ratio must be > 0, got 0"),
        (dict(mlp_ratio=0.01), ValueError, "mlp_ratio=0.01 leaves no ConvFFN hidden channels at embed_dim=32"),
        (dict(alpha=1.5), ValueError, r"alpha .* must be in \[0, 1\], got 1.5"),
        (dict(patch_size=(2, 2)), TypeError, r"patch_size must be an int, got \(2, 2\) \(tuple\)"),
        (dict(num_classes=2.5), TypeError, r"num_classes must be an int, got 2.5 \(float\)"),
        (dict(num_classes=-1), ValueError, "num_classes must be >= 0, got -1"),
    ],
)
def test_bad_configurations_name_the_argument_and_value(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        LITv2(**{**NANO, **kwargs})


def test_a_lone_bad_argument_is_named_too() -> None:
    with pytest.raises(TypeError, match="depths must be a sequence of ints"):
        LITv2(depths=2)
    with pytest.raises(ValueError, match="in_chans must be >= 1"):
        LITv2Backbone(**NANO, in_chans=0)
    with pytest.raises(ValueError, match=r"drop_path_rate must be in \[0, 1\)"):
        timm.create_model("litv2_nano", drop_path_rate=1.0)
