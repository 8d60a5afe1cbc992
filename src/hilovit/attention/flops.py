"""FLOPs as `torch.utils.flop_counter.FlopCounterMode` counts them, CPU attention and CPU inference kernels included.

PyTorch registers FLOP formulas for the CUDA attention kernels only, so on CPU the fused
`_scaled_dot_product_flash_attention_for_cpu` op would count zero and attention-heavy models would look cheap;
:func:`hilovit.cpu_inference.register_flop_formulas` (run on import) adds it and the oneDNN kernels.
"""

from __future__ import annotations

from collections.abc import Callable

from torch.utils.flop_counter import FlopCounterMode

import hilovit.cpu_inference  # noqa: F401  registers the FLOP formulas of CPU attention and the oneDNN kernels

__all__ = ["count_flops"]


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs (2 per multiply-accumulate) that `FlopCounterMode` counts while running `fn()`, CPU SDPA included."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()
