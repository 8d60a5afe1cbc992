"""The one training engine: :class:`Trainer` and its tasks (classification, video, volume, detection, semantic
segmentation), ``hilovit <task> train`` or ``torchrun --nproc_per_node=N -m hilovit <task> train ...`` (DDP)."""

from hilovit.train.checkpoint import TrainCheckpointError
from hilovit.train.config import ConfigError, TrainConfig, load_config
from hilovit.train.loop import NonFiniteLossError, RunInterrupted, Trainer, TrainResult
from hilovit.train.metrics import Evaluation, evaluate
from hilovit.train.tasks import TASK_TRAINERS, train

__all__ = [
    "TASK_TRAINERS",
    "ConfigError",
    "Evaluation",
    "NonFiniteLossError",
    "RunInterrupted",
    "TrainCheckpointError",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "evaluate",
    "load_config",
    "train",
]
