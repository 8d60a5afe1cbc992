import pytest
import timm

import hilovit  # noqa: F401
from hilovit.train import load_config
from hilovit.train.optim import build_optimizer, build_scheduler


def test_offset_convs_get_a_hundredth_of_the_learning_rate_and_no_decay_on_norms():
    model = timm.create_model("litv2_nano", num_classes=4, in_chans=1, patch_size=2)
    cfg = load_config("litv2_nano_fmnist", ["warmup_epochs=0", "lr=1e-3"])
    optimizer = build_optimizer(model, cfg)
    build_scheduler(optimizer, cfg, updates_per_epoch=10)
    offsets = {id(p) for n, p in model.named_parameters() if ".dconv.conv_offset." in n}
    assert offsets
    for group in optimizer.param_groups:
        is_offset = any(id(p) in offsets for p in group["params"])
        assert all((id(p) in offsets) == is_offset for p in group["params"])
        assert group["lr"] == pytest.approx(1e-3 * (0.01 if is_offset else 1.0))
        assert (group["weight_decay"] == 0) == all(p.ndim == 1 for p in group["params"])
