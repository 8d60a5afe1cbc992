"""Make `torch.utils.flop_counter.FlopCounterMode` count scaled-dot-product attention on CPU.

PyTorch registers FLOP formulas for the CUDA attention kernels only, so on CPU the fused
`_scaled_dot_product_flash_attention_for_cpu` op counts zero and attention-heavy models look cheap.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode, flop_registry, sdpa_backward_flop, sdpa_flop

__all__ = ["count_flops", "register_cpu_sdpa_flops"]

_aten = torch.ops.aten
_CPU_SDPA_FORMULAS = {
    _aten._scaled_dot_product_flash_attention_for_cpu: sdpa_flop,
    _aten._scaled_dot_product_flash_attention_for_cpu_backward: sdpa_backward_flop,
}


def register_cpu_sdpa_flops() -> None:
    """Register the CPU SDPA forward and backward ops with the same formulas as the CUDA kernels (idempotent)."""
    for op, formula in _CPU_SDPA_FORMULAS.items():
        flop_registry.setdefault(op, formula)


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs (2 per multiply-accumulate) that `FlopCounterMode` counts while running `fn()`, CPU SDPA included."""
    register_cpu_sdpa_flops()
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()
