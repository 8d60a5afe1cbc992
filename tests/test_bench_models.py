"""Smoke tests of benchmarks/bench_models.py: its official-structure twin and its command line."""

import pytest
import timm
import torch


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("bench_models")


def twin_pair(bench):
    model = timm.create_model("litv2_nano", pretrained=False, num_classes=10).eval()
    bench.randomise_dtm(model, torch.Generator().manual_seed(0))
    return model, bench.official_twin(model, "litv2_nano").eval()


def test_official_twin_matches_with_deformed_offsets(bench):
    model, twin = twin_pair(bench)
    offsets = [m.dconv.conv_offset.weight for m in twin.modules() if hasattr(m, "dconv")]
    assert len(offsets) == 3 and all(w.abs().sum() > 0 for w in offsets)
    assert bench.check_official(model, twin, torch.randn(2, 3, 64, 64)) <= bench.CHECK_TOLERANCE


def test_official_check_catches_a_difference(bench):
    model, twin = twin_pair(bench)
    with torch.no_grad():
        twin.layers[2].blocks[0].attn.l_proj.bias.add_(0.1)
    with pytest.raises(AssertionError, match="differs from the official structure"):
        bench.check_official(model, twin, torch.randn(1, 3, 64, 64))


def test_official_twin_keys_are_the_models(bench):
    model = timm.create_model("litv2_nano", pretrained=False)
    twin = bench.official_structure("litv2_nano")
    assert twin.state_dict().keys() == model.state_dict().keys()


def test_model_sets_resolve_and_unknown_names_fail(bench):
    names = bench.resolve_models("s,litv2_s,resnet18")
    assert names[:2] == ["litv2_s", bench.OFFICIAL] and names[-1] == "resnet18"
    with pytest.raises(ValueError, match="unknown model 'not_a_model'"):
        bench.resolve_models("not_a_model")
    with pytest.raises(SystemExit, match="unknown model 'not_a_model'"):
        bench.main(["--models", "not_a_model"])
    with pytest.raises(SystemExit, match="baseline 'resnet50' is not measured"):
        bench.main(["--device", "cpu", "--models", "litv2_nano", "--baseline", "resnet50", "--size", "32"])


def test_models_mode_times_litv2_s_against_its_official_structure(bench):
    args = ["--device", "cpu", "--models", "litv2_s,official_litv2_s", "--size", "32", "--batch", "1", "--threads", "1"]
    results = bench.main([*args, "--baseline", "litv2_s", "--repeats", "1", "--warmup", "0", "--breakdown"])
    assert [row["name"] for row in results["rows"]] == ["litv2_s", bench.OFFICIAL]
    (breakdown,) = results["breakdowns"]
    assert list(breakdown["by_label"]) == ["LITv2-S", bench.OFFICIAL_LABEL]
    # the official structure's DTM is torchvision's deformable convolution
    assert any(op["name"] == "torchvision::deform_conv2d" for op in breakdown["by_label"][bench.OFFICIAL_LABEL]["ops"])
    assert results["official_check_max_abs_diff"] <= bench.CHECK_TOLERANCE
    assert results["litv2_s_ratios"][bench.OFFICIAL] > 0


def test_dtm_mode_runs(bench):
    results = bench.main(
        ["--dtm", "--device", "cpu", "--size", "64", "--batch", "2", "--repeats", "1", "--warmup", "0"]
    )
    assert [r["mode"] for r in results["dtm"]] == ["forward", "forward+backward"] * 3
