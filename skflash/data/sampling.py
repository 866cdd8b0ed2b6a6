"""The order in which an epoch visits the training samples."""

from __future__ import annotations

from collections.abc import Iterator

import torch


class EpochPermutation(torch.utils.data.Sampler):
    """A fresh random order of ``n`` samples each epoch, drawn from ``generator``.

    Both ways of training draw their order from it (the per-batch DataLoader as its
    sampler, the chunked loader for its chunks), so one seed gives one order of batches
    whichever runs.
    """

    def __init__(self, n: int, generator: torch.Generator | None = None) -> None:
        self.n, self.generator = int(n), generator

    def __len__(self) -> int:
        return self.n

    def permutation(self) -> torch.Tensor:
        return torch.randperm(self.n, generator=self.generator)

    def __iter__(self) -> Iterator[int]:
        return iter(self.permutation().tolist())
