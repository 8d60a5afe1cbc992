""":class:`AIFIHiLo`: RT-DETR's AIFI encoder layer with HiLo attention and LITv2's ConvFFN.

ultralytics' ``AIFI`` is one transformer encoder layer (global multi-head attention + an fc1 -> GELU -> fc2 FFN,
post-norm) over every token of the stride-32 map, with a 2-D sin-cos position embedding added to its queries and
keys. :class:`AIFIHiLo` takes the same arguments and keeps the channel count, so a YAML row
``[-1, 1, AIFI, [1024, 8]]`` becomes ``[-1, 1, AIFIHiLo, [1024, 8]]``; it replaces

* the attention by :class:`~hilovit.attention.HiLo` (Hi-Fi heads in ``window_size`` windows, Lo-Fi heads on the
  pooled map), and
* the FFN by LITv2's :class:`~hilovit.models.litv2.ConvFFN` (fc1 -> 3x3 depthwise conv -> GELU -> fc2), whose
  depthwise convolution supplies position information, as in LITv2, which has no position embedding.

Position embedding: by default none (``pos_embed=False``), as LITv2. ``pos_embed=True`` adds AIFI's sin-cos
embedding to the attention input; HiLo computes queries, keys and values from one input, so the values see it too
(ViT's convention, unlike AIFI's queries-and-keys only). benchmarks/bench_yolo.py measures the two.
"""

from __future__ import annotations

from torch import Tensor, nn
from ultralytics.nn.modules.transformer import AIFI

from hilovit.attention import HiLo
from hilovit.dense.fpn import check_channels
from hilovit.models.litv2 import ConvFFN

__all__ = ["AIFIHiLo"]


class AIFIHiLo(nn.Module):
    """HiLo + ConvFFN encoder layer on ``(B, C, H, W)`` maps, any ``H, W``; arguments first as ultralytics' AIFI.

    Args:
        c1: channels C (kept).
        cm: ConvFFN hidden channels.
        num_heads: attention heads; ``int(num_heads * alpha)`` are Lo-Fi.
        dropout: dropout on the attention weights, the attention output and in the ConvFFN.
        act: ConvFFN activation (GELU when None), as AIFI's ``act``.
        normalize_before: pre-norm residuals (``x + f(norm(x))``) instead of AIFI's default post-norm
            (``norm(x + f(x))``).
        window_size: HiLo window / pooling size; 1 is plain global attention.
        alpha: share of Lo-Fi heads (LITv2's 0.9 by default).
        pos_embed: add AIFI's 2-D sin-cos position embedding to the attention input (``C`` divisible by 4).
    """

    def __init__(
        self,
        c1: int,
        cm: int = 2048,
        num_heads: int = 8,
        dropout: float = 0.0,
        act: nn.Module | None = None,
        normalize_before: bool = False,
        window_size: int = 2,
        alpha: float = 0.9,
        pos_embed: bool = False,
    ) -> None:
        super().__init__()
        if pos_embed and c1 % 4:
            raise ValueError(f"AIFIHiLo with pos_embed=True needs channels divisible by 4, got c1={c1}")
        self.attn = HiLo(c1, num_heads, True, None, dropout, dropout, window_size, alpha)
        self.ffn = ConvFFN(c1, cm, dropout)
        if act is not None:
            self.ffn.act = act
        self.norm1 = nn.LayerNorm(c1)
        self.norm2 = nn.LayerNorm(c1)
        self.normalize_before = normalize_before
        self.pos_embed = pos_embed

    def _attention(self, x: Tensor) -> Tensor:
        if self.pos_embed:
            _, h, w, c = x.shape
            x = x + AIFI.build_2d_sincos_position_embedding(w, h, c, like=x).to(x.dtype).reshape(1, h, w, c)
        return self.attn.forward_hwc(x)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W) -> (B, C, H, W)``."""
        check_channels(self, x, self.attn.dim)
        x = x.permute(0, 2, 3, 1)  # channels-last, as HiLo and ConvFFN compute
        if self.normalize_before:
            x = x + self._attention(self.norm1(x))
            x = x + self.ffn(self.norm2(x))
        else:
            x = self.norm1(x + self._attention(x))
            x = self.norm2(x + self.ffn(x))
        return x.permute(0, 3, 1, 2).contiguous()
