"""Semantic FPN on LITv2: the paper's 31M parameters, logits at the input size for any size."""

from __future__ import annotations

import pytest
import torch

from hilovit.dense import FPNHead, semantic_fpn_litv2


def test_litv2_s_with_150_classes_has_the_papers_31m_parameters():
    with torch.device("meta"):  # counts need no initialised weights
        model = semantic_fpn_litv2("s", 150)
    count = sum(p.numel() for p in model.parameters())
    assert count == 31_449_486 and abs(count - 31e6) < 1e6
    assert sum(p.numel() for p in model.decode_head.parameters()) == 1_643_158  # mmseg's FPNHead, 128 channels
    assert hasattr(model.backbone.body, "norm0")  # the official segmentation backbone's fourth output norm


@pytest.mark.parametrize(("fpn", "size"), [("plain", (333, 517)), ("plain", (29, 29)), ("hilo", (64, 47))])
def test_logits_at_input_resolution_for_odd_sizes(fpn, size):
    model = semantic_fpn_litv2("nano", 5, fpn=fpn).eval()
    with torch.no_grad():
        logits = model(torch.rand(1, 3, *size))
    assert logits.shape == (1, 5, *size) and torch.isfinite(logits).all()


def test_training_step_reaches_backbone_and_head():
    model = semantic_fpn_litv2("nano", 4).train()
    images, labels = torch.rand(2, 3, 45, 61), torch.randint(0, 4, (2, 45, 61))
    torch.nn.functional.cross_entropy(model(images), labels).backward()
    assert model.backbone.body.patch_embed.proj.weight.grad is not None
    assert model.decode_head.classifier.weight.grad is not None


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"num_classes .* got 0"):
        semantic_fpn_litv2("nano", 0)
    with pytest.raises(ValueError, match="unknown LITv2 variant 'huge'"):
        semantic_fpn_litv2("huge")
    with pytest.raises(ValueError, match="power of two"):
        FPNHead([8, 8], [4, 12], 3)
    with pytest.raises(ValueError, match="too small"), torch.no_grad():
        semantic_fpn_litv2("nano", 3).eval()(torch.rand(1, 3, 20, 40))
