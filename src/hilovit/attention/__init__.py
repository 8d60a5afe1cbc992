"""Attention layers: HiLo in token and NCHW form, its 3-D form for videos and volumes, FLOP-counting helpers."""

from hilovit.attention.hilo import HiLo, HiLo2d
from hilovit.attention.hilo3d import HiLo3d, HiLo3dChannelsFirst

__all__ = ["HiLo", "HiLo2d", "HiLo3d", "HiLo3dChannelsFirst"]
