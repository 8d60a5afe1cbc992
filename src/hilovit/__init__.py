"""hilovit: HiLo attention and LITv2 vision transformers, exact and fast."""

__version__ = "0.1.0"

from hilovit.attention import HiLo, HiLo2d, HiLo3d, HiLo3dChannelsFirst

__all__ = ["HiLo", "HiLo2d", "HiLo3d", "HiLo3dChannelsFirst", "__version__"]
from hilovit import models  # noqa: F401  registers the LITv2 family with timm
