"""LITv2 detectors on torchvision: the paper's parameter counts, odd sizes, losses, weights and errors."""

from __future__ import annotations

import pytest
import timm
import torch

from hilovit.dense import (
    HiLoRetinaNetHead,
    dense_flops,
    fasterrcnn_litv2,
    litv2_backbone,
    load_backbone_weights,
    maskrcnn_litv2,
    retinanet_litv2,
)
from hilovit.dense.detection import HiLoBoxHead, HiLoRPNHead, detector_keywords
from hilovit.models import CheckpointMismatchError

# Small odd images, kept at their size: no resizing (min/max size) and no padding (size_divisible=1).
SMALL = dict(min_size=61, max_size=93, size_divisible=1, box_detections_per_img=5)


def params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def small(builder, **kwargs):
    if builder is retinanet_litv2:
        kwargs = {**SMALL, "detections_per_img": 5, **kwargs}
        del kwargs["box_detections_per_img"]
        return builder("nano", 3, **kwargs)
    return builder("nano", 3, **{**SMALL, **kwargs})


@pytest.mark.parametrize(
    ("builder", "measured", "paper"),
    [(retinanet_litv2, 38_034_997, 38e6), (fasterrcnn_litv2, 44_710_876, None), (maskrcnn_litv2, 47_354_413, 47e6)],
)
def test_litv2_s_parameter_counts_match_the_paper(builder, measured, paper):
    with torch.device("meta"):  # counts need no initialised weights
        count = params(builder("s", 80))
    assert count == measured
    if paper is not None:  # the paper's COCO table, rounded to millions
        assert abs(count - paper) < 1e6


def test_hilo_options_add_parameters_on_top_of_the_plain_model():
    plain = params(retinanet_litv2("nano", 3))
    assert params(retinanet_litv2("nano", 3, fpn="hilo")) > plain
    assert params(retinanet_litv2("nano", 3, hilo_head=True)) > plain


@pytest.mark.parametrize("builder", [fasterrcnn_litv2, maskrcnn_litv2])
def test_two_stage_hilo_heads_add_exactly_one_block_each(builder):
    with torch.device("meta"):
        plain = builder("nano", 3)
        both = builder("nano", 3, hilo_rpn_head=True, hilo_box_head=True, box_head_options={"mlp_ratio": 2.0})
    assert isinstance(both.rpn.head, HiLoRPNHead) and isinstance(both.roi_heads.box_head, HiLoBoxHead)
    rpn_block, box_block = params(both.rpn.head.hilo), params(both.roi_heads.box_head.hilo)
    assert params(both) == params(plain) + rpn_block + box_block
    assert box_block < rpn_block  # mlp_ratio 2 instead of 4
    assert both.rpn.head.hilo.block.attn.ws == 4 and both.roi_heads.box_head.hilo.block.attn.ws == 2


@pytest.mark.parametrize(
    ("builder", "fpn"),
    [(retinanet_litv2, "plain"), (retinanet_litv2, "hilo"), (fasterrcnn_litv2, "plain"), (maskrcnn_litv2, "hilo")],
)
def test_eval_forward_on_odd_sizes(builder, fpn):
    torch.manual_seed(0)
    model = small(builder, fpn=fpn).eval()
    images = [torch.rand(3, 67, 93), torch.rand(3, 61, 45)]
    with torch.no_grad():
        detections = model(images)
    assert len(detections) == 2
    for image, found in zip(images, detections, strict=True):
        assert found["boxes"].shape[1] == 4 and len(found["boxes"]) == len(found["scores"]) <= 5
        if len(found["boxes"]):
            assert found["boxes"][:, 2].max() <= image.shape[2] and found["boxes"][:, 3].max() <= image.shape[1]
        if builder is maskrcnn_litv2:
            assert found["masks"].shape[-2:] == image.shape[-2:]


def test_default_transform_pads_an_odd_image_and_still_runs():
    model = retinanet_litv2("nano", 3, min_size=93, max_size=155).eval()  # 93x153 -> padded to 96x160
    with torch.no_grad():
        (found,) = model([torch.rand(3, 93, 153)])
    assert found["boxes"].shape[1] == 4


def _targets(with_masks: bool) -> list[dict[str, torch.Tensor]]:
    targets = [
        {"boxes": torch.tensor([[3.0, 4.0, 30.0, 40.0]]), "labels": torch.tensor([1])},
        {"boxes": torch.tensor([[1.0, 2.0, 20.0, 21.0], [5.0, 5.0, 40.0, 30.0]]), "labels": torch.tensor([2, 3])},
    ]
    if with_masks:
        for target, (h, w) in zip(targets, [(67, 93), (61, 45)], strict=True):
            masks = torch.zeros(len(target["boxes"]), h, w, dtype=torch.uint8)
            for mask, (x0, y0, x1, y1) in zip(masks, target["boxes"].int().tolist(), strict=True):
                mask[y0:y1, x0:x1] = 1
            target["masks"] = masks
    return targets


@pytest.mark.parametrize(
    ("builder", "options", "losses"),
    [
        (retinanet_litv2, dict(fpn="hilo", hilo_head=True), {"classification", "bbox_regression"}),
        (maskrcnn_litv2, dict(fpn="hilo"), {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness"}),
        (
            fasterrcnn_litv2,
            dict(hilo_rpn_head=True, hilo_box_head=True, box_batch_size_per_image=16),
            {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"},
        ),
        (maskrcnn_litv2, dict(hilo_box_head=True, box_batch_size_per_image=16), {"loss_mask", "loss_classifier"}),
    ],
)
def test_train_mode_returns_losses_that_reach_the_hilo_blocks(builder, options, losses):
    torch.manual_seed(0)
    model = small(builder, **options).train()
    images = [torch.rand(3, 67, 93), torch.rand(3, 61, 45)]
    out = model(images, _targets(with_masks=builder is maskrcnn_litv2))
    assert losses <= set(out) and all(torch.isfinite(v) for v in out.values())
    sum(out.values()).backward()
    hilo = [p for name, p in model.named_parameters() if "hilo" in name]
    assert hilo and all(p.grad is not None for p in hilo)
    assert model.backbone.body.patch_embed.proj.weight.grad.abs().sum() > 0


def test_two_stage_hilo_heads_train_a_few_steps():
    torch.manual_seed(0)
    model = small(fasterrcnn_litv2, hilo_rpn_head=True, hilo_box_head=True, box_batch_size_per_image=16).train()
    before = {name: p.detach().clone() for name, p in model.named_parameters() if ".hilo." in name}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = [torch.rand(3, 67, 93), torch.rand(3, 61, 45)]
    for _ in range(3):
        loss = sum(model(images, _targets(with_masks=False)).values())
        assert torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    changed = [name for name, p in model.named_parameters() if name in before and not torch.equal(p, before[name])]
    assert {name.split(".hilo.")[0] for name in changed} == {"rpn.head", "roi_heads.box_head"}


def test_hilo_head_keeps_the_tower_keys_of_torchvision():
    plain, hilo = retinanet_litv2("nano", 3), retinanet_litv2("nano", 3, hilo_head=True)
    assert isinstance(hilo.head, HiLoRetinaNetHead)
    result = hilo.head.load_state_dict(plain.head.state_dict(), strict=False)
    assert not result.unexpected_keys and result.missing_keys
    assert all(key.startswith("hilo.") for key in result.missing_keys)


def test_plain_two_stage_checkpoint_loads_into_hilo_heads_with_only_hilo_keys_missing():
    torch.manual_seed(0)
    plain = fasterrcnn_litv2("nano", 3)
    hilo = fasterrcnn_litv2("nano", 3, hilo_rpn_head=True, hilo_box_head=True)
    result = hilo.load_state_dict(plain.state_dict(), strict=False)
    assert not result.unexpected_keys
    assert {key.split(".hilo.")[0] for key in result.missing_keys} == {"rpn.head", "roi_heads.box_head"}
    for key in ("rpn.head.conv.0.0.weight", "rpn.head.cls_logits.weight", "roi_heads.box_head.fc7.weight"):
        assert torch.equal(hilo.state_dict()[key], plain.state_dict()[key])


def test_torchvision_head_arguments_keep_their_meaning():
    from torchvision.models.detection.faster_rcnn import TwoMLPHead
    from torchvision.models.detection.rpn import RPNHead

    rpn, box = RPNHead(256, 3, conv_depth=2), TwoMLPHead(256 * 7 * 7, 1024)
    model = fasterrcnn_litv2("nano", 3, rpn_head=rpn, box_head=box)
    assert model.rpn.head is rpn and model.roi_heads.box_head is box
    hilo_box = fasterrcnn_litv2("nano", 3, rpn_head=rpn, hilo_box_head=True)  # mixed: theirs and ours
    assert hilo_box.rpn.head is rpn and isinstance(hilo_box.roi_heads.box_head, HiLoBoxHead)
    with pytest.raises(ValueError, match=r"hilo_rpn_head=True and rpn_head=RPNHead\(...\) both set the head"):
        fasterrcnn_litv2("nano", 3, rpn_head=rpn, hilo_rpn_head=True)


def test_backbone_weights_from_classification_and_detector_checkpoints():
    classifier = timm.create_model("litv2_nano").state_dict()
    model = retinanet_litv2("nano", 3, backbone_weights={"model": classifier})
    assert torch.equal(model.backbone.body.patch_embed.proj.weight, classifier["patch_embed.proj.weight"])
    donor = litv2_backbone("nano", out_indices=(1, 2, 3))
    detector = {"state_dict": {**{f"backbone.{k}": v for k, v in donor.state_dict().items()}, "neck.x": torch.ones(1)}}
    target = litv2_backbone("nano", out_indices=(1, 2, 3))
    result = load_backbone_weights(target, detector)
    assert result.missing == () and result.dropped == ("neck.x",)
    assert torch.equal(target.norm3.weight, donor.norm3.weight)
    with pytest.raises(CheckpointMismatchError, match="shape mismatch"):
        load_backbone_weights(litv2_backbone("tiny", out_indices=(1, 2, 3)), detector)


def test_classification_checkpoint_leaves_only_the_output_norms_initialised():
    result = load_backbone_weights(litv2_backbone("nano"), timm.create_model("litv2_nano").state_dict())
    assert {key.split(".")[0] for key in result.missing} == {"norm1", "norm2", "norm3"}
    assert set(result.dropped) == {"norm.weight", "norm.bias", "head.weight", "head.bias"}


def test_dense_flops_counts_hilo_fpn_and_restores_the_mode():
    plain, hilo = small(retinanet_litv2).train(), small(retinanet_litv2, fpn="hilo")
    flops = dense_flops(plain, 33, 45)
    assert flops > 0 and plain.training
    assert dense_flops(hilo, 33, 45) > flops


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: retinanet_litv2("xl"), "unknown LITv2 variant 'xl'"),
        (lambda: maskrcnn_litv2("nano", 0), r"num_classes .* must be an int >= 1, got 0"),
        (lambda: fasterrcnn_litv2("nano", True), "got True"),
        (lambda: retinanet_litv2("nano", 3, fpn="bifpn"), "unknown fpn 'bifpn'"),
        (lambda: retinanet_litv2("nano", 3, fpn_options={"alpha": 0.5}), "fpn='plain' takes no options"),
        (lambda: retinanet_litv2("nano", 3, head_options={"window_size": 2}), "need hilo_head=True"),
        (lambda: fasterrcnn_litv2("nano", 3, box_head_options={"alpha": 0.5}), "need hilo_box_head=True"),
        (lambda: maskrcnn_litv2("nano", 3, rpn_head_options={"alpha": 0.5}), "need hilo_rpn_head=True"),
        (lambda: retinanet_litv2("nano", 3, fpn="hilo", fpn_options={"window_sizes": (2,)}), "one per level"),
    ],
)
def test_bad_arguments_name_the_value(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize(
    ("builder", "keywords", "message"),
    [
        (
            maskrcnn_litv2,
            dict(hilo_head=True),
            r"argument 'hilo_head' for maskrcnn_litv2 \(hilo_head is an option of retinanet_litv2\)",
        ),
        (
            retinanet_litv2,
            dict(hilo_rpn_head=True),
            r"'hilo_rpn_head' for retinanet_litv2 \(hilo_rpn_head is an option of fasterrcnn_litv2 / maskrcnn_litv2",
        ),
        (
            fasterrcnn_litv2,
            dict(min_sise=128),
            r"unknown keyword argument of fasterrcnn_litv2 'min_sise' \(did you mean 'min_size' .*; known: .*",
        ),
        (
            fasterrcnn_litv2,
            dict(score_thresh=0.1),
            r"'score_thresh' for fasterrcnn_litv2 \(score_thresh is an option of retinanet_litv2\)",
        ),
        (retinanet_litv2, dict(mask_head=None), r"'mask_head' for retinanet_litv2 \(mask_head is an option of mask"),
        (retinanet_litv2, dict(backbone=None), r"unknown keyword argument of retinanet_litv2 'backbone'"),
    ],
)
def test_unknown_keywords_are_refused_not_dropped(builder, keywords, message):
    with pytest.raises(ValueError, match=message):
        builder("nano", 3, **keywords)


def test_keywords_of_the_torchvision_detector_and_its_transform_are_accepted():
    model = fasterrcnn_litv2("nano", 3, min_size=96, max_size=96, box_score_thresh=0.2, size_divisible=64)
    assert model.transform.min_size == (96,) and model.transform.size_divisible == 64
    assert model.roi_heads.score_thresh == 0.2
    assert {"fpn", "num_classes", "min_size", "mask_head", "fixed_size"} <= detector_keywords(maskrcnn_litv2)


def test_too_small_image_is_a_clear_error():
    model = retinanet_litv2("nano", 3, min_size=16, max_size=16, size_divisible=1).eval()
    with pytest.raises(ValueError, match="too small"), torch.no_grad():
        model([torch.rand(3, 16, 16)])
