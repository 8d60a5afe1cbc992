"""Classification training and evaluation: ``python -m hilovit.train RECIPE key=value ...`` or ``hilovit train``.

The same command runs on one process or under ``torchrun --nproc_per_node=N -m hilovit.train ...`` (DDP).
"""

from hilovit.train.checkpoint import TrainCheckpointError
from hilovit.train.config import ConfigError, TrainConfig, load_config
from hilovit.train.loop import Trainer, TrainResult, train
from hilovit.train.metrics import Evaluation, evaluate

__all__ = [
    "ConfigError",
    "Evaluation",
    "TrainCheckpointError",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "evaluate",
    "load_config",
    "train",
]
