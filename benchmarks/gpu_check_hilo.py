"""CUDA checks of the HiLo layer that CPU tests cannot make: parity with the reference in fp32/bf16 on odd
sizes, gradients, and torch.compile(fullgraph=True) with inductor. Run: python benchmarks/gpu_check_hilo.py"""

import torch

from hilovit import HiLo
from hilovit.attention.reference import HiLoReference


def main() -> None:
    torch.manual_seed(0)
    for dtype, tol in ((torch.float32, 1e-4), (torch.bfloat16, 3e-2)):
        for dim, heads, ws, alpha, H, W in (
            (384, 12, 2, 0.9, 25, 31),
            (192, 6, 4, 0.5, 56, 56),
            (256, 8, 1, 0.5, 7, 7),
        ):
            m = HiLo(dim, heads, qkv_bias=True, window_size=ws, alpha=alpha).cuda().to(dtype)
            r = HiLoReference(dim, heads, qkv_bias=True, window_size=ws, alpha=alpha).cuda().to(dtype)
            r.load_state_dict(m.state_dict())
            x = torch.randn(4, H * W, dim, device="cuda", dtype=dtype, requires_grad=True)
            out, ref = m(x, H, W), r(x, H, W)
            (g,) = torch.autograd.grad(out.float().square().sum(), x)
            (gr,) = torch.autograd.grad(ref.float().square().sum(), x)
            fwd = (out - ref).abs().max().item()
            bwd = ((g - gr).abs().max() / gr.abs().max()).item()
            print(f"{dtype} dim={dim} ws={ws} alpha={alpha} {H}x{W}: fwd diff {fwd:.2e}, rel grad diff {bwd:.2e}")
            assert fwd <= tol and bwd <= tol * 10
    m = HiLo(384, 12, qkv_bias=True, window_size=2, alpha=0.9).cuda().eval()
    compiled = torch.compile(m, fullgraph=True)
    x = torch.randn(2, 25 * 31, 384, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        diff = (compiled(x, 25, 31).float() - m(x, 25, 31).float()).abs().max().item()
    print(f"torch.compile(fullgraph=True, inductor) under bf16 autocast: max diff {diff:.2e}")
    assert diff < 3e-2


if __name__ == "__main__":
    main()
