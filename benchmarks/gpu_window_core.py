"""Hi-Fi window attention on CUDA: one window per attention sequence vs windows packed into ~64-token
sequences with a block-diagonal mask (HiLo's CUDA path). Hi-Fi-only HiLo layers (alpha=0), CUDA-graph
timing, one run. The measurement behind `HiLo._packs_windows`. Run: python benchmarks/gpu_window_core.py"""

import argparse

import torch

from hilovit import HiLo
from hilovit.speed import cuda_graphed, time_interleaved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dtype", choices=("bfloat16", "float16", "float32"), default="bfloat16")
    dtype = getattr(torch, parser.parse_args().dtype)
    print(f"device={torch.cuda.get_device_name()} dtype={dtype} map 8x56x56, dim 192, 6 heads, all Hi-Fi")
    x = torch.randn(8, 56 * 56, 192, device="cuda", dtype=dtype)
    for ws in (2, 3, 4, 5, 7):
        layer = HiLo(192, 6, qkv_bias=True, window_size=ws, alpha=0.0).cuda().to(dtype).eval()
        per_window = HiLo(192, 6, qkv_bias=True, window_size=ws, alpha=0.0).cuda().to(dtype).eval()
        per_window.load_state_dict(layer.state_dict())
        per_window.window_mask = None  # one window per sequence
        with torch.inference_mode():
            diff = (layer(x, 56, 56).float() - per_window(x, 56, 56).float()).abs().max().item()
        t = time_interleaved(
            {
                "packed": cuda_graphed(lambda layer=layer: layer(x, 56, 56)),
                "per_window": cuda_graphed(lambda per_window=per_window: per_window(x, 56, 56)),
            },
            device="cuda",
            repeats=7,
        )
        packed_us, single_us = t["packed"].median_s * 1e6, t["per_window"].median_s * 1e6
        print(
            f"window {ws}x{ws}: packed {packed_us:7.1f} us  per-window {single_us:7.1f} us  "
            f"speed-up {single_us / packed_us:.2f}x  max diff {diff:.1e}"
            f"{'' if layer.window_mask is not None else '  (not packed: window fills a tile)'}"
        )


if __name__ == "__main__":
    main()
