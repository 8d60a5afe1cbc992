import numpy as np
import pytest

from hilovit.data import write_idx
from hilovit.train import load_config

SIZE = 16  # the smallest square LITv2 with 2x2 patches takes is 15 px


def _images(labels, rng):
    """Class k lights up row k of a 4x4 grid of blocks; noise elsewhere: learnable in a few steps."""
    images = rng.integers(0, 60, size=(len(labels), SIZE, SIZE), dtype=np.uint8)
    for i, label in enumerate(labels):
        row, column = divmod(int(label), 4)
        images[i, 4 * row : 4 * row + 4, 4 * column : 4 * column + 4] = 255
    return images


@pytest.fixture(scope="session")
def idx_data(tmp_path_factory):
    """A 4-class IDX dataset of 16x16 grey images: 128 training, 32 test."""
    root = tmp_path_factory.mktemp("idx")
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 128), ("t10k", 32)):
        labels = np.arange(n, dtype=np.uint8) % 4
        write_idx(_images(labels, rng), root / f"{prefix}-images-idx3-ubyte.gz")
        write_idx(labels, root / f"{prefix}-labels-idx1-ubyte.gz")
    return root


@pytest.fixture
def tiny(idx_data, tmp_path):
    """A config factory: LITv2-nano with 2x2 patches on the synthetic data, 4 steps per epoch."""

    def make(*overrides):
        return load_config(
            "litv2_nano_fmnist",
            [
                f"data={idx_data}",
                f"img_size={SIZE}",
                f"output={tmp_path / 'run'}",
                "batch_size=32",
                "epochs=2",
                "time_budget=null",
                "progress=false",
                "throughput_batch=8",
                "warmup_epochs=0.5",
                *overrides,
            ],
        )

    return make
