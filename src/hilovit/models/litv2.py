"""LITv2 vision transformers (Pan et al., "Fast Vision Transformers with HiLo Attention", NeurIPS 2022).

A four-stage pyramid: a 4x4 patch embedding, stages of pre-norm residual blocks, and Deformable Token
Merging (DTM) between stages. Blocks of the early stages (``local_ws[i] == 0``) hold only a ConvFFN; the
others add HiLo attention with window ``local_ws[i]`` (``1`` = plain global attention). The depthwise
convolution of the ConvFFN supplies position information, so there is no position embedding.

Tokens flow as channels-last maps ``(B, H, W, C)``: LayerNorm and the linear layers act on the last
axis, the depthwise convolution and DTM run on the ``permute(0, 3, 1, 2)`` view of the same memory
(channels-last NCHW), and HiLo gets the flat ``(B, H*W, C)`` view; no transpose copies are made.

Two forms share the trunk (:class:`LITv2Trunk`) and the official state-dict keys:

* :class:`LITv2`, classification (``norm``, ``head``), with timm's model interface; builders
  :func:`litv2_s`, :func:`litv2_m`, :func:`litv2_b`, :func:`litv2_b_384` and the small
  :func:`litv2_nano`, :func:`litv2_tiny` are registered with timm
  (``import hilovit; timm.create_model("litv2_s", features_only=True)``);
* :class:`LITv2Backbone`, dense prediction (output norms ``norm1..norm3``, optional ``norm0``),
  returning the NCHW maps at strides 4, 8, 16, 32 for any input size.

Nothing is downloaded: load official weights with :func:`hilovit.models.load_official`.
"""

# No `from __future__ import annotations`: torch.fx copies forward()'s annotations into the graph's code, which
# TorchScript must read as types, not strings.
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, register_notrace_function, to_2tuple, trunc_normal_
from timm.models import build_model_with_cfg, generate_default_cfgs, load_pretrained, register_model
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from hilovit.attention import HiLo
from hilovit.attention.checks import check_dtype, check_int, check_int_sequence, check_number
from hilovit.attention.padding import pad_end
from hilovit.cpu_inference import conv2d_act, default_group_bytes, image_groups, is_cpu_inference, linear
from hilovit.models.checkpoints import check_state_dict, official_state_dict, read_checkpoint
from hilovit.models.deform import DeformablePatchMerging
from hilovit.validation import FRACTION, POSITIVE, PROBABILITY

__all__ = [
    "ConvFFN",
    "LITv2",
    "LITv2Backbone",
    "LITv2Block",
    "LITv2Stage",
    "LITv2Trunk",
    "PatchEmbed",
    "checkpoint_filter_fn",
    "litv2_b",
    "litv2_b_384",
    "litv2_config",
    "litv2_m",
    "litv2_nano",
    "litv2_s",
    "litv2_tiny",
]

NormLayer = Callable[[int], nn.Module]
torch.fx.wrap("pad_end")  # torch.fx records the call: the pad amounts are decided when the graph runs


def _resolve_indices(num_stages: int, indices: int | Sequence[int] | None) -> list[int]:
    """Absolute stage indices: None -> all, an int n -> the last n, a sequence -> those (negatives count
    from the end), sorted and deduplicated."""
    if indices is None:
        return list(range(num_stages))
    if isinstance(indices, int):
        if not 0 < indices <= num_stages:
            raise ValueError(f"the last-n stage count must be in 1..{num_stages}, got {indices}")
        return list(range(num_stages - indices, num_stages))
    resolved = set()
    for i in indices:
        if not -num_stages <= i < num_stages:
            raise ValueError(f"stage index {i} is out of range for {num_stages} stages")
        resolved.add(i % num_stages)
    if not resolved:
        raise ValueError("at least one stage index is needed, got an empty sequence")
    return sorted(resolved)


class PatchEmbed(nn.Module):
    """Non-overlapping patch projection: image ``(B, C, H, W)`` -> tokens ``(B, H/p, W/p, D)``.

    Sides that are not a multiple of the patch size are zero-padded on the right/bottom first, as in
    the official dense-prediction code, so any image size works.
    """

    def __init__(
        self,
        patch_size: int,
        in_chans: int,
        embed_dim: int,
        norm_layer: NormLayer | None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_int("patch_size", patch_size, minimum=1)
        dd = {"device": device, "dtype": dtype}
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size, **dd)
        self.norm = norm_layer(embed_dim, **dd) if norm_layer is not None else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        p = self.patch_size
        # (p - n % p) % p rather than -n % p: ONNX lowers integer % of a negative number as C does.
        x = pad_end(x, [0, (p - x.shape[-1] % p) % p, 0, (p - x.shape[-2] % p) % p])
        if not torch.jit.is_scripting():  # noqa: SIM102  TorchScript compiles no further: an eager fast path
            if is_cpu_inference(x, self):
                # oneDNN's convolution then writes channels-last, so the tokens need no transposing copy: 2x faster
                x = x.contiguous(memory_format=torch.channels_last)
        return self.norm(self.proj(x).permute(0, 2, 3, 1))

    def grid(self, H: int, W: int) -> tuple[int, int]:
        """Token grid for an ``H x W`` image."""
        return -(-H // self.patch_size), -(-W // self.patch_size)

    def flops(self, H: int, W: int) -> int:
        h, w = self.grid(H, W)
        per_token = self.proj.in_channels * self.patch_size**2 + (not isinstance(self.norm, nn.Identity))
        return h * w * self.proj.out_channels * per_token


class DWConv(nn.Module):
    """3x3 depthwise convolution (with bias) and the activation after it, on a channels-last map ``(B, H, W, C)``.

    It runs on the channels-last NCHW view of the same memory and returns a contiguous ``(B, H, W, C)``
    map; in CPU inference the activation is fused into the convolution (:func:`hilovit.cpu_inference.conv2d_act`).
    The wrapper exists for the official key name ``mlp.dwconv.dwconv`` (the GELU has no parameters).
    """

    def __init__(self, dim: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim, device=device, dtype=dtype)
        self.act = nn.GELU()
        nn.init.normal_(self.dwconv.weight, std=math.sqrt(2.0 / 9))  # official: fan-out init, 9 per group
        nn.init.zeros_(self.dwconv.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 3, 1, 2)
        x = self.act(self.dwconv(x)) if torch.jit.is_scripting() else conv2d_act(self.dwconv, self.act, x)
        return x.permute(0, 2, 3, 1)


class ConvFFN(nn.Module):
    """fc1 -> 3x3 depthwise conv -> GELU -> fc2 on ``(B, H, W, C)`` maps, dropout after GELU and fc2."""

    def __init__(
        self,
        dim: int,
        hidden_dim: int,
        drop: float = 0.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.fc1 = nn.Linear(dim, hidden_dim, **dd)
        self.dwconv = DWConv(hidden_dim, **dd)
        self.fc2 = nn.Linear(hidden_dim, dim, **dd)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        x = self.fc1(x) if torch.jit.is_scripting() else linear(self.fc1, x)
        x = self.drop(self.dwconv(x))
        return self.drop(self.fc2(x) if torch.jit.is_scripting() else linear(self.fc2, x))

    def flops(self, H: int, W: int) -> int:
        # fc1 + fc2, then the depthwise 3x3 and its bias (the official counter's convention).
        return H * W * self.fc1.out_features * (2 * self.fc1.in_features + 10)


class LITv2Block(nn.Module):
    """Pre-norm residual block on ``(B, H, W, C)``: ``x + HiLo(norm1(x))``, then ``x + ConvFFN(norm2(x))``.

    With ``window_size == 0`` the block has no attention (and no ``norm1``/``attn`` parameters): the
    ConvFFN-only blocks of LITv2's early stages.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int,
        alpha: float,
        mlp_ratio: float,
        qkv_bias: bool,
        qk_scale: float | None,
        drop: float,
        attn_drop: float,
        drop_path: float,
        norm_layer: NormLayer,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.norm1: nn.Module | None = None
        self.attn: HiLo | None = None
        if window_size > 0:
            self.norm1 = norm_layer(dim, **dd)
            self.attn = HiLo(
                dim,
                num_heads=num_heads,
                qkv_bias=qkv_bias,
                qk_scale=qk_scale,
                attn_drop=attn_drop,
                proj_drop=drop,
                window_size=window_size,
                alpha=alpha,
                **dd,
            )
        self.norm2 = norm_layer(dim, **dd)
        self.mlp = ConvFFN(dim, int(dim * mlp_ratio), drop, **dd)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        if self.attn is not None and self.norm1 is not None:
            x = x + self.drop_path(self.attn.forward_hwc(self.norm1(x)))  # the trunk has checked the image
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def flops(self, H: int, W: int) -> int:
        dim = self.mlp.fc1.in_features
        total = H * W * dim + self.mlp.flops(H, W)  # norm2 + ConvFFN
        if self.attn is not None:
            total += H * W * dim + self.attn.flops(H, W)
        return total


# CPU inference runs a stage's blocks on groups of images whose ConvFFN hidden maps take at most this many
# bytes, so that activations are still in cache when the next layer reads them: half this machine's
# last-level cache (benchmarks/bench_models.py --cpu-groups measures other budgets).
CPU_GROUP_BYTES = default_group_bytes()


class LITv2Stage(nn.Module):
    """The blocks of one resolution, then (except in the last stage) Deformable Token Merging.

    ``forward`` returns the stage's output map and the next stage's input; the output is what the
    dense-prediction form taps, before merging. In CPU inference (:func:`hilovit.cpu_inference.is_cpu_inference`)
    the blocks run on groups of images of at most ``cpu_group_bytes`` of ConvFFN hidden activations each
    (``None``: the whole batch at once); every block is per-image, so the result is the same.
    """

    def __init__(self, blocks: Sequence[LITv2Block], downsample: DeformablePatchMerging | None) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*blocks)
        self.downsample = downsample
        self.grad_checkpointing = False
        self.cpu_group_bytes: int | None = CPU_GROUP_BYTES

    def forward(self, x: Tensor, merge: bool = True) -> tuple[Tensor, Tensor]:
        x = self.blocks(x) if torch.jit.is_scripting() else self._eager_blocks(x)
        if not merge or self.downsample is None:
            return x, x
        # DTM takes NCHW; the channels-last view costs nothing, and its output comes back as (B, H, W, C).
        return x, self.downsample(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1).contiguous()

    def _eager_blocks(self, x: Tensor) -> Tensor:
        """The blocks in eager mode (and under tracers): with gradient checkpointing when it is on and autograd
        records, on groups of images in CPU inference (:meth:`_cpu_groups`), else on the whole batch."""
        if self.grad_checkpointing and torch.is_grad_enabled():
            for block in self.blocks:
                x = checkpoint(block, x, use_reentrant=False)
            return x
        groups = self._cpu_groups(x)
        return self.blocks(x) if groups is None else torch.cat([self.blocks(group) for group in groups])

    def _cpu_groups(self, x: Tensor) -> list[Tensor] | None:
        """In CPU inference, the batch in groups of images whose ConvFFN hidden maps fit ``cpu_group_bytes``."""
        if len(self.blocks) == 0 or not is_cpu_inference(x, self):
            return None
        _, H, W, _ = x.shape
        hidden = self.blocks[0].mlp.fc1.out_features
        return image_groups(x, H * W * hidden * x.element_size(), self.cpu_group_bytes)

    def flops(self, H: int, W: int, merge: bool = True) -> int:
        total = sum(block.flops(H, W) for block in self.blocks)
        if merge and self.downsample is not None:
            total += self.downsample.flops(H, W)
        return total


def _check_architecture(
    *,
    patch_size: int,
    in_chans: int,
    embed_dim: int,
    depths: Sequence[int],
    num_heads: Sequence[int],
    local_ws: Sequence[int],
    mlp_ratio: float,
    alpha: float,
    rates: dict[str, float],
) -> None:
    """Raise TypeError/ValueError naming the argument, its bad value and what is expected (see :class:`LITv2Trunk`)."""
    for name, value in (("patch_size", patch_size), ("in_chans", in_chans), ("embed_dim", embed_dim)):
        check_int(name, value, minimum=1)
    check_int_sequence("depths", depths, minimum=0)
    if len(depths) < 1:
        raise ValueError("depths must list at least one stage, got an empty sequence")
    for name, values, minimum in (("num_heads", num_heads, 1), ("local_ws", local_ws, 0)):
        check_int_sequence(name, values, minimum)
        if len(values) != len(depths):
            raise ValueError(
                f"{name}={tuple(values)} has {len(values)} entries, expected one per stage "
                f"({len(depths)}, as depths={tuple(depths)})"
            )
    check_number("mlp_ratio", mlp_ratio, POSITIVE)
    if int(embed_dim * mlp_ratio) < 1:
        raise ValueError(f"mlp_ratio={mlp_ratio} leaves no ConvFFN hidden channels at embed_dim={embed_dim}")
    check_number("alpha (the Lo-Fi share of heads)", alpha, PROBABILITY)
    for name, rate in rates.items():
        check_number(name, rate, FRACTION)


def init_linear(module: nn.Module) -> None:
    """LITv2's initialisation of linear layers (truncated normal, std 0.02, zero bias); use with ``Module.apply``."""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class LITv2Trunk(nn.Module):
    """Patch embedding and stages, shared by :class:`LITv2` and :class:`LITv2Backbone`.

    Stage ``i`` has ``embed_dim * 2**i`` channels at stride ``patch_size * 2**i``.

    Args:
        patch_size: side of the square patches of the embedding (4 in the paper; 2 suits 28-32 px images).
        in_chans: image channels.
        embed_dim: channels of the first stage.
        depths: blocks per stage.
        num_heads: attention heads per stage (unused where ``local_ws[i] == 0``).
        mlp_ratio: ConvFFN hidden width relative to the stage's channels.
        qkv_bias: learnable bias on the query/key/value projections.
        qk_scale: attention logit scale; ``head_dim ** -0.5`` when None or 0 (as the official
            ``qk_scale or head_dim ** -0.5``).
        drop_rate: dropout in the ConvFFN and after HiLo.
        attn_drop_rate: dropout on the attention weights.
        drop_path_rate: stochastic depth, rising linearly from 0 over all blocks to this value.
        norm_layer: token normalisation, called with the channel count.
        alpha: share of Lo-Fi heads in HiLo; ``int(num_heads * alpha)`` heads are Lo-Fi.
        local_ws: HiLo window per stage; ``0`` builds ConvFFN-only blocks, ``1`` global attention.
        patch_norm: normalise the patch embedding.
        use_checkpoint: start with gradient checkpointing on (see :meth:`set_grad_checkpointing`).
        device, dtype: where and how the parameters are created (``device="meta"`` allocates nothing), as timm's
            ``create_model(..., device=..., dtype=...)`` passes them.

    torch.fx traces the trunk (the image checks are a leaf call, :func:`check_image`; DTM is a leaf module) and
    TorchScript scripts it; both record the standard operations, never the CPU inference fast paths.
    """

    def __init__(
        self,
        *,
        patch_size: int = 4,
        in_chans: int = 3,
        embed_dim: int = 96,
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        norm_layer: NormLayer = nn.LayerNorm,
        alpha: float = 0.9,
        local_ws: Sequence[int] = (0, 0, 2, 1),
        patch_norm: bool = True,
        use_checkpoint: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        _check_architecture(
            patch_size=patch_size,
            in_chans=in_chans,
            embed_dim=embed_dim,
            depths=depths,
            num_heads=num_heads,
            local_ws=local_ws,
            mlp_ratio=mlp_ratio,
            alpha=alpha,
            rates=dict(drop_rate=drop_rate, attn_drop_rate=attn_drop_rate, drop_path_rate=drop_path_rate),
        )
        dd = {"device": device, "dtype": dtype}
        num_stages = len(depths)
        self.patch_size = patch_size
        self.in_chans = in_chans
        self.embed_dims = tuple(embed_dim * 2**i for i in range(num_stages))
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim, norm_layer if patch_norm else None, **dd)
        rates = torch.linspace(0, drop_path_rate, sum(depths), device="cpu").tolist()
        stages = []
        for i, (dim, depth) in enumerate(zip(self.embed_dims, depths, strict=True)):
            blocks = [
                LITv2Block(
                    dim,
                    num_heads[i],
                    local_ws[i],
                    alpha,
                    mlp_ratio,
                    qkv_bias,
                    qk_scale,
                    drop_rate,
                    attn_drop_rate,
                    rates[sum(depths[:i]) + j],
                    norm_layer,
                    **dd,
                )
                for j in range(depth)
            ]
            merge = DeformablePatchMerging(dim, dim * 2, **dd) if i < num_stages - 1 else None
            stages.append(LITv2Stage(blocks, merge))
        self.layers = nn.ModuleList(stages)
        self.feature_info = [
            dict(num_chs=dim, reduction=patch_size * 2**i, module=f"layers.{i}")
            for i, dim in enumerate(self.embed_dims)
        ]
        self.apply(init_linear)
        self.set_grad_checkpointing(use_checkpoint)

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block's activations in the backward pass instead of storing them."""
        for stage in self.layers:
            stage.grad_checkpointing = enable

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        """Names of the parameters to train without weight decay: norm weights and all biases."""
        return {name for name, param in self.named_parameters() if param.ndim <= 1}

    def stage_grids(self, H: int, W: int) -> list[tuple[int, int]]:
        """Token grid ``(h, w)`` of every stage for an ``H x W`` image (DTM floors odd sides)."""
        h, w = self.patch_embed.grid(H, W)
        grids = []
        for _ in self.layers:
            grids.append((h, w))
            h, w = h // 2, w // 2
        return grids

    def _trunk_flops(self, H: int, W: int, last: int) -> int:
        grids = self.stage_grids(H, W)
        total = self.patch_embed.flops(H, W)
        for i in range(last + 1):
            total += self.layers[i].flops(*grids[i], merge=i < last)
        return total

    def _run(self, x: Tensor, take: list[int], last: int) -> tuple[Tensor, list[Tensor]]:
        """Image -> (output of stage ``last``, ``(B, H, W, C)`` outputs of the stages in ``take``)."""
        if not torch.jit.is_scripting():  # TorchScript has no f-strings of shapes; the checks stay Python
            x = check_image(x, self.patch_embed.proj.weight, type(self).__name__, self.patch_size, last + 1)
        x = self.patch_embed(x)
        features = []
        for i, stage in enumerate(self.layers):
            if i <= last:
                out, x = stage(x, merge=i < last)
                if i in take:
                    features.append(out)
        return x, features


@torch.fx.wrap  # torch.fx records the call and checks at run time, when the sizes are known
@register_notrace_function
@torch.jit.ignore  # a scripted torch.fx graph calls it in Python (its messages are not TorchScript)
def check_image(x: Tensor, weight: Tensor, name: str, patch_size: int, stages: int) -> Tensor:
    """``x``, once checked: rank, channels (``weight``'s input channels), dtype and size of an image batch for the
    first ``stages`` stages of the model ``name`` with patches of ``patch_size``; ValueError/TypeError naming what
    is wrong. (It returns ``x`` so that graphs which drop unused calls, as torchvision's feature extractor does,
    keep the check.)"""
    chans = weight.shape[1]
    if x.dim() != 4 or x.shape[1] != chans:
        # A channels-last (B, H, W, C) batch, as image libraries give, is the usual cause.
        nhwc = x.dim() == 4 and x.shape[-1] == chans
        layout = " (channels-last / NHWC? use x.permute(0, 3, 1, 2))" if nhwc else ""
        raise ValueError(
            f"{name} expected an image batch (B, {chans}, H, W) with in_chans={chans} channels, "
            f"got shape {tuple(x.shape)}{layout}"
        )
    check_dtype(x, weight, name, f"a floating-point image (B, {chans}, H, W)")
    need = patch_size * (2 ** (stages - 1) - 1) + 1
    if x.shape[-2] < need or x.shape[-1] < need:
        raise ValueError(
            f"image of {x.shape[-2]}x{x.shape[-1]} px is too small: {stages} stages with patch_size "
            f"{patch_size} need at least {need} px per side"
        )
    return x


class LITv2(LITv2Trunk):
    """LITv2 image classifier with the official state-dict keys and timm's model interface.

    ``LITv2(**official_config)`` builds the model of an official checkpoint; any input size works.

    Args:
        img_size: nominal input size; only the default of :meth:`flops` (inputs of any size are accepted).
        num_classes: classifier outputs; 0 leaves the pooled features (no ``head`` parameters).
        global_pool: ``"avg"`` (mean over tokens) or ``""`` (per-token logits).
        norm_layer: as in :class:`LITv2Trunk`; also the final norm.
        device, dtype: as in :class:`LITv2Trunk`.
        **kwargs: the architecture, see :class:`LITv2Trunk`.

    :meth:`forward_features` returns a channels-last map ``(B, h, w, C)``: ``output_fmt = "NHWC"``, as timm's Swin
    declares it, so timm's tools read the channels from the last axis.
    """

    output_fmt = "NHWC"

    def __init__(
        self,
        *,
        img_size: int | tuple[int, int] = 224,
        num_classes: int = 1000,
        global_pool: str = "avg",
        norm_layer: NormLayer = nn.LayerNorm,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(norm_layer=norm_layer, device=device, dtype=dtype, **kwargs)
        self.img_size = to_2tuple(img_size)
        self.num_features = self.head_hidden_size = self.embed_dims[-1]
        self.norm = norm_layer(self.num_features, device=device, dtype=dtype)
        self.reset_classifier(num_classes, global_pool)

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the head by a freshly initialised one with ``num_classes`` outputs (0: none)."""
        if global_pool is not None:
            if global_pool not in ("avg", ""):
                raise ValueError(f"global_pool must be 'avg' or '', got {global_pool!r}")
            self.global_pool = global_pool
        check_int("num_classes", num_classes, minimum=0)
        self.num_classes = num_classes
        ref = self.patch_embed.proj.weight
        if num_classes > 0:
            self.head = nn.Linear(self.num_features, num_classes, device=ref.device, dtype=ref.dtype)
            init_linear(self.head)
        else:
            self.head = nn.Identity()
        self.head.train(self.training)

    @torch.jit.ignore
    def load_pretrained(self, checkpoint_path: str | os.PathLike[str]) -> None:
        """timm's hook for ``create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=path))``.

        Reads the file as :func:`~hilovit.models.load_official` does (clear errors for a missing, corrupt or
        non-checkpoint file), then has timm adapt the classifier / input channels and load it, through
        :func:`checkpoint_filter_fn`'s checks.
        """
        cfg = getattr(self, "pretrained_cfg", None) or _cfg()
        state = read_checkpoint(checkpoint_path)
        load_pretrained(
            self,
            {**cfg, "file": None, "custom_load": False, "state_dict": state},
            num_classes=self.num_classes,
            in_chans=self.patch_embed.proj.in_channels,
            filter_fn=checkpoint_filter_fn,
        )

    def forward_features(self, x: Tensor) -> Tensor:
        """Image ``(B, C, H, W)`` -> normalised final map ``(B, h, w, num_features)`` (channels last)."""
        x, _ = self._run(x, torch.jit.annotate(list[int], []), len(self.layers) - 1)
        return self.norm(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Pool the output of :meth:`forward_features` and classify it (``pre_logits``: skip the head)."""
        if self.global_pool == "avg":
            x = x.mean(dim=(1, 2))
        return x if pre_logits else self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(
        self,
        x: Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[Tensor] | tuple[Tensor, list[Tensor]]:
        """timm's feature interface: the stage outputs (before merging) at strides ``patch_size * 2**i``.

        Args:
            indices: stages to return; an int n means the last n, None all.
            norm: apply the final norm to the last stage's output when it is returned.
            stop_early: skip the stages after the last one returned (implied by ``intermediates_only``).
            output_fmt: ``"NCHW"`` or ``"NHWC"``.
            intermediates_only: return only the list, not ``(forward_features(x), list)``.
        """
        if output_fmt not in ("NCHW", "NHWC"):
            raise ValueError(f"output_fmt must be 'NCHW' or 'NHWC', got {output_fmt!r}")
        take = _resolve_indices(len(self.layers), indices)
        final = len(self.layers) - 1
        x, features = self._run(x, take, take[-1] if stop_early or intermediates_only else final)
        if norm and take[-1] == final:
            features[-1] = self.norm(features[-1])
        if output_fmt == "NCHW":
            features = [f.permute(0, 3, 1, 2) for f in features]
        if intermediates_only:
            return features
        return self.norm(x), features

    def prune_intermediate_layers(
        self, indices: int | Sequence[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Drop the stages (and optionally the norm/head) that the given feature indices do not need."""
        take = _resolve_indices(len(self.layers), indices)
        if take[-1] < len(self.layers) - 1:
            self.layers = self.layers[: take[-1] + 1]
            self.layers[-1].downsample = None
            self.num_features = self.head_hidden_size = self.embed_dims[take[-1]]
            self.norm = nn.Identity()
            prune_head = True
        if prune_norm:
            self.norm = nn.Identity()
        if prune_head:
            self.reset_classifier(0, "")
        return take

    def flops(self, H: int | None = None, W: int | None = None) -> int:
        """Multiply-accumulates of one image of ``H x W`` (default ``img_size``), as the paper counts them:
        patch embedding, norms, HiLo, ConvFFN, DTM and the classifier.

        One convention differs from the official ``flops()``: the final norm is counted on the final map's
        ``h * w`` tokens (one operation per element, as every other norm), where the official code uses Swin's
        ``num_features * (H/4) * (W/4) // 2**num_stages``, which counts 4x the final map's tokens (at 224: 196
        instead of 49, i.e. 112,896 MACs more for LITv2-S, 150,528 for LITv2-B). The paper's GMACs are the same
        to the two decimals it gives.
        """
        H = self.img_size[0] if H is None else H
        W = self.img_size[1] if W is None else W
        h, w = self.stage_grids(H, W)[-1]
        head = self.num_features * self.num_classes * (1 if self.global_pool == "avg" else h * w)
        return self._trunk_flops(H, W, len(self.layers) - 1) + self.num_features * h * w + head


class LITv2Backbone(LITv2Trunk):
    """LITv2 for dense prediction: image -> NCHW maps of the chosen stages (strides 4, 8, 16, 32).

    Keys follow the official mmdet/mmseg backbone: the trunk plus LayerNorms ``norm{i}`` on the outputs
    of stages ``i > 0`` (``norm0`` too with ``with_norm0``, as the segmentation code has). Any input
    size: the image is padded to a multiple of the patch size, HiLo pads internally and DTM floors odd
    sides. The maps are channels-last NCHW tensors (the layout the computation produces).

    Args:
        out_indices: stages whose outputs are returned (negative values count from the end).
        with_norm0: add an output norm to stage 0 (the official segmentation backbone has one).
        norm_layer: as in :class:`LITv2Trunk`; also the output norms.
        **kwargs: the architecture, see :class:`LITv2Trunk`.

    Attributes:
        out_channels: channels of each returned map.
        out_strides: stride of each returned map relative to the input.
        feature_info: timm-style ``num_chs`` / ``reduction`` / ``module`` of each returned map.
    """

    def __init__(
        self,
        *,
        out_indices: Sequence[int] = (0, 1, 2, 3),
        with_norm0: bool = False,
        norm_layer: NormLayer = nn.LayerNorm,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(norm_layer=norm_layer, device=device, dtype=dtype, **kwargs)
        self.out_indices = tuple(_resolve_indices(len(self.layers), out_indices))
        for i in self.out_indices:
            if i > 0 or with_norm0:
                self.add_module(f"norm{i}", norm_layer(self.embed_dims[i], device=device, dtype=dtype))
        self.feature_info = [self.feature_info[i] for i in self.out_indices]
        self.out_channels = tuple(info["num_chs"] for info in self.feature_info)
        self.out_strides = tuple(info["reduction"] for info in self.feature_info)

    def forward(self, x: Tensor) -> list[Tensor]:
        _, features = self._run(x, self.out_indices, self.out_indices[-1])
        maps = []
        for i, feature in zip(self.out_indices, features, strict=True):
            norm = getattr(self, f"norm{i}", None)
            maps.append((feature if norm is None else norm(feature)).permute(0, 3, 1, 2))
        return maps

    def flops(self, H: int, W: int) -> int:
        """Multiply-accumulates of one ``H x W`` image, output norms included."""
        grids = self.stage_grids(H, W)
        norms = sum(
            self.embed_dims[i] * grids[i][0] * grids[i][1] for i in self.out_indices if hasattr(self, f"norm{i}")
        )
        return self._trunk_flops(H, W, self.out_indices[-1]) + norms


# --------------------------------------------------------------------------------------------------
# Named architectures, timm registration and builders

_ARCHS: dict[str, dict[str, Any]] = {
    "litv2_nano": dict(embed_dim=32, depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8), drop_path_rate=0.0),
    "litv2_tiny": dict(embed_dim=64, depths=(2, 2, 4, 2), num_heads=(2, 4, 8, 16), drop_path_rate=0.1),
    "litv2_s": dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), drop_path_rate=0.2),
    "litv2_m": dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24), drop_path_rate=0.3),
    "litv2_b": dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32), drop_path_rate=0.5),
}
# Registered models whose architecture is another's: litv2_b_384 is litv2_b fine-tuned at 384x384.
_SAME_ARCH = {"litv2_b_384": "litv2_b"}


def litv2_config(name: str) -> dict[str, Any]:
    """Architecture arguments of a named LITv2, as a fresh dict.

    For example ``LITv2Backbone(**litv2_config("litv2_s"))``. Alpha 0.9, ``local_ws=(0, 0, 2, 1)``, mlp
    ratio 4 and qkv bias are the :class:`LITv2Trunk` defaults, so they are not repeated here. Every registered
    ``litv2_*`` name is known; ``litv2_b_384`` has ``litv2_b``'s architecture (its builder adds ``img_size=384``).
    """
    arch = _SAME_ARCH.get(name, name)
    if arch not in _ARCHS:
        raise ValueError(f"unknown LITv2 architecture {name!r}; known: {', '.join([*_ARCHS, *_SAME_ARCH])}")
    return dict(_ARCHS[arch])


def checkpoint_filter_fn(state_dict: dict[str, Tensor], model: LITv2) -> dict[str, Tensor]:
    """timm's hook for ``pretrained_cfg_overlay=dict(file=...)`` (or ``state_dict=...``): an official checkpoint
    -> ``model``'s keys, checked as :func:`~hilovit.models.load_official` checks them.

    Except what timm adapts after this hook, as its pretrained config says: when the class count differs,
    timm drops the classifier and loads non-strictly, so the checkpoint may lack the classifier and the final
    norm (a backbone checkpoint, e.g. for ``features_only``); when ``in_chans`` differs, timm converts the
    patch embedding's weight.
    """
    state, _ = official_state_dict(state_dict, model)
    cfg = getattr(model, "pretrained_cfg", None) or _cfg()
    missing, reshaped = [], []
    if model.num_classes != cfg["num_classes"]:
        missing += ["head.", "norm."]
        reshaped.append("head.")
    if model.patch_embed.proj.in_channels != cfg["input_size"][0]:
        reshaped.append("patch_embed.proj.weight")
    check_state_dict(state, model, allow_missing=missing, allow_reshaped=reshaped)
    return state


def _cfg(**kwargs: Any) -> dict[str, Any]:
    return {
        "url": "",  # no download, ever: weights come through load_official or pretrained_cfg_overlay
        "num_classes": 1000,
        "input_size": (3, 224, 224),
        "pool_size": (7, 7),
        "crop_pct": 0.875,
        "interpolation": "bicubic",
        "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD,
        "first_conv": "patch_embed.proj",
        "classifier": "head",
        "fixed_input_size": False,
        "license": "apache-2.0",
        "paper_ids": "arXiv:2205.13213",
        **kwargs,
    }


default_cfgs = generate_default_cfgs(
    {
        **{name: _cfg() for name in _ARCHS},
        "litv2_b_384": _cfg(input_size=(3, 384, 384), pool_size=(12, 12), crop_pct=1.0),
    }
)


def _create_litv2(variant: str, pretrained: bool, **kwargs: Any) -> LITv2:
    overlay = kwargs.get("pretrained_cfg_overlay") or {}
    if pretrained and not ({"file", "state_dict"} & set(overlay)):
        raise ValueError(
            f"{variant}: hilovit ships no weights and downloads nothing; pass "
            "pretrained_cfg_overlay=dict(file='path/to/checkpoint.pth') or load one with "
            "hilovit.models.load_official(model, path)"
        )
    if overlay.get("file"):
        # timm then hands the file to LITv2.load_pretrained, which reads it with hilovit's checks
        kwargs["pretrained_cfg_overlay"] = {"custom_load": True, **overlay}
    if kwargs.get("features_only"):
        kwargs["num_classes"] = 0  # the features wrapper drops the classifier, and timm loads weights without one
    out_indices = kwargs.pop("out_indices", (0, 1, 2, 3))
    return build_model_with_cfg(
        LITv2,
        variant,
        pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, feature_cls="getter"),
        **{**litv2_config(variant), **kwargs},
    )


@register_model
def litv2_nano(pretrained: bool = False, **kwargs: Any) -> LITv2:
    """LITv2-nano, for small images and CPUs: embed 32, depths 1-1-2-1, heads 1-2-4-8.

    1,679,680 params with 1000 classes, 0.20 GMACs at 224x224. ``patch_size=2`` suits 28-32 px inputs
    (strides 2, 4, 8, 16): ``timm.create_model("litv2_nano", patch_size=2, num_classes=10)`` has
    1,424,098 params and 15.5 MMACs at 32x32; with ``in_chans=1``, 1,423,842 params and 9.2 MMACs at 28x28.
    """
    return _create_litv2("litv2_nano", pretrained, **kwargs)


@register_model
def litv2_tiny(pretrained: bool = False, **kwargs: Any) -> LITv2:
    """LITv2-tiny: embed 64, depths 2-2-4-2, heads 2-4-8-16.

    11,056,576 params with 1000 classes, 1.41 GMACs at 224x224; with ``patch_size=2, num_classes=10``,
    10,546,402 params and 112.6 MMACs at 32x32.
    """
    return _create_litv2("litv2_tiny", pretrained, **kwargs)


@register_model
def litv2_s(pretrained: bool = False, **kwargs: Any) -> LITv2:
    """LITv2-S: embed 96, depths 2-2-6-2, heads 3-6-12-24; 27,844,000 params, 3.73 GMACs at 224."""
    return _create_litv2("litv2_s", pretrained, **kwargs)


@register_model
def litv2_m(pretrained: bool = False, **kwargs: Any) -> LITv2:
    """LITv2-M: embed 96, depths 2-2-18-2, heads 3-6-12-24; 48,830,368 params, 7.48 GMACs at 224."""
    return _create_litv2("litv2_m", pretrained, **kwargs)


@register_model
def litv2_b(pretrained: bool = False, **kwargs: Any) -> LITv2:
    """LITv2-B: embed 128, depths 2-2-18-2, heads 4-8-16-32; 86,520,704 params, 13.19 GMACs at 224."""
    return _create_litv2("litv2_b", pretrained, **kwargs)


@register_model
def litv2_b_384(pretrained: bool = False, **kwargs: Any) -> LITv2:
    """LITv2-B for 384x384 inputs (the official fine-tuned model): 86,520,704 params, 39.71 GMACs."""
    return _create_litv2("litv2_b_384", pretrained, **{"img_size": 384, **kwargs})
