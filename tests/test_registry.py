"""The one model registry: every family listed and built by name, bad names and keywords get one clear error,
and a hilovit file rebuilds its own model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from hilovit.dense.backbone import VARIANTS
from hilovit.dense.builders import FAMILIES
from hilovit.models import (
    CheckpointFormatError,
    LITv2,
    LITv2Backbone,
    create_model,
    create_model_from_file,
    list_models,
    save_safetensors,
)
from hilovit.models.registry import model_entry


def test_every_family_is_listed() -> None:
    names = list_models()
    assert names == sorted(names)
    expected = {f"{family}_{variant}" for family in FAMILIES for variant in VARIANTS}
    expected |= {f"litv2_{variant}_backbone" for variant in VARIANTS}
    expected |= {"litv2_nano", "litv2_s", "litv2_b_384", "hilo3d_video_nano", "hilo3d_unet_nano"}
    assert expected <= set(names)
    assert list_models("retinanet_*") == [f"retinanet_litv2_{v}" for v in sorted(VARIANTS)]
    assert list_models("*_nano", task="segment") == ["semantic_fpn_litv2_nano"]
    assert model_entry("hilo3d_unet_nano").task == "volume"


@pytest.mark.parametrize(
    ("name", "kwargs", "kind"),
    [
        ("litv2_nano", {"num_classes": 3, "img_size": 32}, LITv2),
        ("litv2_nano_backbone", {"out_indices": (2, 3)}, LITv2Backbone),
        ("retinanet_litv2_nano", {"num_classes": 2, "min_size": 64, "max_size": 64, "fpn": "hilo"}, nn.Module),
        ("semantic_fpn_litv2_nano", {"num_classes": 4}, nn.Module),
        ("hilo3d_video_nano", {"num_classes": 5}, nn.Module),
    ],
)
def test_create_model_builds_every_family(name: str, kwargs: dict, kind: type) -> None:
    model = create_model(name, **kwargs)
    assert isinstance(model, kind)
    if name == "retinanet_litv2_nano":
        assert model.transform.min_size == (64,) and model.head.classification_head.num_classes == 3


def test_unknown_name_gets_close_matches() -> None:
    with pytest.raises(ValueError, match=r"unknown model 'retinanet_litv2_nan' \(did you mean 'retinanet_litv2_nano'"):
        create_model("retinanet_litv2_nan")


@pytest.mark.parametrize(
    ("name", "keyword", "hint"),
    [
        ("litv2_nano", "patch_sise", "patch_size"),
        ("retinanet_litv2_nano", "num_clases", "num_classes"),
        ("semantic_fpn_litv2_nano", "fpn_option", "fpn_options"),
        ("hilo3d_unet_nano", "width", "widths"),
    ],
)
def test_unknown_keyword_is_a_value_error_naming_it(name: str, keyword: str, hint: str) -> None:
    with pytest.raises(ValueError, match=rf"unknown {name} keyword '{keyword}' \(did you mean '{hint}'.*; known: "):
        create_model(name, **{keyword: 1})


def test_safetensors_file_rebuilds_its_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    arch = {"model_name": "litv2_nano", "num_classes": 3, "in_chans": 1, "img_size": 32}
    model = create_model(**arch).eval()
    path = save_safetensors(model, tmp_path / "model.safetensors", arch=arch)
    rebuilt = create_model_from_file(path).eval()
    image = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(image), model(image), rtol=0, atol=0)
    assert create_model_from_file(path, drop_path_rate=0.1).num_classes == 3  # overrides replace recorded keywords


def test_detector_file_rebuilds_with_its_settings(tmp_path: Path) -> None:
    arch = {"model_name": "fasterrcnn_litv2_nano", "num_classes": 2, "min_size": 96, "max_size": 96}
    model = create_model(**arch)
    path = save_safetensors(model, tmp_path / "det.safetensors", arch=arch)
    rebuilt = create_model_from_file(path)
    assert rebuilt.transform.min_size == (96,)
    for key, value in model.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[key], value), key


def test_training_checkpoint_rebuilds_its_model(tmp_path: Path) -> None:
    arch = {"model_name": "hilo3d_video_nano", "num_classes": 4}
    model = create_model(**arch)
    path = tmp_path / "last.pt"
    rng = {"numpy": np.random.get_state()}  # a training checkpoint's random state: an ndarray, read weights_only
    torch.save({"format": "hilovit-train", "arch": arch, "model": model.state_dict(), "rng": rng}, path)
    assert create_model_from_file(path).head.out_features == 4


def test_files_without_an_architecture_say_how_to_load_them(tmp_path: Path) -> None:
    path = save_safetensors(create_model("litv2_nano"), tmp_path / "plain.safetensors")
    with pytest.raises(ValueError, match=r"records no architecture.*load_official"):
        create_model_from_file(path)
    text = tmp_path / "notes.pt"
    text.write_text("101 reasons\n")
    with pytest.raises(
        CheckpointFormatError, match=r"notes\.pt' is not a valid checkpoint: it is text, starting '101 "
    ):
        create_model_from_file(text)


@pytest.mark.parametrize("name", list_models("*nano*"))
def test_every_nano_model_builds_by_name_alone(name: str) -> None:
    entry = model_entry(name)
    model = create_model(name)
    assert sum(p.numel() for p in model.parameters()) > 0
    assert {"num_classes"} <= entry.keywords or entry.task == "backbone"
