"""LITv2 family: fidelity to the official code, sizes, timm interface, any-size inputs, training features."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import timm
import torch
from torch import nn

import hilovit  # noqa: F401  registers the family with timm
from hilovit.models import LITv2, LITv2Backbone, litv2_config, load_official

REPO = Path(__file__).parents[2]
FIXTURES = REPO / ".." / "shared" / "fixtures"
FIXTURE_NAMES = ("litv2_official_tiny", "litv2_official_ws4")

# A small trunk that still has every part: ConvFFN-only stages, Hi-Fi + Lo-Fi HiLo (ws 2), global HiLo, DTM.
SMALL = dict(embed_dim=16, depths=(1, 1, 2, 1), num_heads=(1, 2, 2, 4), alpha=0.5, drop_path_rate=0.0)


def load_fixture(name: str) -> dict:
    path = FIXTURES / f"{name}.pt"
    if not path.is_file():
        pytest.skip(f"official-code fixture {path} is not available")
    return torch.load(path, weights_only=True)


def assert_matches(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_classifier_matches_official_code(name: str) -> None:
    fixture = load_fixture(name)
    model = LITv2(**fixture["config"]).eval()
    load_official(model, {"model": fixture["classification"]["state_dict"]})
    with torch.no_grad():
        logits = model(fixture["classification"]["input"])
    assert_matches(logits, fixture["classification"]["logits"])


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_backbone_matches_official_code_on_odd_sizes(name: str) -> None:
    fixture = load_fixture(name)
    config = {k: v for k, v in fixture["config"].items() if k != "num_classes"}
    model = LITv2Backbone(**config).eval()
    state = {k: v for k, v in fixture["classification"]["state_dict"].items() if not k.startswith(("norm.", "head."))}
    load_official(model, {**state, **fixture["backbone"]["extra_state_dict"]})
    for image, expected in zip(fixture["backbone"]["inputs"], fixture["backbone"]["features"], strict=True):
        with torch.no_grad():
            maps = model(image)
        assert len(maps) == len(expected) == 4
        for actual, reference in zip(maps, expected, strict=True):
            assert_matches(actual, reference)


def build_on_meta(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return timm.create_model(name, **kwargs)


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("litv2_s", 27_844_000),
        ("litv2_m", 48_830_368),
        ("litv2_b", 86_520_704),
        ("litv2_b_384", 86_520_704),
        ("litv2_nano", 1_679_680),
        ("litv2_tiny", 11_056_576),
    ],
)
def test_parameter_counts(name: str, params: int) -> None:
    assert num_params(build_on_meta(name)) == params


@pytest.mark.parametrize(
    ("name", "size", "gmacs"),
    [
        ("litv2_s", 224, 3.73),
        ("litv2_m", 224, 7.48),
        ("litv2_b", 224, 13.19),
        ("litv2_b", 384, 39.71),
        ("litv2_nano", 224, 0.198),
        ("litv2_tiny", 224, 1.407),
    ],
)
def test_flops_match_the_paper(name: str, size: int, gmacs: float) -> None:
    model = build_on_meta(name)
    assert model.flops(size, size) / 1e9 == pytest.approx(gmacs, rel=0.01)


def test_flops_default_to_the_models_image_size() -> None:
    assert build_on_meta("litv2_b_384").flops() == build_on_meta("litv2_b").flops(384, 384)


def test_backbone_flops_add_output_norms_and_drop_the_head() -> None:
    classifier, backbone = LITv2(**SMALL, num_classes=0), LITv2Backbone(**SMALL)
    final = SMALL["embed_dim"] * 8 * 2 * 2  # final norm of the classifier on the 2x2 map of a 64 px image
    norms = sum(d * (16 // 2**i) ** 2 for i, d in enumerate(backbone.embed_dims) if i > 0)
    assert backbone.flops(64, 64) - norms == classifier.flops(64, 64) - final


def test_registry_lists_the_family() -> None:
    names = set(timm.list_models(module="litv2"))
    assert names == {"litv2_nano", "litv2_tiny", "litv2_s", "litv2_m", "litv2_b", "litv2_b_384"}


@pytest.mark.parametrize("name", timm.list_models(module="litv2"))
def test_every_registered_model(name: str) -> None:
    meta = build_on_meta(name)
    cfg = meta.pretrained_cfg
    assert cfg["architecture"] == name and not cfg["url"] and not cfg.get("hf_hub_id")
    assert [i["reduction"] for i in meta.feature_info] == [4, 8, 16, 32]
    assert meta.head.out_features == 1000 and meta.num_features == meta.embed_dims[-1]
    if name in ("litv2_nano", "litv2_tiny"):
        model = timm.create_model(name, num_classes=3).eval()
        with torch.no_grad():
            logits = model(torch.randn(1, 3, 48, 40))
        assert logits.shape == (1, 3) and logits.isfinite().all()


def test_builders_take_overrides() -> None:
    model = build_on_meta("litv2_s", num_classes=7, alpha=0.5, local_ws=(0, 0, 4, 1), in_chans=1)
    attn = model.layers[2].blocks[0].attn
    assert (attn.ws, attn.l_heads, attn.h_heads) == (4, 6, 6)
    assert model.patch_embed.proj.in_channels == 1 and model.head.out_features == 7
    assert model.layers[0].blocks[1].drop_path.drop_prob == pytest.approx(0.2 / 11)


def test_pretrained_without_a_file_is_an_error() -> None:
    with pytest.raises(ValueError, match="downloads nothing"):
        timm.create_model("litv2_nano", pretrained=True)


@pytest.mark.parametrize("out_indices", [(0, 1, 2, 3), (1, 3), (0, 1)])
def test_timm_features_only(out_indices: tuple[int, ...]) -> None:
    model = timm.create_model("litv2_nano", features_only=True, out_indices=out_indices).eval()
    assert model.feature_info.reduction() == [4 * 2**i for i in out_indices]
    assert model.feature_info.channels() == [32 * 2**i for i in out_indices]
    with torch.no_grad():
        maps = model(torch.randn(2, 3, 64, 96))
    assert [tuple(m.shape) for m in maps] == [(2, 32 * 2**i, 16 >> i, 24 >> i) for i in out_indices]
    assert not any(k.endswith(("head.weight", "model.norm.weight")) for k in model.state_dict())


def test_forward_head_and_intermediates() -> None:
    model = LITv2(**SMALL, num_classes=5).eval()
    image = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features = model.forward_features(image)
        pooled = model.forward_head(features, pre_logits=True)
        final, maps = model.forward_intermediates(image, norm=True)
        nhwc = model.forward_intermediates(image, indices=2, output_fmt="NHWC", intermediates_only=True)
        logits = model(image)
    assert features.shape == (2, 2, 2, 128) and pooled.shape == (2, 128)
    torch.testing.assert_close(pooled, features.mean(dim=(1, 2)))
    torch.testing.assert_close(logits, model.head(pooled))
    torch.testing.assert_close(final, features)
    torch.testing.assert_close(maps[-1], features.permute(0, 3, 1, 2))
    assert [m.shape[1] for m in maps] == [16, 32, 64, 128]
    torch.testing.assert_close(nhwc[0], maps[2].permute(0, 2, 3, 1))
    assert len(nhwc) == 2


def test_reset_classifier() -> None:
    model = LITv2(**SMALL, num_classes=5).eval()
    image = torch.randn(1, 3, 32, 32)
    model.reset_classifier(3)
    assert model(image).shape == (1, 3) and model.get_classifier().out_features == 3
    model.reset_classifier(0)
    assert isinstance(model.head, nn.Identity) and model(image).shape == (1, 128)
    assert not any(k.startswith("head.") for k in model.state_dict())
    model.reset_classifier(4, global_pool="")
    assert model(image).shape == (1, 1, 1, 4)
    with pytest.raises(ValueError, match="global_pool"):
        model.reset_classifier(4, global_pool="max")


def test_gradient_checkpointing_gives_the_same_outputs_and_gradients() -> None:
    torch.manual_seed(0)
    model = LITv2(**SMALL, num_classes=4).train()
    image = torch.randn(2, 3, 40, 36)

    def run() -> tuple[torch.Tensor, list[torch.Tensor]]:
        model.zero_grad()
        out = model(image)
        out.square().sum().backward()
        return out.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    plain_out, plain_grads = run()
    model.set_grad_checkpointing()
    assert all(stage.grad_checkpointing for stage in model.layers)
    assert all(stage.grad_checkpointing for stage in LITv2Backbone(**SMALL, use_checkpoint=True).layers)
    ckpt_out, ckpt_grads = run()
    torch.testing.assert_close(ckpt_out, plain_out)
    assert len(ckpt_grads) == len(plain_grads) == len(list(model.parameters()))
    for a, b in zip(ckpt_grads, plain_grads, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(("height", "width"), [(37, 53), (61, 29), (32, 32)])
def test_any_input_size_in_both_forms(height: int, width: int) -> None:
    classifier = LITv2(**SMALL, num_classes=3).eval()
    backbone = LITv2Backbone(**SMALL).eval()
    with torch.no_grad():
        assert classifier(torch.randn(1, 3, height, width)).shape == (1, 3)
        maps = backbone(torch.randn(1, 3, height, width))
    h, w = math.ceil(height / 4), math.ceil(width / 4)
    expected = [(h >> i, w >> i) for i in range(4)]
    assert [tuple(m.shape[-2:]) for m in maps] == expected == backbone.stage_grids(height, width)
    assert [m.shape[1] for m in maps] == list(backbone.out_channels)
    assert all(m.is_contiguous(memory_format=torch.channels_last) for m in maps)  # views, no copies


def test_too_small_images_are_rejected_with_the_minimum_size() -> None:
    with pytest.raises(ValueError, match="at least 29 px"):
        LITv2(**SMALL)(torch.randn(1, 3, 28, 64))


def test_patch_size_two_for_tiny_images() -> None:
    model = timm.create_model("litv2_nano", patch_size=2, in_chans=1, num_classes=10).eval()
    with torch.no_grad():
        final, maps = model.forward_intermediates(torch.randn(2, 1, 28, 28))
    assert [tuple(m.shape[-2:]) for m in maps] == [(14, 14), (7, 7), (3, 3), (1, 1)]
    assert model.forward_head(final).shape == (2, 10)
    assert [i["reduction"] for i in model.feature_info] == [2, 4, 8, 16]


def test_backbone_keys_follow_the_official_layout() -> None:
    detection = LITv2Backbone(**SMALL)
    keys = set(detection.state_dict())
    assert {"norm1.weight", "norm2.weight", "norm3.weight"} <= keys
    assert not any(k.startswith(("norm.", "norm0.", "head.")) for k in keys)
    classifier_keys = set(LITv2(**SMALL).state_dict())
    assert keys - {k for k in keys if k[:5] in ("norm1", "norm2", "norm3")} == classifier_keys - {
        "norm.weight",
        "norm.bias",
        "head.weight",
        "head.bias",
    }
    segmentation = LITv2Backbone(**SMALL, with_norm0=True, out_indices=(0, -1))
    assert segmentation.out_indices == (0, 3)
    assert {k.split(".")[0] for k in segmentation.state_dict() if k.startswith("norm")} == {"norm0", "norm3"}
    assert segmentation.out_channels == (16, 128) and segmentation.out_strides == (4, 32)
    assert [i["num_chs"] for i in segmentation.feature_info] == [16, 128]


def test_backbone_stops_after_the_last_requested_stage() -> None:
    backbone = LITv2Backbone(**SMALL, out_indices=(0, 1)).eval()
    with torch.no_grad():
        maps = backbone(torch.randn(1, 3, 12, 12))  # too small for four stages, fine for two
    assert [tuple(m.shape) for m in maps] == [(1, 16, 3, 3), (1, 32, 1, 1)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(num_heads=(1, 2, 4)), "num_heads"),
        (dict(local_ws=(0, 2, 1)), "local_ws"),
        (dict(out_indices=(4,)), "out of range"),
        (dict(out_indices=()), "at least one"),
    ],
)
def test_bad_configurations_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LITv2Backbone(**{**SMALL, **kwargs})


def test_no_weight_decay_lists_norms_and_biases_only() -> None:
    model = LITv2(**SMALL)
    names = model.no_weight_decay()
    assert {"norm.weight", "head.bias", "layers.0.downsample.norm_layer.weight"} <= names
    assert all(model.get_parameter(n).ndim == 1 for n in names)
    assert "head.weight" not in names


def test_bf16_autocast() -> None:
    model = LITv2(**SMALL, num_classes=3).eval()
    image = torch.randn(2, 3, 45, 51)
    with torch.no_grad():
        reference = model(image)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(image)
    assert logits.dtype == torch.bfloat16 and logits.isfinite().all()
    torch.testing.assert_close(logits.float(), reference, atol=0.1, rtol=0.1)


def test_torch_compile() -> None:
    model = LITv2Backbone(**SMALL).eval()
    image = torch.randn(1, 3, 50, 42)
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)  # no graph breaks
    with torch.no_grad():
        for actual, expected in zip(compiled(image), model(image), strict=True):
            torch.testing.assert_close(actual, expected)


def test_named_configs_build_backbones() -> None:
    with torch.device("meta"):
        backbone = LITv2Backbone(**litv2_config("litv2_s"))
    assert backbone.out_channels == (96, 192, 384, 768)
    with pytest.raises(ValueError, match="litv2_s"):
        litv2_config("litv2_xl")


def test_every_registered_name_has_a_config() -> None:
    for name in timm.list_models("litv2_*"):
        with torch.device("meta"):
            registered, configured = timm.create_model(name), LITv2(**litv2_config(name))
        assert configured.embed_dims == registered.embed_dims  # litv2_b_384: litv2_b's architecture at 384 px
        assert len(configured.state_dict()) == len(registered.state_dict())
    assert litv2_config("litv2_b_384") == litv2_config("litv2_b")


def test_torch_hub_entrypoints(tmp_path: Path) -> None:
    source = timm.create_model("litv2_nano", num_classes=3)
    torch.save({"model": source.state_dict()}, tmp_path / "nano.pth")
    model = torch.hub.load(str(REPO), "litv2_nano", source="local", num_classes=3, checkpoint=tmp_path / "nano.pth")
    torch.testing.assert_close(model.head.weight, source.head.weight)
    spec = importlib.util.spec_from_file_location("hubconf", REPO / "hubconf.py")
    hubconf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hubconf)
    assert hubconf.dependencies == ["torch", "timm"]
    assert {n for n in dir(hubconf) if n.startswith("litv2")} == set(timm.list_models(module="litv2"))
