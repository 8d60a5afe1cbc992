"""How closely a deployed model's outputs follow PyTorch fp32: largest difference, cosine and top-1 agreement."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from hilovit.export.parity import flatten_outputs

__all__ = ["Fidelity", "fidelity", "run_batches"]


@dataclass(frozen=True)
class Fidelity:
    """Outputs against the reference over an image set.

    ``cosine`` is the mean over images of the cosine similarity of their (flattened, concatenated) outputs;
    ``top1_agreement`` the percentage of images whose arg-max class matches (None unless the output is one
    ``(N, classes)`` tensor of logits).
    """

    max_abs_diff: float
    cosine: float
    top1_agreement: float | None


def run_batches(run: Callable[[Tensor], object], batches: Sequence[Tensor]) -> list[Tensor]:
    """Outputs of ``run`` over ``batches``, each output tensor concatenated over the batches (on the CPU)."""
    outputs: list[list[Tensor]] = []
    with torch.inference_mode():
        for batch in batches:
            tensors = flatten_outputs(run(batch))
            outputs = outputs or [[] for _ in tensors]
            for store, tensor in zip(outputs, tensors, strict=True):
                store.append(tensor.detach().float().cpu())
    return [torch.cat(store) for store in outputs]


def _per_image(outputs: Sequence[Tensor]) -> Tensor:
    return torch.cat([output.flatten(1).double() for output in outputs], dim=1)


def fidelity(reference: Sequence[Tensor], outputs: Sequence[Tensor]) -> Fidelity:
    """Compare the outputs of :func:`run_batches` of a deployed model with those of the reference."""
    if len(reference) != len(outputs) or any(r.shape != o.shape for r, o in zip(reference, outputs, strict=True)):
        raise ValueError(
            f"outputs of shapes {[tuple(o.shape) for o in outputs]} do not match the reference's "
            f"{[tuple(r.shape) for r in reference]}"
        )
    want, got = _per_image(reference), _per_image(outputs)
    cosine = torch.nn.functional.cosine_similarity(want, got, dim=1, eps=1e-12).mean().item()
    agreement = None
    if len(reference) == 1 and reference[0].dim() == 2:
        agreement = 100.0 * (reference[0].argmax(1) == outputs[0].argmax(1)).double().mean().item()
    return Fidelity((want - got).abs().max().item(), cosine, agreement)
