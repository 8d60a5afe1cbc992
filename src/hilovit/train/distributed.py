"""One process or many under torchrun, unchanged: the process group, the device and a few collectives."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from hilovit.grammar import resolve_device


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits: rank, world size and its device."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(device: str | None = None) -> DistEnv:
    """Join the process group torchrun describes (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), if any.

    The backend is nccl on CUDA and gloo on CPU; ``device`` None or ``auto`` picks CUDA when available. A device
    this machine lacks is a ValueError naming it and what the machine has.
    """
    chosen = resolve_device(device)
    kind = chosen.type
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return DistEnv(0, 1, chosen)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    target = torch.device(kind, local_rank) if kind == "cuda" else torch.device(kind)
    if kind == "cuda":
        torch.cuda.set_device(target)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if kind == "cuda" else "gloo")
    return DistEnv(dist.get_rank(), dist.get_world_size(), target)


def teardown(env: DistEnv) -> None:
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_sum(tensor: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Sum over processes (in place; a no-op in a single process)."""
    if env.distributed:
        dist.all_reduce(tensor)
    return tensor


def any_true(env: DistEnv, *flags: bool) -> tuple[bool, ...]:
    """Each flag, true on every process when it is true on one of them: common decisions (stop, save) in one
    collective."""
    summed = all_sum(torch.tensor([float(flag) for flag in flags], device=env.device), env)
    return tuple(bool(value) for value in summed.tolist())


def average_buffers(model: nn.Module, env: DistEnv) -> None:
    """Average the floating-point buffers (BatchNorm running statistics) over processes, in place, so that every
    process evaluates and saves the same model (DDP keeps per-process statistics; SyncBatchNorm is CUDA only)."""
    if not env.distributed:
        return
    for buffer in model.buffers():
        if buffer.is_floating_point():
            dist.all_reduce(buffer)
            buffer /= env.world_size


def broadcast_object(value: Any, env: DistEnv) -> Any:
    """Rank 0's ``value`` on every process (a picklable object)."""
    if not env.distributed:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()
