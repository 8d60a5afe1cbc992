"""The training order: a seeded permutation per epoch that can restart in the middle of an epoch."""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import DistributedSampler


class ResumableSampler(DistributedSampler):
    """:class:`DistributedSampler` (also used by a single process) whose epoch can skip its first samples.

    The order of epoch ``e`` depends only on ``seed`` and ``e``, so a resumed run sees the same samples in the
    same order as an uninterrupted one; ``set_epoch(e, skip=n)`` drops the ``n`` samples this rank already saw.
    """

    skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        super().set_epoch(epoch)
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        return iter(list(super().__iter__())[self.skip :])

    def __len__(self) -> int:
        return self.num_samples - self.skip
