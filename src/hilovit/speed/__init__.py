"""Direct speed evaluation: timing, peak memory and the environment a measurement was taken in."""

from hilovit.speed.environment import environment, fixed_threads
from hilovit.speed.memory import peak_memory_bytes
from hilovit.speed.report import results_table
from hilovit.speed.timing import Timing, cuda_graphed, synchronize, time_interleaved

__all__ = [
    "Timing",
    "cuda_graphed",
    "environment",
    "fixed_threads",
    "peak_memory_bytes",
    "results_table",
    "synchronize",
    "time_interleaved",
]
