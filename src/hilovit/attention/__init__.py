"""Attention layers: HiLo in token and NCHW form, and the FLOP-counting helpers."""

from hilovit.attention.hilo import HiLo, HiLo2d

__all__ = ["HiLo", "HiLo2d"]
