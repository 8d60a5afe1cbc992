"""The shipped YAMLs through ultralytics' parser: build, forward at non-square sizes, width scaling, registry.

YOLO11 and YOLOv8 YAMLs build ``DetectionModel``s, the RT-DETR ones ``RTDETRDetectionModel``s.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("ultralytics")

import hilovit.yolo
from hilovit.yolo.aifi import AIFIHiLo
from hilovit.yolo.modules import C2fHiLo, C2HiLo, C3k2HiLo, HiLoBlock
from hilovit.yolo.registry import UnsupportedUltralyticsError, build_parse_model

hilovit.yolo.register()

from ultralytics import YOLO  # noqa: E402
from ultralytics.nn import tasks  # noqa: E402
from ultralytics.nn.modules.block import Bottleneck, C3k  # noqa: E402

NC = 10
YOLO_YAMLS = [name for name in hilovit.yolo.model_yamls() if not name.startswith("rtdetr")]
RTDETR_YAMLS = [name for name in hilovit.yolo.model_yamls() if name.startswith("rtdetr")]


def build(name: str, scale: str) -> tasks.DetectionModel:
    """A shipped YAML, or ultralytics' own ``yolo11`` / ``yolov8`` (found in its package) at ``scale``."""
    path = f"{name}{scale}.yaml" if name in ("yolo11", "yolov8") else hilovit.yolo.model_yaml(name, scale)
    return tasks.DetectionModel(str(path), nc=NC, verbose=False).eval()


def test_every_family_is_shipped() -> None:
    expected = {
        f"{family}-hilo{part}" for family in ("yolo11", "yolov8") for part in ("", "-backbone", "-neck", "-head")
    }
    assert set(YOLO_YAMLS) == expected and set(RTDETR_YAMLS) == {"rtdetr-hilo-l", "rtdetr-hilo-resnet50"}


@pytest.mark.parametrize("name", YOLO_YAMLS)
def test_yaml_builds_and_runs_non_square(name: str) -> None:
    model = build(name, "n")
    hilo_layers = [m for m in model.model if isinstance(m, (C2HiLo, C3k2HiLo, C2fHiLo, HiLoBlock))]
    assert hilo_layers, f"{name} has no HiLo module"
    assert model.stride.tolist() == [8, 16, 32]
    with torch.inference_mode():
        for height, width in ((320, 256), (96, 160)):  # the raw model needs multiples of the stride, 32
            out = model(torch.zeros(1, 3, height, width))[0]
            anchors = sum((height // s) * (width // s) for s in (8, 16, 32))
            assert out.shape == (1, 4 + NC, anchors)
            assert torch.isfinite(out).all()


def test_predictor_letterboxes_any_size() -> None:
    """Through ultralytics' predictor, sizes that are no multiple of 32 are letterboxed: boxes in image pixels."""
    model = YOLO(hilovit.yolo.model_yaml("yolo11-hilo", "n"))
    image = np.random.default_rng(0).integers(0, 255, size=(200, 328, 3), dtype=np.uint8)
    result = model.predict(image, imgsz=(200, 328), conf=0.0, max_det=5, device="cpu", verbose=False)[0]
    assert result.orig_shape == (200, 328)
    boxes = result.boxes.xyxy
    assert len(boxes) == 5 and (boxes[:, 2] <= 328).all() and (boxes[:, 3] <= 200).all()


def _channels(module: torch.nn.Module) -> tuple[int, int]:
    """Input and output channels of a C2PSA/C3k2-like layer (cv1 ... cv2) or a HiLoBlock."""
    if isinstance(module, HiLoBlock):
        inner = module.m[-1].norm.num_features
        return (inner if isinstance(module.proj, torch.nn.Identity) else module.proj.conv.in_channels), inner
    return module.cv1.conv.in_channels, module.cv2.conv.out_channels


@pytest.mark.parametrize("scale", ["n", "s", "m"])
def test_width_scaling_matches_stock_yolo11(scale: str) -> None:
    """Every replaced layer gets the input and output channels of the stock layer it replaces, at every scale."""
    stock, hilo = build("yolo11", scale), build("yolo11-hilo", scale)
    for index in (10, 13, 16, 19, 22):  # C2PSA -> C2HiLo, C3k2 -> C3k2HiLo
        assert _channels(hilo.model[index]) == _channels(stock.model[index]), index
    for index, source in zip((23, 24, 25), (16, 19, 22), strict=True):  # HiLoBlock on each Detect input
        assert _channels(hilo.model[index]) == (stock.model[source].cv2.conv.out_channels,) * 2
    inner = C3k if scale == "m" else Bottleneck  # ultralytics turns c3k on for m/l/x: so does C3k2HiLo's row
    assert isinstance(hilo.model[22].m[0][0], C3k) and isinstance(hilo.model[13].m[0][0], inner)
    assert hilo.model[10].c == stock.model[10].c


@pytest.mark.parametrize("scale", ["n", "s", "m"])
def test_yolov8_width_and_depth_scaling_matches_stock_yolov8(scale: str) -> None:
    stock, hilo = build("yolov8", scale), build("yolov8-hilo", scale)
    for index in (8, 12, 15, 18, 21):  # C2f -> C2fHiLo
        assert isinstance(hilo.model[index], C2fHiLo), index
        assert _channels(hilo.model[index]) == _channels(stock.model[index]), index
        assert len(hilo.model[index].m) == len(stock.model[index].m), index  # depth multiple applied to n
    for index, source in zip((22, 23, 24), (15, 18, 21), strict=True):  # HiLoBlock on each Detect input
        assert _channels(hilo.model[index]) == (stock.model[source].cv2.conv.out_channels,) * 2
    untouched = [i for i in range(len(stock.model) - 1) if i not in (8, 12, 15, 18, 21)]
    for index in untouched:  # every other layer is the stock one, parameter for parameter
        assert hilo.model[index].np == stock.model[index].np, index


@pytest.mark.parametrize(
    ("name", "stock", "index"), [("rtdetr-hilo-l", "rtdetr-l", 11), ("rtdetr-hilo-resnet50", "rtdetr-resnet50", 6)]
)
def test_rtdetr_yaml_changes_only_aifi(name: str, stock: str, index: int) -> None:
    ours = tasks.RTDETRDetectionModel(str(hilovit.yolo.model_yaml(name)), nc=NC, verbose=False).eval()
    theirs = tasks.RTDETRDetectionModel(f"{stock}.yaml", nc=NC, verbose=False)
    assert len(ours.model) == len(theirs.model) and type(theirs.model[index]).__name__ == "AIFI"
    layer = ours.model[index]
    assert isinstance(layer, AIFIHiLo)
    assert layer.attn.dim == theirs.model[index].ma.embed_dim == 256 and layer.ffn.fc1.out_features == 1024
    assert layer.attn.num_heads == theirs.model[index].ma.num_heads == 8
    for i, (a, b) in enumerate(zip(ours.model, theirs.model, strict=True)):
        if i != index:
            assert type(a) is type(b) and a.np == b.np, i
    with torch.inference_mode():
        detections = ours(torch.zeros(1, 3, 160, 96))[0]
    assert detections.shape == (1, 300, 6) and torch.isfinite(detections).all()  # box, score, class per query


def test_model_yaml_scale_letters_follow_ultralytics() -> None:
    path = hilovit.yolo.model_yaml("yolov8-hilo-neck", "s")
    assert path.name == "yolov8s-hilo-neck.yaml" and not path.exists()  # ultralytics drops the letter to find it
    assert tasks.guess_model_scale(path) == "s"
    assert tasks.yaml_model_load(path)["scale"] == "s"
    assert hilovit.yolo.model_yaml("yolov8-hilo").name == "yolov8n-hilo.yaml"
    assert hilovit.yolo.model_yaml("rtdetr-hilo-l") == hilovit.yolo.CFG_DIR / "rtdetr-hilo-l.yaml"
    with pytest.raises(ValueError, match="rtdetr-hilo-l has a single scale; expected scale=None, got 's'"):
        hilovit.yolo.model_yaml("rtdetr-hilo-l", "s")
    names = hilovit.yolo.shipped_model_names()
    assert len(names) == 8 * 5 + 2 and {"yolov8x-hilo-head", "yolo11m-hilo", "rtdetr-hilo-resnet50"} <= set(names)


def test_width_n_vs_s_channels() -> None:
    expected = {"n": (256, 128, 64), "s": (512, 256, 128)}  # C2HiLo(10), C3k2HiLo(13) out, HiLoBlock(23)
    for scale, (c2hilo, c3k2hilo, block) in expected.items():
        model = build("yolo11-hilo", scale)
        assert _channels(model.model[10]) == (c2hilo, c2hilo)
        assert _channels(model.model[13])[1] == c3k2hilo
        assert _channels(model.model[23]) == (block, block)


def test_hiloblock_input_channels_and_repeats_from_yaml() -> None:
    """A HiLoBlock row changing the channel count: c1 from the source layer, c2 and n scaled like ultralytics'."""
    config = {
        "nc": NC,
        "scales": {"n": [0.5, 0.25, 1024]},
        "backbone": [[-1, 1, "Conv", [64, 3, 2]], [-1, 4, "HiLoBlock", [256, 2, 0.5]]],
        "head": [[-1, 1, "Conv", [128, 1, 1]]],
    }
    model, _ = tasks.parse_model(dict(config, scale="n"), ch=3, verbose=False)
    block = model[1]
    assert block.proj.conv.in_channels == 16 and block.proj.conv.out_channels == 64  # 64*0.25 -> 256*0.25
    assert len(block.m) == 2  # round(4 * 0.5)
    assert model[2].conv.in_channels == 64


def test_register_is_idempotent_and_patches_parse_model_once() -> None:
    patched = tasks.parse_model
    hilovit.yolo.register()
    assert tasks.parse_model is patched and tasks.HiLoBlock is HiLoBlock
    assert patched.__wrapped__.__module__ == "ultralytics.nn.tasks"


def test_unsupported_parse_model_layout_is_reported() -> None:
    original = tasks.parse_model.__wrapped__
    with pytest.raises(UnsupportedUltralyticsError, match="no set literal or `m is` test"):
        build_parse_model(original, {HiLoBlock: "DetectionModel"})  # in tasks, never named in parse_model
    with pytest.raises(UnsupportedUltralyticsError, match="NotAModule"):
        build_parse_model(original, {HiLoBlock: "NotAModule"})


def test_model_yaml_errors() -> None:
    with pytest.raises(ValueError, match=r"unknown model YAML 'yolo11-hilo-tail' \(did you mean .*'yolo11-hilo-head'"):
        hilovit.yolo.model_yaml("yolo11-hilo-tail")
    with pytest.raises(ValueError, match="scale must be one of"):
        hilovit.yolo.model_yaml("yolo11-hilo", "q")
