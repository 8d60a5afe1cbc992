import json
import subprocess
import sys

import torch
from safetensors.torch import load_file

from hilovit.train import train

# No randomness besides the data order, which DistributedSampler and the single-process sampler share. SGD, as
# Adam turns float-rounding noise into lr-sized steps for the parameters whose true gradient is zero (the biases
# right before BatchNorm).
DETERMINISTIC = ["hflip=0", "scale=[1, 1]", "mixup=0", "cutmix=0", "opt=sgd", "lr=0.05"]


def test_two_process_ddp_matches_one_process_with_the_same_global_batch(tiny, tmp_path):
    """Two gloo processes with 16 images each against one process with 32 in two accumulation micro-batches.

    Accumulation splits a batch the way DDP splits it over processes (every other sample), so BatchNorm in the
    DTM layers sees the same 16 images either way and the comparison is exact up to float summation order
    (SyncBatchNorm, used under DDP on CUDA, is not available on CPU). The BatchNorm running statistics are
    left out: DDP keeps rank 0's, accumulation updates them once per micro-batch; training never reads them.
    """
    cfg = tiny(*DETERMINISTIC)
    overrides = [f"{key}={json.dumps(value)}" for key, value in cfg.to_dict().items()]
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "hilovit",
        "train",
        *overrides,
        f"output={tmp_path / 'ddp'}",
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    single = train(tiny(*DETERMINISTIC, "accum_steps=2", f"output={tmp_path / 'single'}"))
    assert single.steps == 8
    reference = load_file(tmp_path / "single" / "model.safetensors")
    ddp = load_file(tmp_path / "ddp" / "model.safetensors")
    parameters = [key for key in reference if not key.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    for key in parameters:
        value = reference[key]
        torch.testing.assert_close(ddp[key], value, rtol=1e-4, atol=1e-6, msg=key)
