"""The HiLo computation on channels-last maps with any number of spatial axes (2 for images, 3 for volumes).

:class:`HiLoNd` holds the parameters (named as in the official code: ``l_q``, ``l_kv``, ``l_proj``, ``h_qkv``,
``h_proj``) and runs both branches on a ``(B, *spatial, C)`` map. The public layers are thin forms of it:
:class:`~hilovit.attention.hilo.HiLo` / ``HiLo2d`` (images) and :class:`~hilovit.attention.hilo3d.HiLo3d` /
``HiLo3dChannelsFirst`` (videos, volumes). They share parameter names and shapes, so weights move between them.
"""

# TorchScript compiles the forward path: it takes lists built by concatenation (no star unpacking) and zip()
# without strict=.
# ruff: noqa: RUF005, B905
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hilovit.attention.checks import check_dtype, check_int, check_number, check_sizes
from hilovit.attention.padding import pad_end
from hilovit.cpu_inference import attention, linear
from hilovit.validation import FRACTION, PROBABILITY

__all__ = ["HiLoNd", "check_config"]

torch.fx.wrap("pad_end")  # torch.fx records the call: the pad amounts are decided when the graph runs

# On CUDA, windows smaller than half this many tokens are packed into sequences of about this length.
_PACKED_SEQUENCE_TOKENS = 64
_AXES = ("T", "H", "W")  # names of the spatial axes, the last two for images


def _named(spatial: Sequence[object]) -> dict[str, object]:
    """``(H, W)`` -> ``{"H": H, "W": W}``, ``(T, H, W)`` -> ``{"T": T, "H": H, "W": W}``."""
    return dict(zip(_AXES[-len(spatial) :], spatial, strict=True))


def check_config(
    dim: int,
    num_heads: int,
    window: Sequence[int],
    alpha: float,
    attn_drop: float = 0.0,
    proj_drop: float = 0.0,
    name: str = "window_size",
) -> None:
    """Raise TypeError/ValueError naming the bad value when the layer cannot be built."""
    for label, value in (("dim", dim), ("num_heads", num_heads)):
        check_int(label, value)
    for value in window:
        check_int(name, value)
    if dim < 1 or num_heads < 1:
        raise ValueError(f"dim and num_heads must be >= 1, got dim={dim}, num_heads={num_heads}")
    if dim % num_heads != 0:
        raise ValueError(f"dim={dim} must be divisible by num_heads={num_heads}")
    if min(window) < 1:
        shown = window[0] if len(set(window)) == 1 else tuple(window)
        raise ValueError(f"{name} must be >= 1, got {shown}")
    check_number("alpha (the Lo-Fi share of heads)", alpha, PROBABILITY)
    check_number("attn_drop", attn_drop, FRACTION)
    check_number("proj_drop", proj_drop, FRACTION)


class HiLoNd(nn.Module):
    """HiLo on a channels-last map ``(B, *spatial, C)`` with windows ``window`` (one size per spatial axis).

    Hi-Fi heads attend within each non-overlapping window; Lo-Fi heads attend from every token to keys and
    values of the window-average-pooled map. A window of one token is plain global attention: every head is
    Lo-Fi and the keys are not pooled, whatever ``alpha`` is. Sides that are not a multiple of the window are
    zero-padded at the end, both branches run on the padded map (padded tokens take part as keys and in the
    pooling, unmasked, as in the official dense-prediction code) and the result is cropped back.
    Subclasses choose the input form and check shapes; :meth:`forward_channels_last` does no checks.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool,
        qk_scale: float | None,
        attn_drop: float,
        proj_drop: float,
        window: tuple[int, ...],
        alpha: float,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.dim = dim
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.window = window
        self.window_sizes = list(window)  # the form TorchScript takes
        self.window_tokens = math.prod(window)
        self.alpha = float(alpha)
        self.l_heads = num_heads if self.window_tokens == 1 else int(num_heads * alpha)
        self.h_heads = num_heads - self.l_heads
        self.l_dim = self.l_heads * self.head_dim
        self.h_dim = self.h_heads * self.head_dim
        # the official `qk_scale or head_dim ** -0.5`: None and 0 both mean the default scale
        self.scale = qk_scale or self.head_dim**-0.5
        self.attn_drop = attn_drop
        # A branch without heads has None for its layers (TorchScript then compiles only the branches there are).
        self.l_q: nn.Linear | None = None
        self.l_kv: nn.Linear | None = None
        self.l_proj: nn.Linear | None = None
        self.h_qkv: nn.Linear | None = None
        self.h_proj: nn.Linear | None = None
        if self.l_heads > 0:
            self.l_q = nn.Linear(dim, self.l_dim, bias=qkv_bias, **dd)
            self.l_kv = nn.Linear(dim, self.l_dim * 2, bias=qkv_bias, **dd)
            self.l_proj = nn.Linear(self.l_dim, self.l_dim, **dd)
        if self.h_heads > 0:
            self.h_qkv = nn.Linear(dim, self.h_dim * 3, bias=qkv_bias, **dd)
            self.h_proj = nn.Linear(self.h_dim, self.h_dim, **dd)
        self.proj_drop = nn.Dropout(proj_drop)
        per_sequence = _PACKED_SEQUENCE_TOKENS // self.window_tokens
        mask = None
        if self.h_heads > 0 and per_sequence >= 2:
            ids = torch.arange(per_sequence * self.window_tokens, device=device) // self.window_tokens
            mask = ids[:, None] == ids[None, :]
        self.window_mask: Tensor | None
        self.register_buffer("window_mask", mask, persistent=False)

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, window={self.window}, lofi_heads={self.l_heads}, hifi_heads={self.h_heads}, "
            f"head_dim={self.head_dim}"
        )

    def _check_input(self, x: Tensor, channels: int) -> None:
        """The input's dtype must be the weights' (any floating dtype under autocast), ``channels`` the layer's dim."""
        weight = self.l_q.weight if self.l_heads > 0 else self.h_qkv.weight
        check_dtype(x, weight, type(self).__name__, "a floating-point input")
        if channels != self.dim:
            raise ValueError(f"{type(self).__name__} was built for dim={self.dim} channels, got {channels}")

    def _check_tokens(self, x: Tensor, spatial: Sequence[object]) -> None:
        """Checks of the token forms: ``x`` is ``(B, N, C)`` tokens laying out a grid of int sizes ``spatial``."""
        name = type(self).__name__
        if x.dim() != 3:
            raise ValueError(f"{name} expects tokens of shape (B, N, C), got a {x.dim()}-d tensor {tuple(x.shape)}")
        sizes = _named(spatial)
        check_sizes(name, sizes)
        if x.shape[1] != math.prod(spatial):
            shown = ", ".join(f"{axis}={n}" for axis, n in sizes.items())
            raise ValueError(f"{name} got N={x.shape[1]} tokens for {shown}; expected N == {' * '.join(sizes)}")
        self._check_input(x, x.shape[2])

    def _check_channels_first(self, x: Tensor) -> None:
        """Checks of the channels-first forms: ``x`` is ``(B, C, *spatial)`` with every side >= 1."""
        name, axes = type(self).__name__, _AXES[-len(self.window) :]
        if x.dim() != len(axes) + 2:
            layout = f"(B, C, {', '.join(axes)}) {'map' if len(axes) == 2 else 'volume'}"
            raise ValueError(f"{name} expects a {layout}, got a {x.dim()}-d tensor {tuple(x.shape)}")
        check_sizes(name, _named(x.shape[2:]))
        self._check_input(x, x.shape[1])

    def _padded(self, spatial: list[int]) -> list[int]:
        """The map size the branches run on: each side rounded up to a multiple of its window."""
        # (n + s - 1) // s rather than -(-n // s): ONNX lowers integer // to a division that truncates.
        return [(n + s - 1) // s * s for n, s in zip(spatial, self.window_sizes)]

    def forward_channels_last(self, x: Tensor) -> Tensor:
        """Attention on ``(B, *spatial, C) -> (B, *spatial, C)``, without shape checks.

        Written for every way of running it: sizes are read by index (a torch.fx proxy cannot be unpacked), shapes
        are lists (TorchScript has no star arguments), the padding is :func:`~hilovit.attention.padding.pad_end`
        and the crop is always taken (a view of the whole map where nothing was padded), so that graphs recorded
        by torch.jit.trace or torch.export hold at every size.
        """
        d = len(self.window_sizes)
        spatial = [x.shape[1 + i] for i in range(d)]
        padded = self._padded(spatial)
        amounts = [0, 0]  # F.pad's order: channels, then the last spatial axis first
        for i in range(d - 1, -1, -1):
            amounts += [0, padded[i] - spatial[i]]
        x = pad_end(x, amounts)
        batch = x.shape[0]
        if self.h_qkv is None:
            out = self._lofi(x, padded)
        elif self.l_q is None:
            out = self._hifi(x, padded).reshape([batch] + padded + [self.h_dim])
        else:
            out = self._merge(self._hifi(x, padded), self._lofi(x, padded), batch, padded)
        for i in range(d):
            out = out.narrow(1 + i, 0, spatial[i])
        return self.proj_drop(out)

    def _dropout_p(self) -> float:
        return self.attn_drop if self.training else 0.0

    def _interleaved(self, padded: list[int]) -> list[int]:
        """``[n_1, s_1, ..., n_d, s_d]``: each side of the padded map split into windows ``n_i`` of size ``s_i``."""
        sizes: list[int] = []
        for n, s in zip(padded, self.window_sizes):
            sizes += [n // s, s]
        return sizes

    def _attention(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        if torch.jit.is_scripting():
            return F.scaled_dot_product_attention(q, k, v, dropout_p=self._dropout_p(), scale=self.scale)
        return attention(self, q, k, v, self.scale, self._dropout_p())

    def _hifi(self, x: Tensor, padded: list[int]) -> Tensor:
        """Window attention on the padded map ``x``; returns ``(B, n_1, s_1, ..., n_d, s_d, h_dim)``, a view in
        window order."""
        d, heads, hd = len(self.window_sizes), self.h_heads, self.head_dim
        B = x.shape[0]
        interleaved = self._interleaved(padded)
        grid = [interleaved[2 * i] for i in range(d)]
        qkv = self.h_qkv(x) if torch.jit.is_scripting() else linear(self.h_qkv, x)
        qkv = qkv.view([B] + interleaved + [3, heads, hd])
        grid_axes, window_axes = [1 + 2 * i for i in range(d)], [2 + 2 * i for i in range(d)]
        three, head_axis, dim_axis = 1 + 2 * d, 2 + 2 * d, 3 + 2 * d
        windows = B
        for n in grid:
            windows = windows * n
        if False if torch.jit.is_scripting() else self._packs_windows(x):
            qkv = qkv.permute([three, head_axis, 0] + grid_axes + window_axes + [dim_axis])
            tokens = self._packed_window_attention(qkv.reshape(3, heads, windows * self.window_tokens, hd))
        else:
            # (3, windows, heads, window tokens, head_dim): one copy gathers every window's tokens together.
            qkv = qkv.permute([three, 0] + grid_axes + [head_axis] + window_axes + [dim_axis])
            q, k, v = qkv.reshape(3, windows, heads, self.window_tokens, hd).unbind(0)
            tokens = self._attention(q, k, v).transpose(1, 2)
        # The projection acts per token, so it runs in window order; the view puts tokens back in place.
        tokens = tokens.reshape([B] + grid + self.window_sizes + [self.h_dim])
        out = self.h_proj(tokens) if torch.jit.is_scripting() else linear(self.h_proj, tokens)
        order = [0]
        for i in range(d):
            order += [1 + i, 1 + d + i]
        return out.permute(order + [1 + 2 * d])

    def _packs_windows(self, x: Tensor) -> bool:
        """Pack small windows on CUDA only: on CPU the fused kernel is as fast per window."""
        return type(x) is Tensor and x.is_cuda and self.window_mask is not None

    def _packed_window_attention(self, qkv: Tensor) -> Tensor:
        """Window attention with several windows packed into one sequence and a block-diagonal mask.

        GPU attention kernels tile 64+ queries, so a 2x2 window alone leaves a tile almost empty; packed,
        the tiles fill up (about 5x faster than one window per sequence on an H100, see
        benchmarks/gpu_window_core.py). Takes ``(3, heads, windows * window_tokens, head_dim)`` in window
        order and returns ``(windows * window_tokens, heads, head_dim)``. Eager mode only.
        """
        _, heads, tokens, hd = qkv.shape
        per_sequence = self.window_mask.shape[0] // self.window_tokens
        windows = tokens // self.window_tokens
        sequences = -(-windows // per_sequence)
        if sequences * per_sequence != windows:  # all-zero filler windows, dropped below
            qkv = F.pad(qkv, (0, 0, 0, (sequences * per_sequence - windows) * self.window_tokens))
        q, k, v = qkv.view(3, heads, sequences, per_sequence * self.window_tokens, hd).unbind(0)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=self.window_mask, dropout_p=self._dropout_p(), scale=self.scale
        )
        return out.reshape(heads, -1, hd)[:, :tokens].transpose(0, 1)

    def _lofi(self, x: Tensor, padded: list[int]) -> Tensor:
        """Attention to pooled keys/values on the padded map ``x``; returns ``(B, *padded, l_dim)``."""
        B, heads, d = x.shape[0], self.l_heads, len(self.window_sizes)
        tokens = 1
        for n in padded:
            tokens = tokens * n
        q = self.l_q(x) if torch.jit.is_scripting() else linear(self.l_q, x)
        q = q.view(B, tokens, heads, self.head_dim).transpose(1, 2)
        pooled = x
        if self.window_tokens > 1:
            # pooling on the channels-last view is far faster than a mean over the split window axes.
            # permute, not movedim: TorchScript's ONNX export of movedim writes an invalid Transpose (torch 2.14)
            pooled = self._pool(x.permute([0, d + 1] + [1 + i for i in range(d)]))
            pooled = pooled.permute([0] + [2 + i for i in range(d)] + [1])
        keys = tokens // self.window_tokens
        kv = self.l_kv(pooled) if torch.jit.is_scripting() else linear(self.l_kv, pooled)
        k, v = kv.view(B, keys, 2, heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        out = self._attention(q, k, v).transpose(1, 2).reshape([B] + padded + [self.l_dim])
        return self.l_proj(out) if torch.jit.is_scripting() else linear(self.l_proj, out)

    def _pool(self, x: Tensor) -> Tensor:
        """Average pooling of the channels-first map ``x`` over windows."""
        if len(self.window_sizes) == 1:
            return F.avg_pool1d(x, self.window_sizes)
        if len(self.window_sizes) == 2:
            return F.avg_pool2d(x, self.window_sizes)
        return F.avg_pool3d(x, self.window_sizes)

    def _merge(self, hifi: Tensor, lofi: Tensor, batch: int, padded: list[int]) -> Tensor:
        """Concatenate along channels, Hi-Fi first, in a single copy into ``(B, *padded, C)``."""
        merged = torch.cat((hifi, lofi.view([batch] + self._interleaved(padded) + [self.l_dim])), dim=-1)
        return merged.view([batch] + padded + [self.dim])

    def padded_flops(self, spatial: Sequence[int]) -> int:
        """Multiply-accumulates of one forward on a map of size ``spatial`` (counted at the padded size)."""
        check_sizes(f"{type(self).__name__}.flops", _named(spatial))
        tokens = math.prod(self._padded(list(spatial)))
        windows = tokens // self.window_tokens
        hifi = tokens * self.dim * self.h_dim * 3 + windows * self.window_tokens**2 * self.h_dim * 2
        hifi += tokens * self.h_dim * self.h_dim
        keys = windows
        lofi = tokens * self.dim * self.l_dim + keys * self.dim * self.l_dim * 2
        lofi += tokens * keys * self.l_dim * 2 + tokens * self.l_dim * self.l_dim
        return hifi + lofi
