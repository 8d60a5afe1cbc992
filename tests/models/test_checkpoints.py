"""Checkpoint loading: official layouts, strict key/shape checks, clear errors, safetensors."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import safetensors.torch
import timm
import torch
from torch import nn

from hilovit.models import (
    CheckpointFormatError,
    CheckpointMismatchError,
    LITv2Backbone,
    LoadResult,
    litv2_config,
    litv2_nano,
    load_official,
    read_arch,
    save_safetensors,
)


@pytest.fixture(scope="module")
def classifier() -> nn.Module:
    torch.manual_seed(0)
    return litv2_nano(num_classes=10).eval()


def backbone(**kwargs) -> LITv2Backbone:
    return LITv2Backbone(**litv2_config("litv2_nano"), **kwargs).eval()


def assert_same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        torch.testing.assert_close(sa[key], sb[key], rtol=0, atol=0, msg=key)


@pytest.mark.parametrize("wrap", ["model", "plain", "module_prefix", "compiled_prefix"])
def test_classification_layouts_load(classifier: nn.Module, tmp_path: Path, wrap: str) -> None:
    state = classifier.state_dict()
    content = {
        "model": {"model": state, "epoch": 300, "max_accuracy": 71.5},
        "plain": state,
        "module_prefix": {f"module.{k}": v for k, v in state.items()},
        "compiled_prefix": {f"_orig_mod.module.{k}": v for k, v in state.items()},  # torch.compile(DDP(model))
    }[wrap]
    torch.save(content, tmp_path / "ckpt.pth")
    target = litv2_nano(num_classes=10)
    result = load_official(target, tmp_path / "ckpt.pth")
    assert result.missing == () and result.dropped == ()
    assert_same_state(target, classifier)


def test_mmdet_checkpoint_keeps_backbone_keys_only(classifier: nn.Module) -> None:
    source = backbone()
    detector = {f"backbone.{k}": v for k, v in source.state_dict().items()}
    detector |= {
        "neck.lateral_convs.0.conv.weight": torch.zeros(8, 32, 1, 1),
        "bbox_head.cls.bias": torch.zeros(3),
    }
    target = backbone()
    result = load_official(target, {"meta": {"epoch": 12}, "state_dict": detector})
    assert set(result.dropped) == {"neck.lateral_convs.0.conv.weight", "bbox_head.cls.bias"}
    assert_same_state(target, source)


def test_classification_checkpoint_into_backbone_needs_explicit_consent(classifier: nn.Module) -> None:
    target = backbone()
    with pytest.raises(CheckpointMismatchError, match="allow_missing") as info:
        load_official(target, {"model": classifier.state_dict()})
    error = info.value
    assert error.missing == [f"norm{i}.{p}" for i in (1, 2, 3) for p in ("weight", "bias")]
    assert error.unexpected == [] and error.mismatched == []
    assert "norm1.weight" in str(error) and "norm3.bias" in str(error)

    result = load_official(target, {"model": classifier.state_dict()}, allow_missing=("norm",))
    assert set(result.missing) == set(error.missing)
    assert set(result.dropped) == {"norm.weight", "norm.bias", "head.weight", "head.bias"}
    torch.testing.assert_close(target.patch_embed.proj.weight, classifier.patch_embed.proj.weight)


def test_backbone_checkpoint_into_classifier_drops_output_norms() -> None:
    source = backbone(with_norm0=True)
    target = litv2_nano(num_classes=10)
    with pytest.raises(CheckpointMismatchError, match=r"head\.weight"):
        load_official(target, source.state_dict())
    result = load_official(target, source.state_dict(), allow_missing=("norm.", "head."))
    assert set(result.dropped) == {f"norm{i}.{p}" for i in range(4) for p in ("weight", "bias")}
    assert set(result.missing) == {"norm.weight", "norm.bias", "head.weight", "head.bias"}


def test_allow_missing_takes_a_single_prefix(classifier: nn.Module) -> None:
    headless = {k: v for k, v in classifier.state_dict().items() if not k.startswith("head.")}
    with pytest.raises(CheckpointMismatchError, match=r"2 missing from the checkpoint: head\.weight, head\.bias"):
        load_official(litv2_nano(num_classes=10), headless, allow_missing="patch_embed")  # not 'p', 'a', 't', ...
    result = load_official(litv2_nano(num_classes=10), headless, allow_missing="head.")
    assert result.missing == ("head.weight", "head.bias")
    with pytest.raises(TypeError, match="allow_missing must be a key prefix or an iterable of them"):
        load_official(litv2_nano(num_classes=10), headless, allow_missing=[b"head."])


def test_compiled_and_data_parallel_models_load_into_the_wrapped_model(classifier: nn.Module) -> None:
    for wrap in (torch.compile, nn.DataParallel, lambda m: torch.compile(nn.DataParallel(m))):
        target = litv2_nano(num_classes=10)
        assert load_official(wrap(target), classifier.state_dict()) == LoadResult(missing=(), dropped=())
        assert_same_state(target, classifier)


def test_a_key_prefix_on_one_side_is_pointed_out(classifier: nn.Module) -> None:
    features = timm.create_model("litv2_nano", features_only=True)
    with pytest.raises(CheckpointMismatchError, match=r"the model's keys have the prefix 'model\.' that the chec"):
        load_official(features, classifier.state_dict())
    load_official(features.model, classifier.state_dict())  # what the hint says to do
    prefixed = {f"model.{k}": v for k, v in classifier.state_dict().items()}
    with pytest.raises(CheckpointMismatchError, match=r"the checkpoint's keys have the prefix 'model\.' that the m"):
        load_official(litv2_nano(num_classes=10), prefixed)


def test_wrong_architecture_lists_keys_and_shapes(classifier: nn.Module) -> None:
    target = timm.create_model("litv2_tiny", num_classes=10)
    with pytest.raises(CheckpointMismatchError) as info:
        load_official(target, classifier.state_dict())
    error, message = info.value, str(info.value)
    assert "layers.0.blocks.1.norm2.weight" in error.missing  # tiny has two blocks in stage 1, nano one
    assert ("patch_embed.proj.weight", (32, 3, 4, 4), (64, 3, 4, 4)) in error.mismatched
    assert "LITv2" in message and "patch_embed.proj.weight: (32, 3, 4, 4) vs (64, 3, 4, 4)" in message
    assert "missing from the checkpoint" in message and "more" in message  # long lists are cut, with a count
    assert "hint" not in message  # the num_classes / allow_missing advice would mislead here


def test_unexpected_keys_and_class_count_mismatch(classifier: nn.Module) -> None:
    state = {**classifier.state_dict(), "layers.9.extra.weight": torch.zeros(1)}
    with pytest.raises(CheckpointMismatchError, match=r"1 unexpected in the checkpoint: layers\.9\.extra\.weight"):
        load_official(litv2_nano(num_classes=10), state)
    with pytest.raises(CheckpointMismatchError, match="num_classes") as info:
        load_official(litv2_nano(num_classes=5), classifier.state_dict())
    assert [k for k, _, _ in info.value.mismatched] == ["head.weight", "head.bias"]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.pth"):
        load_official(litv2_nano(), tmp_path / "nope.pth")
    with pytest.raises(CheckpointFormatError, match="not a file"):
        load_official(litv2_nano(), tmp_path)


@pytest.mark.parametrize("damage", ["random", "truncated", "empty", "text"])
def test_corrupt_files_are_named(classifier: nn.Module, tmp_path: Path, damage: str) -> None:
    good = tmp_path / "good.pth"
    torch.save({"model": classifier.state_dict()}, good)
    data = {
        "random": torch.randint(0, 256, (4096,), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
        .numpy()
        .tobytes(),
        "truncated": good.read_bytes()[: good.stat().st_size // 2],
        "empty": b"",
        "text": b"this is not a checkpoint\n",
    }[damage]
    bad = tmp_path / "bad.pth"
    bad.write_bytes(data)
    with pytest.raises(CheckpointFormatError, match=r"bad\.pth' is not a valid checkpoint"):
        load_official(litv2_nano(num_classes=10), bad)


def test_pickled_objects_get_a_way_out(classifier: nn.Module, tmp_path: Path) -> None:
    path = tmp_path / "with_args.pth"
    torch.save({"model": classifier.state_dict(), "args": argparse.Namespace(lr=1e-3)}, path)
    with pytest.raises(CheckpointFormatError, match=r"argparse\.Namespace.*weights_only=False"):
        load_official(litv2_nano(num_classes=10), path)


def test_objects_without_a_state_dict_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(CheckpointFormatError, match=r"'model'.*'state_dict'.*\['epoch', 'optimizer'\]"):
        load_official(litv2_nano(), {"epoch": 3, "optimizer": {"lr": 0.1}})
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(CheckpointFormatError, match=r"list\.pth' holds a list, expected a dict of tensors"):
        load_official(litv2_nano(), tmp_path / "list.pth")


def test_safetensors_round_trip(classifier: nn.Module, tmp_path: Path) -> None:
    path = save_safetensors(classifier, tmp_path / "nano.safetensors")
    assert [p.name for p in tmp_path.iterdir()] == ["nano.safetensors"]  # no temporary file left behind
    target = litv2_nano(num_classes=10).eval()
    load_official(target, path)
    assert_same_state(target, classifier)
    image = torch.randn(1, 3, 40, 40)
    with torch.no_grad():
        torch.testing.assert_close(target(image), classifier(image))


def test_safetensors_errors(classifier: nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_safetensors(classifier, tmp_path / "nano.safetensors")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointFormatError, match=r"nano\.safetensors' is not a valid safetensors"):
        load_official(litv2_nano(num_classes=10), path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_safetensors(classifier, tmp_path / "missing_dir" / "x.safetensors")
    with pytest.raises(IsADirectoryError, match=f"path {tmp_path} is a directory: expected a file path such as "):
        save_safetensors(classifier, tmp_path)

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", fail)
    with pytest.raises(OSError, match="disk full"):
        save_safetensors(classifier, path)
    assert [p.name for p in tmp_path.iterdir()] == ["nano.safetensors"]  # old file intact, no temp file


def test_timm_pretrained_file_goes_through_the_official_filter(tmp_path: Path) -> None:
    source = litv2_nano()  # timm drops the head of a checkpoint whose class count differs from the cfg's
    path = tmp_path / "official.pth"
    torch.save({"model": source.state_dict()}, path)
    model = timm.create_model("litv2_nano", pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    assert_same_state(model, source)


def _pretrained(path: Path | str, **kwargs) -> nn.Module:
    return timm.create_model("litv2_nano", pretrained=True, pretrained_cfg_overlay=dict(file=str(path)), **kwargs)


def test_timm_pretrained_file_gets_the_checkpoint_checks(tmp_path: Path) -> None:
    text = tmp_path / "notes.pth"
    text.write_text("these are not weights\n")
    with pytest.raises(CheckpointFormatError, match=r"notes\.pth' is not a valid checkpoint"):
        _pretrained(text)
    with pytest.raises(FileNotFoundError, match=r"checkpoint file not found: .*nope\.pth"):
        _pretrained(tmp_path / "nope.pth")
    torch.save(timm.create_model("litv2_tiny").state_dict(), tmp_path / "tiny.pth")
    with pytest.raises(CheckpointMismatchError, match=r"patch_embed\.proj\.weight: \(64, 3, 4, 4\) vs \(32, 3, 4, 4\)"):
        _pretrained(tmp_path / "tiny.pth")


def test_timm_pretrained_file_still_adapts_the_head_and_features(tmp_path: Path) -> None:
    source = litv2_nano()
    torch.save({"model": source.state_dict()}, tmp_path / "cls.pth")
    dense = backbone()
    detector = {f"backbone.{k}": v for k, v in dense.state_dict().items()}
    torch.save({"state_dict": detector}, tmp_path / "det.pth")
    tuned = _pretrained(tmp_path / "cls.pth", num_classes=10)  # timm drops the 1000-class head
    torch.testing.assert_close(tuned.patch_embed.proj.weight, source.patch_embed.proj.weight)
    assert tuned.head.out_features == 10
    features = _pretrained(tmp_path / "det.pth", features_only=True)  # a backbone checkpoint has no head, no norm
    torch.testing.assert_close(features.model.patch_embed.proj.weight, dense.patch_embed.proj.weight)
    with pytest.raises(CheckpointMismatchError, match=r"missing from the checkpoint: norm\.weight"):
        _pretrained(tmp_path / "det.pth")  # a classifier of the checkpoint's class count needs its head


def test_safetensors_carry_the_architecture(classifier: nn.Module, tmp_path: Path) -> None:
    arch = {"model_name": "litv2_nano", "num_classes": 10}
    path = save_safetensors(classifier, tmp_path / "nano.safetensors", arch=arch)
    assert read_arch(path) == arch
    assert read_arch(save_safetensors(classifier, tmp_path / "plain.safetensors")) is None
    model = timm.create_model(
        "litv2_nano", num_classes=10, pretrained=True, pretrained_cfg_overlay=dict(file=str(path))
    )
    trunk = {k: v for k, v in classifier.state_dict().items() if not k.startswith("head.")}  # timm resets the head
    assert all(torch.equal(model.state_dict()[k], v) for k, v in trunk.items())  # the metadata does not disturb timm
    with pytest.raises(ValueError, match=r"arch must name the model as arch\['model_name'\]"):
        save_safetensors(classifier, tmp_path / "x.safetensors", arch={"num_classes": 10})
    with pytest.raises(ValueError, match="arch must hold JSON values"):
        save_safetensors(
            classifier, tmp_path / "x.safetensors", arch={"model_name": "litv2_nano", "norm": nn.LayerNorm}
        )
