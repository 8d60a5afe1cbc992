import pytest

from hilovit.train import ConfigError, load_config


def test_paper_recipe_loads():
    cfg = load_config("configs/litv2_imagenet.yaml")
    assert (cfg.opt, cfg.weight_decay, cfg.warmup_epochs, cfg.epochs, cfg.clip_grad) == ("adamw", 0.05, 20, 300, 5.0)
    assert (cfg.mixup, cfg.cutmix, cfg.label_smoothing, cfg.re_prob, cfg.offset_lr_scale) == (0.8, 1.0, 0.1, 0.25, 0.01)
    assert cfg.peak_lr == pytest.approx(5e-4 * 1024 / 512)


def test_overrides_are_parsed_as_yaml_and_merge_model_kwargs():
    cfg = load_config("configs/litv2_nano_fmnist.yaml", ["lr=1e-3", "scale=[0.5, 1]", "model_kwargs={alpha: 0.5}"])
    assert cfg.peak_lr == 1e-3 and cfg.scale == [0.5, 1]
    assert cfg.model_kwargs == {"patch_size": 2, "alpha": 0.5}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["learning_rate=1"], "unknown config key.*learning_rate"),
        (["precision=fp8"], "precision must be one of"),
        (["epochs"], "key=value"),
        (["batch_size=0"], "batch_size must be >= 1"),
    ],
)
def test_bad_overrides_name_the_value(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_unknown_key_in_recipe(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("modle: litv2_s\n")
    with pytest.raises(ConfigError, match=r"modle.*r\.yaml"):
        load_config(recipe)
