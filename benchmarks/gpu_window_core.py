"""Window-attention core on tiny windows: SDPA vs broadcast multiply-and-reduce, and Lo-Fi pooling variants.
The measurements behind HiLo's per-device choices. Run: python benchmarks/gpu_window_core.py [--device cuda]"""

import argparse

import torch
import torch.nn.functional as F

from hilovit.speed import time_interleaved


def broadcast_attention(q, k, v, scale):
    scores = (q.unsqueeze(-2) * k.unsqueeze(-3)).sum(-1) * scale
    return (scores.softmax(-1).unsqueeze(-1) * v.unsqueeze(-3)).sum(-2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(parser.parse_args().device)
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    print(f"device={device} dtype={dtype}")
    # (window tokens, windows): LITv2-S stage 3 at batch 64 and a detection-size map.
    for tokens, windows in ((4, 64 * 49 * 2), (4, 8 * 784), (9, 64 * 25 * 2), (16, 64 * 16 * 2), (25, 64 * 9 * 2)):
        q, k, v = torch.randn(3, windows, 2, tokens, 32, device=device, dtype=dtype).unbind(0)
        t = time_interleaved({
            "sdpa": lambda: F.scaled_dot_product_attention(q, k, v, scale=0.17),
            "broadcast": lambda: broadcast_attention(q, k, v, 0.17),
        }, device=device, repeats=7)
        print(f"window tokens={tokens:3d} windows={windows:6d}: sdpa {t['sdpa'].median_s * 1e6:8.1f} us"
              f"  broadcast {t['broadcast'].median_s * 1e6:8.1f} us"
              f"  ratio {t['sdpa'].median_s / t['broadcast'].median_s:.2f}x")
    x = torch.randn(8, 56, 56, 192, device=device, dtype=dtype)
    t = time_interleaved({
        "avg_pool2d": lambda: F.avg_pool2d(x.permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1),
        "mean": lambda: x.view(8, 28, 2, 28, 2, 192).mean((2, 4)),
    }, device=device, repeats=7)
    print("pool 8x56x56x192:", {k: f"{v.median_s * 1e6:.1f} us" for k, v in t.items()})


if __name__ == "__main__":
    main()
