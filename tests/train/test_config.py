import dataclasses

import pytest

from hilovit.train import ConfigError, TrainConfig, load_config
from hilovit.train.config import VALUE_RULES, bundled_recipes


def test_paper_recipe_loads():
    cfg = load_config("litv2_imagenet")
    assert (cfg.opt, cfg.weight_decay, cfg.warmup_epochs, cfg.epochs, cfg.clip_grad) == ("adamw", 0.05, 20, 300, 5.0)
    assert (cfg.mixup, cfg.cutmix, cfg.label_smoothing, cfg.re_prob, cfg.offset_lr_scale) == (0.8, 1.0, 0.1, 0.25, 0.01)
    assert cfg.peak_lr == pytest.approx(5e-4 * 1024 / 512)


def test_overrides_are_parsed_as_yaml_and_merge_model_kwargs():
    cfg = load_config("litv2_nano_fmnist", ["lr=1e-3", "scale=[0.5, 1]", "model_kwargs={alpha: 0.5}"])
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


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("batch_size=abc", "batch_size must be an integer, got 'abc'"),
        ("epochs=1.5", "epochs must be an integer, got 1.5"),
        ("ema=maybe", "ema must be true or false, got 'maybe'"),
        ("lr=abc", "lr must be a number or null, got 'abc'"),
        ("label_smoothing=2", r"label_smoothing must be in \[0, 1\), got 2"),
        ("img_size=0", "img_size must be >= 1, got 0"),
        ("train_subset=0", "train_subset must be >= 1, got 0"),
        ("test_subset=0", "test_subset must be >= 1, got 0"),
        ("hflip=2", r"hflip must be in \[0, 1\], got 2"),
        ("mixup=-1", "mixup must be >= 0, got -1"),
        ("ema_decay=2", r"ema_decay must be in \(0, 1\), got 2"),
        ("clip_grad=-1", "clip_grad must be >= 0, got -1"),
        ("warmup_epochs=-1", "warmup_epochs must be >= 0, got -1"),
        ("scale=[1.0,0.5]", r"scale must be \[min, max\] with 0 < min <= max <= 1, got \[1.0, 0.5\]"),
        ("max_steps=0", "max_steps must be >= 1, got 0"),
        ("max_steps=-1", "max_steps must be >= 1, got -1"),
        ("model_kwargs=[1]", "model_kwargs must be a mapping, got"),
        ("time_budget=.inf", "time_budget must be a finite number > 0, got inf"),
        ("checkpoint_minutes=0", "checkpoint_minutes must be a finite number > 0, got 0"),
        ("task=painting", "task must be one of"),
        ("scene_images=[4]", "scene_images must be"),
    ],
)
def test_bad_values_name_the_key_the_value_and_what_is_valid(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("litv2_nano_fmnist", [override])


def test_every_value_rule_is_a_field_and_every_recipe_passes():
    assert set(VALUE_RULES) <= {f.name for f in dataclasses.fields(TrainConfig)}
    recipes = bundled_recipes()
    assert {"litv2_nano_fmnist", "retinanet_litv2_nano_scenes", "hilo3d_unet_mni152"} <= set(recipes)
    for recipe in recipes:
        load_config(recipe)


def test_broken_yaml_names_the_recipe_file_and_line(tmp_path):
    recipe = tmp_path / "broken.yaml"
    recipe.write_text("epochs: 3\nmodel: [litv2\n")
    with pytest.raises(ConfigError, match=r"recipe .*broken\.yaml is not valid YAML at line 3"):
        load_config(recipe)
    with pytest.raises(ConfigError, match=r"override 'scale=\[1' is not valid YAML"):
        load_config(None, ["scale=[1"])
