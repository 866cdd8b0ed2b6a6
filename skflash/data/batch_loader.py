"""Loaders that hand the Trainer a whole epoch of array batches at once.

Lightning's bookkeeping costs about as much per optimizer step as a small model's
forward and backward pass. For in-memory array data the :class:`ChunkedBatchLoader`
gives ``training_step`` one :class:`BatchChunk` per epoch, a lazy sequence of the
epoch's mini-batches, and the Task runs the optimizer steps inside it. The batches still
come from the Preprocess: each is taken from the loaded samples with one indexing call
and passed through ``per_batch_transform`` and the device-side hooks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch

from skflash.data.auto_dataset import AutoDataset
from skflash.data.sampling import EpochPermutation


class BatchChunk:
    """The mini-batches of one epoch, built lazily as the Task iterates over them.

    Parameters
    ----------
    samples : object with ``take_batch``
        The loaded samples (e.g. :class:`~skflash.data.samples.ArraySamples`).
    order : torch.Tensor or None
        Sample indices in the order of this epoch; None takes the samples in order, as
        slices (views, no copies).
    batch_size : int
    transform : callable
        Applied to each batch (the loader- and device-side Preprocess hooks).
    starts_epoch : bool, default=True
        Whether this chunk is the first of its epoch (streamed data comes as one chunk per
        block of rows; the Task sums what it logs over an epoch's chunks).
    """

    def __init__(
        self,
        samples: Any,
        order: torch.Tensor | None,
        batch_size: int,
        transform: Callable[[Any], Any],
        starts_epoch: bool = True,
    ) -> None:
        self.samples = samples
        self.order = order
        self.batch_size = batch_size
        self.transform = transform
        self.starts_epoch = starts_epoch

    @property
    def num_samples(self) -> int:
        return len(self.samples) if self.order is None else len(self.order)

    def __len__(self) -> int:
        return -(-self.num_samples // self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        if self.order is None:
            indices: Any = (
                slice(start, start + self.batch_size)
                for start in range(0, self.num_samples, self.batch_size)
            )
        else:
            indices = self.order.split(self.batch_size)
        for index in indices:
            yield self.transform(self.samples.take_batch(index))

    def with_transform(self, transform: Callable[[Any], Any] | None) -> BatchChunk:
        """The same chunk with ``transform`` applied after the current one."""
        if transform is None:
            return self
        first = self.transform
        return BatchChunk(
            self.samples,
            self.order,
            self.batch_size,
            lambda b: transform(first(b)),
            self.starts_epoch,
        )

    def to(self, device: torch.device) -> BatchChunk:
        """Lightning moves batches with ``.to(device)``; samples already there stay put."""
        to = getattr(self.samples, "to", None)
        samples = self.samples if to is None else to(device)
        order = None if self.order is None else self.order.to(device)
        if samples is self.samples and order is self.order:
            return self
        return BatchChunk(samples, order, self.batch_size, self.transform, self.starts_epoch)


class ChunkedBatchLoader:
    """Yield one :class:`BatchChunk` per epoch over an AutoDataset that fetches batches.

    Parameters
    ----------
    dataset : AutoDataset
        Must fetch whole batches (``dataset.fetches_batches``).
    batch_size : int
    shuffle : bool, default=False
    generator : torch.Generator, optional
        Drives the shuffling, so that a seed gives the same order of batches.
    transform : callable, optional
        The loader-side batch hook (``per_batch_transform``).
    """

    def __init__(
        self,
        dataset: AutoDataset,
        batch_size: int,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        transform: Callable[[Any], Any] | None = None,
    ) -> None:
        if not getattr(dataset, "fetches_batches", False):
            raise ValueError(
                "ChunkedBatchLoader needs a dataset that fetches whole batches: array samples "
                "and no per-sample Preprocess hook."
            )
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.generator = generator
        self.transform = transform if transform is not None else _identity
        self._samples = dataset.data

    def __len__(self) -> int:
        return 1

    def release(self) -> None:
        """Let go of the samples (the loader is spent)."""
        self._samples = None

    def to(self, device: torch.device | str) -> None:
        """Keep the samples on ``device`` so that no batch is copied from the host."""
        to = getattr(self._samples, "to", None)
        if to is not None:
            self._samples = to(device)

    def __iter__(self) -> Iterator[BatchChunk]:
        n = len(self._samples)
        order = EpochPermutation(n, self.generator).permutation() if self.shuffle else None
        yield BatchChunk(self._samples, order, self.batch_size, self.transform)


class StreamedChunkLoader:
    """Yield one :class:`BatchChunk` per block of rows of a streamed dataset.

    For data that arrives in blocks (an IterableAutoDataset over a
    :class:`~skflash.data.row_blocks.BlockStream`): the Task runs each block's optimizer
    steps in one Lightning step.
    """

    def __init__(self, dataset: Any, transform: Callable[[Any], Any] | None = None) -> None:
        self.dataset = dataset
        self.transform = transform if transform is not None else _identity

    def release(self) -> None:
        """Nothing to let go of: the blocks are loaded as they are iterated."""

    def __iter__(self) -> Iterator[BatchChunk]:
        return self.dataset.data.chunks(self.transform)


def _identity(batch: Any) -> Any:
    return batch
