"""FLOPs and the one-image forward of detectors and segmentors, for benchmarks and model tables."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torchvision.models.detection import RetinaNet
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN

from hilovit.attention.flops import count_flops

__all__ = ["dense_flops", "image_forward"]


def image_forward(model: nn.Module, image: Tensor) -> Callable[[], object]:
    """The call that runs ``model`` on one ``(3, H, W)`` image: a list for torchvision's detectors (which
    resize and pad it, see :mod:`hilovit.dense.detection`), a batch of one for other models."""
    if image.dim() != 3:
        raise ValueError(f"expected one image (3, H, W), got shape {tuple(image.shape)}")
    if isinstance(model, GeneralizedRCNN | RetinaNet):
        return lambda: model([image])
    return lambda: model(image[None])


def dense_flops(model: nn.Module, height: int, width: int) -> int:
    """FLOPs (2 per multiply-accumulate) of one eval-mode forward of a random ``height x width`` image.

    Counted by ``torch.utils.flop_counter`` (convolutions, matrix products, attention on CPU and GPU);
    deformable sampling, RoIAlign, NMS and resizing are not counted. For two-stage detectors the box and
    mask heads run on the proposals and detections of that image, so their share depends on the weights
    and on ``box_score_thresh``. The model's training mode is restored afterwards.
    """
    if height < 1 or width < 1:
        raise ValueError(f"image size must be >= 1, got {height}x{width}")
    reference = next(model.parameters())
    image = torch.rand(3, height, width, generator=torch.Generator().manual_seed(0)).to(reference.device)
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return count_flops(image_forward(model, image))
    finally:
        model.train(training)
