"""CUDA paths that the CPU tests cannot reach: HiLo's packed windows against the reference in float32 and
bfloat16 on odd sizes (forward and gradients), HiLo under torch.compile(fullgraph=True) with autocast, and a
whole LITv2 on CUDA against the same model on CPU. Skipped without a CUDA device."""

import pytest
import timm
import torch

import hilovit  # noqa: F401  (registers the litv2_* models with timm)
from hilovit import HiLo
from hilovit.attention.reference import HiLoReference

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.float32, 1e-4), (torch.bfloat16, 3e-2)])
@pytest.mark.parametrize(
    ("dim", "heads", "window", "alpha", "height", "width"),
    [(384, 12, 2, 0.9, 25, 31), (192, 6, 4, 0.5, 56, 56), (256, 8, 1, 0.5, 7, 7)],
)
def test_hilo_matches_the_reference_on_cuda(dtype, tolerance, dim, heads, window, alpha, height, width):
    torch.manual_seed(0)
    layer = HiLo(dim, heads, qkv_bias=True, window_size=window, alpha=alpha).cuda().to(dtype)
    reference = HiLoReference(dim, heads, qkv_bias=True, window_size=window, alpha=alpha).cuda().to(dtype)
    reference.load_state_dict(layer.state_dict())
    x = torch.randn(4, height * width, dim, device="cuda", dtype=dtype, requires_grad=True)
    out, expected = layer(x, height, width), reference(x, height, width)
    (grad,) = torch.autograd.grad(out.float().square().sum(), x)
    (expected_grad,) = torch.autograd.grad(expected.float().square().sum(), x)
    assert (out - expected).abs().max().item() <= tolerance
    assert ((grad - expected_grad).abs().max() / expected_grad.abs().max()).item() <= 10 * tolerance


def test_hilo_compiles_fullgraph_under_autocast_on_cuda():
    torch.manual_seed(0)
    layer = HiLo(384, 12, qkv_bias=True, window_size=2, alpha=0.9).cuda().eval()
    compiled = torch.compile(layer, fullgraph=True)
    x = torch.randn(2, 25 * 31, 384, device="cuda")
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        diff = (compiled(x, 25, 31).float() - layer(x, 25, 31).float()).abs().max().item()
    assert diff < 3e-2


def test_litv2_on_cuda_matches_cpu():
    torch.manual_seed(0)
    model = timm.create_model("litv2_nano", num_classes=10).eval()
    x = torch.randn(2, 3, 61, 77)
    with torch.no_grad(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):  # exact float32 convs
        expected = model(x)
        out = model.cuda()(x.cuda()).cpu()
    assert (out - expected).abs().max().item() <= 1e-4
