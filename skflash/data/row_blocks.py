"""Data that arrives in row blocks (a Dask array or DataFrame), streamed one block at a time.

A fit on data larger than memory never holds it whole: :class:`RowBlocks` computes one
block of ``X`` (with its rows of ``y`` and ``sample_weight``) when asked, and
:class:`BlockStream` turns the blocks into the mini-batches of an epoch, shuffled block by
block. A :class:`~skflash.data.auto_dataset.IterableAutoDataset` built on a BlockStream
runs the Preprocess over it like over any other stream.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from skflash.data.batch_loader import BatchChunk
from skflash.data.samples import ArraySamples


def is_dask_collection(value: Any) -> bool:
    """Whether ``value`` is a Dask array, DataFrame or Series (computed lazily)."""
    return type(value).__module__.startswith("dask") and hasattr(value, "to_delayed")


def _delayed_blocks(value: Any) -> list:
    """One delayed object per row block of a Dask collection."""
    if value.ndim == 2 and hasattr(value, "rechunk"):  # an array: whole rows per block
        value = value.rechunk({1: -1})
    return list(np.asarray(value.to_delayed(), dtype=object).ravel())


def _row_counts(value: Any) -> list[int] | None:
    """Rows per block when Dask knows them without computing (arrays), else None."""
    chunks = getattr(value, "chunks", None)
    if chunks is None or any(np.isnan(c) for c in chunks[0]):
        return None
    return [int(c) for c in chunks[0]]


def _each_block(function: Callable[[Any], Any], parts: list) -> list:
    """``function`` of each block: lazy blocks computed by Dask (in parallel where its
    scheduler allows), in-memory ones directly; only the small results are gathered."""
    import dask

    lazy = [dask.delayed(function)(p) if hasattr(p, "dask") else None for p in parts]
    computed = iter(dask.compute(*[d for d in lazy if d is not None]))
    return [
        next(computed) if d is not None else function(p) for d, p in zip(lazy, parts, strict=True)
    ]


def _label_counts(values: Any) -> pd.Series:
    return pd.Series(np.asarray(values, dtype=object).ravel()).value_counts()


def _distinct(block: Any, positions: list[int]) -> list[tuple[bool, list]]:
    frame = (
        block if isinstance(block, pd.DataFrame) else pd.DataFrame(np.asarray(block, dtype=object))
    )
    found = []
    for position in positions:
        values = frame.iloc[:, position]
        if isinstance(values.dtype, pd.CategoricalDtype):
            found.append((True, list(values.cat.categories)))
        else:
            found.append((False, values.dropna().unique().tolist()))
    return found


class RowBlocks:
    """The aligned row blocks of ``X`` and of ``y`` and ``sample_weight``.

    ``X`` is a Dask array or DataFrame; ``y`` and ``sample_weight`` are Dask collections
    with the same blocks, or in-memory arrays (cut along ``X``'s blocks), or None.
    Each :meth:`load` computes one block with Dask's configured scheduler (a
    ``distributed.Client`` when one is active).

    Parameters
    ----------
    X : dask.array.Array or dask.dataframe.DataFrame
    y, sample_weight : array-like or Dask collection, optional
    """

    def __init__(self, X: Any, y: Any = None, sample_weight: Any = None) -> None:
        if getattr(X, "ndim", 2) != 2:
            raise ValueError(
                f"X must be 2-D (samples, features), got a Dask collection of shape {X.shape}."
            )
        self.meta = getattr(X, "_meta", None)  # an empty pandas frame, or numpy array
        self._x = _delayed_blocks(X)
        self._counts = _row_counts(X)
        self._parts = [
            self._aligned(v, name) for v, name in ((y, "y"), (sample_weight, "sample_weight"))
        ]

    def _aligned(self, value: Any, name: str) -> list | None:
        if value is None:
            return None
        if is_dask_collection(value):
            if getattr(value, "ndim", 1) == 1 and self._counts is not None:
                counts = _row_counts(value)
                if counts is not None and sum(counts) == sum(self._counts):
                    value = value.rechunk({0: tuple(self._counts)})
            blocks = _delayed_blocks(value)
            if len(blocks) != len(self._x):
                raise ValueError(
                    f"X comes in {len(self._x)} row blocks but {name} in {len(blocks)}: "
                    "give both the same blocks (e.g. y = "
                    "X_frame['target'], or rechunk them alike)."
                )
            return blocks
        values = np.asarray(value)
        bounds = np.cumsum([0, *self.row_counts()])
        if len(values) != bounds[-1]:
            raise ValueError(f"X has {bounds[-1]} rows but {name} has {len(values)}.")
        return [values[a:b] for a, b in itertools.pairwise(bounds)]

    def __len__(self) -> int:
        return len(self._x)

    def row_counts(self) -> list[int]:
        """Rows per block (computed once, block by block, when Dask does not know them)."""
        if self._counts is None:
            import dask

            self._counts = [int(n) for n in dask.compute(*[block.shape[0] for block in self._x])]
        return self._counts

    def target_counts(self) -> Any:
        """Rows per label of a 1-D ``y`` over all blocks (a pandas Series; missing labels
        left out), computed by Dask block by block."""
        counts = _each_block(_label_counts, self._parts[0])
        return pd.concat(counts).groupby(level=0, sort=False).sum()

    def column_values(self, positions: list[int]) -> list[tuple[bool, list]]:
        """Per column at ``positions``: ``(True, categories)`` for a pandas categorical
        column (the union of its blocks' categories, in order), else ``(False, values)``
        (the distinct values present), computed by Dask block by block."""
        per_block = _each_block(functools.partial(_distinct, positions=positions), self._x)
        merged = []
        for j in range(len(positions)):
            categorical = any(found[j][0] for found in per_block)
            values = itertools.chain.from_iterable(found[j][1] for found in per_block)
            merged.append((categorical, list(dict.fromkeys(values))))
        return merged

    def load(self, index: int) -> tuple:
        """Block ``index``: ``(X, y, sample_weight)`` in memory (None where not given)."""
        import dask

        wanted = [self._x[index]] + [None if p is None else p[index] for p in self._parts]
        lazy = [i for i, v in enumerate(wanted) if v is not None and hasattr(v, "dask")]
        computed = dask.compute(*[wanted[i] for i in lazy]) if lazy else ()
        for i, value in zip(lazy, computed, strict=True):
            wanted[i] = value
        lengths = {len(v) for v in wanted if v is not None}
        if len(lengths) > 1:
            raise ValueError(
                f"Row block {index} holds {len(wanted[0])} rows of X but a different number "
                "of y or sample_weight: give them the same blocks."
            )
        return tuple(wanted)


def _rows(values: Any, mask: np.ndarray) -> Any:
    return values.iloc[mask] if hasattr(values, "iloc") else values[mask]


class BlockStream:
    """The rows of :class:`RowBlocks` as mini-batches, one block in memory at a time.

    Each block is loaded, passed through ``prepare`` (validation and encoding: it returns
    ``(x, y)`` or ``(x, y, sample_weight)`` arrays), cut to this stream's part of the rows
    and, when shuffling, permuted; every epoch visits the blocks in a new order. Rows
    left over at the end of a block start the next batch, so every batch but the last is
    full.

    Parameters
    ----------
    blocks : RowBlocks
    prepare : callable
        Turns a loaded block into the arrays of its rows.
    batch_size : int
    shuffle : bool, default=False
    seed : int, default=0
        Seeds the shuffling and the held-out rows.
    holdout : float, optional
        Fraction of each block's rows held out for validation (as many as
        ``round(rows * holdout)``, drawn per block from ``seed``): the ``"train"`` part
        skips them, the ``"val"`` part keeps only them.
    part : {"all", "train", "val"}, default="all"
    """

    #: Each item is a whole batch: loaders pass it on as it is.
    yields_batches = True

    def __init__(
        self,
        blocks: RowBlocks,
        prepare: Callable[[tuple], tuple],
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        holdout: float | None = None,
        part: str = "all",
    ) -> None:
        self.blocks = blocks
        self.prepare = prepare
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.holdout = holdout
        self.part = part
        self.convert: Callable[[tuple], Any] = tuple
        self._epoch = 0

    def converted(self, convert: Callable[[tuple], Any]) -> BlockStream:
        """The same stream handing out ``convert(arrays)`` for each batch (e.g. tensors)."""
        stream = BlockStream.__new__(BlockStream)
        stream.__dict__.update(self.__dict__)
        stream.convert = convert
        return stream

    def _kept(self, index: int, n_rows: int) -> np.ndarray | None:
        """This part's rows of block ``index`` (a boolean mask), or None for all of them."""
        if self.holdout is None or self.part == "all":
            return None
        held_out = np.zeros(n_rows, dtype=bool)
        rows = np.random.default_rng([self.seed, index]).permutation(n_rows)
        held_out[rows[: round(n_rows * self.holdout)]] = True
        return ~held_out if self.part == "train" else held_out

    def arrays(self, order: Any = None, rng: np.random.Generator | None = None) -> Iterator[tuple]:
        """This part's rows, block by block (in ``order``; rows permuted with ``rng``)."""
        for index in range(len(self.blocks)) if order is None else order:
            block = self.blocks.load(int(index))
            kept = self._kept(int(index), len(block[0]))
            if kept is not None:
                block = tuple(None if v is None else _rows(v, kept) for v in block)
            if not len(block[0]):
                continue
            arrays = self.prepare(block)
            if rng is not None:
                rows = rng.permutation(len(arrays[0]))
                arrays = tuple(a[rows] for a in arrays)
            if len(arrays[0]):
                yield arrays

    def _epoch_rows(self) -> Iterator[tuple]:
        """An epoch's rows, a block at a time, each cut to whole batches; rows left over
        start the next, and the last rows of the epoch come on their own."""
        rng = None
        order = None
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self._epoch, 1])
            order = rng.permutation(len(self.blocks))
            self._epoch += 1
        pending: tuple | None = None
        size = self.batch_size
        for arrays in self.arrays(order, rng):
            if pending is not None:
                arrays = tuple(np.concatenate(pair) for pair in zip(pending, arrays, strict=True))
            full = len(arrays[0]) // size * size
            if full:
                yield tuple(a[:full] for a in arrays)
            pending = tuple(a[full:] for a in arrays) if full < len(arrays[0]) else None
        if pending is not None:
            yield pending

    def __iter__(self) -> Iterator[Any]:
        size = self.batch_size
        for arrays in self._epoch_rows():
            for start in range(0, len(arrays[0]), size):
                yield self.convert(tuple(a[start : start + size] for a in arrays))

    def chunks(self, transform: Callable[[Any], Any]) -> Iterator[BatchChunk]:
        """The epoch as one :class:`BatchChunk` per block (its batches, in order)."""
        for i, arrays in enumerate(self._epoch_rows()):
            tensors = self.convert(arrays)
            yield BatchChunk(ArraySamples(*tensors), None, self.batch_size, transform, i == 0)
