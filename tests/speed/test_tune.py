"""`hilovit tune` on tiny sizes: distinct structures, constraints, Pareto front, and a config the builders take."""

import json

import pytest
import timm
import torch

from hilovit.attention.hilo import HiLo
from hilovit.speed.measure import Row
from hilovit.speed.tune import TuneSettings, hilo_configs, pareto_front

TINY = ["--batch-size", "1", "--warmup", "0", "--repeats", "1", "--threads", "1", "--alpha", "0.5,1"]


def test_configs_that_build_the_same_heads_are_tried_once():
    configs = hilo_configs(TuneSettings("litv2_nano", alphas=(0.9, 0.95, 1.0), windows=(1, 2)))
    # stage heads 4 and 8: alphas 0.9 and 0.95 give the same Lo-Fi heads (3 and 7); window 1 ignores alpha
    assert len(configs) == 1 + 2 + 2 + 2
    default = [c for c in configs if c.kwargs == {"alpha": 0.9, "local_ws": [0, 0, 2, 1]}]
    assert len(default) == 1 and default[0].hifi_heads == 1


def test_tune_model_writes_builder_kwargs_within_constraints(tmp_path, run):
    out = tmp_path / "tuned.json"
    args = ["tune", "litv2_nano", "--img-size", "32", *TINY, "--alpha", "0.5", "--min-hifi-heads", "1"]
    result = run([*args, "--output", str(out)])
    assert len(result.report.rows) == 4 and result.front
    assert result.chosen.hifi_heads >= 1
    kwargs = json.loads(out.read_text())
    assert kwargs == result.chosen.kwargs and set(kwargs) == {"alpha", "local_ws"}
    model = timm.create_model("litv2_nano", **kwargs).eval()
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 1000)


def test_tune_layer_with_a_flops_cap_and_sdpa_backends(tmp_path, run):
    out = tmp_path / "layer.json"
    args = ["tune", "hilo", "--dim", "16", "--heads", "2", "--img-size", "4", *TINY, "--sdpa", "flash,math"]
    result = run([*args, "--max-gmacs", "1e-4", "--output", str(out)])
    assert {row.name.split()[-1] for row in result.report.rows} == {"sdpa=flash", "sdpa=math"}
    assert all(row.gmacs <= 1e-4 for row in result.report.rows if row.name == result.chosen.name)
    HiLo(16, 2, **json.loads(out.read_text()))


def test_unmeetable_constraints_write_nothing(tmp_path, run):
    out = tmp_path / "none.json"
    args = ["tune", "hilo", "--dim", "16", "--heads", "2", "--img-size", "4", *TINY, "--max-gmacs", "0"]
    result = run([*args, "--output", str(out)])
    assert result.chosen is None and not out.exists()


def test_bad_tune_arguments_are_named(run):
    with pytest.raises(ValueError, match=r"unknown tune target 'resnet50'; known: hilo, litv2_b"):
        run(["tune", "resnet50"])
    with pytest.raises(ValueError, match="unknown SDPA backend"):
        run(["tune", "hilo", "--sdpa", "fast"])


def test_pareto_front_drops_dominated_rows():
    def row(name, gmacs, speed):
        return Row(name, name, "forward", 1, 1, 1, 0, gmacs, gmacs, speed)

    rows = [row("a", 1.0, 10.0), row("b", 2.0, 5.0), row("c", 2.0, 20.0), row("d", 0.5, 1.0)]
    assert [r.name for r in pareto_front(rows)] == ["d", "a", "c"]
