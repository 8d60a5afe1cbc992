"""Every model of hilovit's registry, the same way (as timm's tests/test_models.py does for timm's): forward, backward,
odd input sizes and ``device="meta"`` construction; features_only and forward_intermediates for the classifiers.

Inputs are tiny so that the whole file runs in seconds; ``make timm-suite`` runs timm's own suite.
"""

from __future__ import annotations

import pytest
import timm
import torch
from timm.layers import create_feature_extractor  # torchvision's, with timm's leaf modules and functions
from torch import nn

from hilovit.models import create_model, list_models

CLASSIFIERS = list_models(task="classification")
MODELS_3D = list_models(task="video") + list_models(task="volume")
# Odd sides: not multiples of the patch, the HiLo window or the DTM stride (and, in 3-D, of the patch or 8).
# Batch 2: BatchNorm (in DTM) trains on more than one value per channel.
IMAGE = (2, 3, 37, 43)
CLIP = {"video": (2, 1, 5, 18, 21), "volume": (2, 1, 9, 10, 11)}


def _input(name: str) -> torch.Tensor:
    task = "classification" if name in CLASSIFIERS else ("video" if name in list_models(task="video") else "volume")
    return torch.randn(IMAGE if task == "classification" else CLIP[task])


def test_the_families_are_registered() -> None:
    assert {"litv2_nano", "litv2_s", "litv2_b_384"} <= set(CLASSIFIERS)
    assert {"hilo3d_video_nano", "hilo3d_unet_nano"} <= set(MODELS_3D)
    assert set(CLASSIFIERS) == set(timm.list_models("litv2_*"))  # the classifiers are timm models too
    assert not timm.list_models("hilo3d_*")  # timm's registry (and its 2-D tools) holds no 3-D model


@pytest.mark.parametrize("name", CLASSIFIERS + MODELS_3D)
def test_forward_and_backward_at_an_odd_size(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=3)
    x = _input(name)
    out = model(x)
    assert out.shape[:2] == (2, 3)
    if name in CLASSIFIERS:
        assert out.dim() == 2
    elif name in list_models(task="volume"):
        assert out.shape[2:] == x.shape[2:]  # logits cropped back to the odd volume
    out.float().square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without a gradient: {missing[:5]}"
    model.eval()
    with torch.inference_mode():
        assert torch.isfinite(model(x)).all()


@pytest.mark.parametrize("name", CLASSIFIERS + MODELS_3D)
def test_meta_device_construction_allocates_nothing(name: str) -> None:
    kwargs = {"device": "meta"} if name in CLASSIFIERS else {}
    with torch.device("meta"):
        model = create_model(name, num_classes=3, **kwargs)
    tensors = [*model.parameters(), *model.buffers()]
    assert tensors and all(t.is_meta for t in tensors)
    out = model(_input(name).to("meta"))
    assert out.is_meta and out.shape[:2] == (2, 3)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_timm_device_and_dtype_arguments(name: str) -> None:
    model = timm.create_model(name, device="meta", dtype=torch.float64)
    assert {p.device.type for p in model.parameters()} == {"meta"}
    assert {p.dtype for p in model.parameters()} == {torch.float64}
    assert model.in_chans == model.pretrained_cfg["input_size"][0] == 3
    assert model.output_fmt == "NHWC"
    features = model.forward_features(torch.randn(1, 3, 64, 64, device="meta", dtype=torch.float64))
    assert features.shape == (1, 2, 2, model.num_features)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_features_only_and_intermediates_agree(name: str) -> None:
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=0).eval()
    torch.manual_seed(0)
    features = timm.create_model(name, features_only=True).eval()  # the same weights
    x = torch.randn(IMAGE)
    with torch.inference_mode():
        final, intermediates = model.forward_intermediates(x)
        maps = features(x)
        torch.testing.assert_close(final, model.forward_features(x))
    assert [m.shape[1] for m in maps] == features.feature_info.channels() == list(model.embed_dims)
    for a, b, grid in zip(maps, intermediates, model.stage_grids(*IMAGE[2:]), strict=True):
        torch.testing.assert_close(a, b)
        assert a.shape[2:] == grid


def test_fx_graph_and_trace_hold_at_every_size() -> None:
    """torch.fx and torch.jit.trace record the padding as tensor ops: one graph, correct at other sizes too."""
    model = timm.create_model("litv2_nano", num_classes=3).eval()
    fx = create_feature_extractor(model, return_nodes=["head"])
    traced = torch.jit.trace(model, torch.randn(1, 3, 64, 64), check_trace=False)
    for size in ((64, 64), (37, 43), (50, 61)):
        x = torch.randn(1, 3, *size)
        with torch.no_grad():
            expected = model(x)
            torch.testing.assert_close(fx(x)["head"], expected, atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(traced(x), expected, atol=1e-5, rtol=1e-4)


def test_timm_onnx_export_with_dynamic_size_is_right_at_other_sizes(tmp_path) -> None:
    """timm's onnx_export (TorchScript-based, the one of its onnx_export.py --dynamic-size): one graph for all sizes."""
    ort = pytest.importorskip("onnxruntime")
    from timm.utils.onnx import onnx_export

    model = timm.create_model("litv2_nano", num_classes=3).eval()
    path = tmp_path / "litv2_nano.onnx"
    onnx_export(model, str(path), example_input=torch.randn(1, 3, 64, 64), dynamic_size=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for size in ((37, 43), (50, 61)):
        x = torch.randn(1, 3, *size)
        with torch.no_grad():
            expected = model(x)
        (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
        torch.testing.assert_close(torch.from_numpy(out), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_torchscript_and_scripted_fx_graph_equal_eager() -> None:
    """TorchScript compiles the standard ops (the CPU fast paths and checks are eager-only) and gives the same."""
    model = timm.create_model("litv2_nano", num_classes=3).eval()
    scripted = torch.jit.script(model)
    scripted_fx = torch.jit.script(create_feature_extractor(model, return_nodes=["head"]))
    x = torch.randn(IMAGE)
    with torch.inference_mode():
        expected = model(x)
        torch.testing.assert_close(scripted(x), expected, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(scripted_fx(x)["head"], expected, atol=1e-5, rtol=1e-4)


def test_fx_graph_still_checks_the_input() -> None:
    fx = create_feature_extractor(timm.create_model("litv2_nano").eval(), return_nodes=["head"])
    with pytest.raises(ValueError, match=r"expected an image batch \(B, 3, H, W\)"):
        fx(torch.randn(1, 64, 64, 3))


def test_reset_classifier_keeps_the_mode_device_and_dtype() -> None:
    model = timm.create_model("litv2_nano").eval().to(torch.float64)
    model.reset_classifier(7)
    assert isinstance(model.head, nn.Linear) and not model.head.training
    assert model.head.weight.dtype == torch.float64
