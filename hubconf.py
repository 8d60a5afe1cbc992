"""torch.hub entrypoints for the LITv2 family; nothing is downloaded.

    model = torch.hub.load("path/to/hilovit", "litv2_s", source="local", checkpoint="litv2_s.pth")

``checkpoint`` (optional) is an official LITv2 checkpoint or one saved by hilovit, loaded strictly
through :func:`hilovit.models.load_official`; other keyword arguments go to the builder.
"""

import sys
from collections.abc import Callable
from pathlib import Path

try:
    import hilovit  # noqa: F401  an installed hilovit wins
except ImportError:  # a plain checkout: the package lives under src/
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from hilovit import models as _models

dependencies = ["torch", "timm"]


def _entrypoint(builder: Callable[..., _models.LITv2]) -> Callable[..., _models.LITv2]:
    def entry(checkpoint: str | Path | None = None, **kwargs):
        model = builder(**kwargs)
        if checkpoint is not None:
            _models.load_official(model, checkpoint)
        return model

    entry.__name__ = builder.__name__
    entry.__doc__ = f"{builder.__doc__}\n\nPass checkpoint=path to load official or hilovit weights."
    return entry


litv2_nano = _entrypoint(_models.litv2_nano)
litv2_tiny = _entrypoint(_models.litv2_tiny)
litv2_s = _entrypoint(_models.litv2_s)
litv2_m = _entrypoint(_models.litv2_m)
litv2_b = _entrypoint(_models.litv2_b)
litv2_b_384 = _entrypoint(_models.litv2_b_384)
