"""One process or many under torchrun, unchanged: the process group, the device and a few collectives."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


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

    The backend is nccl on CUDA and gloo on CPU; ``device`` None picks CUDA when available.
    """
    kind = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu")).type
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return DistEnv(0, 1, torch.device(device or kind))
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


def any_true(flag: bool, env: DistEnv) -> bool:
    """True on every process when ``flag`` is true on one of them: a common decision to stop."""
    return bool(all_sum(torch.tensor([float(flag)], device=env.device), env).item())


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()
