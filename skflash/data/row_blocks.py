"""Data that arrives in row blocks (a Dask array or DataFrame), streamed one block at a time.

A fit on data larger than memory never holds it whole: :class:`RowBlocks` computes one
block of ``X`` (with its rows of ``y`` and ``sample_weight``) when asked, and
:class:`BlockStream` turns the blocks into the mini-batches of an epoch, shuffled block by
block. A :class:`~skflash.data.auto_dataset.IterableAutoDataset` built on a BlockStream
runs the Preprocess over it like over any other stream.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from skflash.data.batch_loader import BatchChunk
from skflash.data.categories import keyed_values, plain_key, refuse_equal_numbers
from skflash.data.missing_values import block_missing_columns
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


@dataclasses.dataclass
class BlockSurvey:
    """What a fit learns from all the rows of streamed data before it trains."""

    #: The distinct values (or a categorical column's categories) of each column surveyed.
    columns: list[tuple[bool, list]]
    #: Rows per label of the target (None when labels were not counted).
    label_counts: pd.Series | None
    #: Rows per label among the rows with a positive sample weight.
    weighted_label_counts: pd.Series | None
    #: The numeric columns surveyed that hold a missing value in some block (as indices
    #: into the numeric columns).
    missing: list[int] = dataclasses.field(default_factory=list)


def _block_summary(
    x: Any, y: Any, w: Any, positions: list[int], labels: bool, numeric: list[int]
) -> dict:
    """The small summary of one block that :meth:`RowBlocks.survey` merges."""
    summary: dict[str, Any] = {"rows": len(x), "missing": block_missing_columns(x, numeric)}
    if positions:
        frame = x if isinstance(x, pd.DataFrame) else pd.DataFrame(np.asarray(x, dtype=object))
        found = []
        for position in positions:
            values = frame.iloc[:, position]
            if isinstance(values.dtype, pd.CategoricalDtype):
                found.append((True, list(values.cat.categories)))
            else:  # booleans keyed apart from 1 and 0 (see CategoryCodes)
                refuse_equal_numbers(values.dropna(), frame.columns[position])
                found.append((False, keyed_values(values.dropna()).unique().tolist()))
        summary["columns"] = found
    if labels:
        values = pd.Series(np.asarray(y, dtype=object).ravel())
        summary["labels"] = values.value_counts()
        if w is not None:
            summary["weighted"] = values[np.asarray(w, dtype=np.float64).ravel() > 0].value_counts()
    return summary


def _merged_counts(counts: list[pd.Series]) -> pd.Series:
    return pd.concat(counts).groupby(level=0, sort=False).sum()


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
        self._x = _delayed_blocks(X)
        self._counts = _row_counts(X)
        self._parts = [
            self._aligned(v, name) for v, name in ((y, "y"), (sample_weight, "sample_weight"))
        ]

    def _aligned(self, value: Any, name: str) -> list | None:
        if value is None:
            return None
        if is_dask_collection(value):
            if hasattr(value, "rechunk") and self._counts is not None:  # an array
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

    @property
    def counts_unknown(self) -> bool:
        """Whether the rows per block are unknown until the blocks are computed."""
        return self._counts is None

    def row_counts(self) -> list[int]:
        """Rows per block (computed once, block by block, when Dask does not know them)."""
        if self._counts is None:
            import dask

            self._counts = [int(n) for n in dask.compute(*[block.shape[0] for block in self._x])]
        return self._counts

    def survey(
        self, positions: list[int] = (), labels: bool = False, numeric: list[int] = ()
    ) -> BlockSurvey:
        """Gather, in one pass of Dask over the blocks, the rows per block, the values of
        the columns at ``positions``, (``labels``) the rows per label of ``y``, and which
        of the ``numeric`` columns hold missing values."""
        import dask

        y_parts, w_parts = (p if p is not None else [None] * len(self) for p in self._parts)
        summaries = dask.compute(
            *[
                dask.delayed(_block_summary)(x, y, w, list(positions), labels, list(numeric))
                for x, y, w in zip(self._x, y_parts, w_parts, strict=True)
            ]
        )
        self._counts = [int(s["rows"]) for s in summaries]
        columns = []
        for j in range(len(positions)):
            categorical = any(s["columns"][j][0] for s in summaries)
            values = list(itertools.chain.from_iterable(s["columns"][j][1] for s in summaries))
            refuse_equal_numbers(values, positions[j])  # 1 in one block, 1.0 in another
            columns.append((categorical, [plain_key(v) for v in dict.fromkeys(values)]))
        counted = labels and summaries
        return BlockSurvey(
            columns,
            _merged_counts([s["labels"] for s in summaries]) if counted else None,
            _merged_counts([s["weighted"] for s in summaries])
            if counted and "weighted" in summaries[0]
            else None,
            sorted({i for s in summaries for i in s["missing"]}),
        )

    def first(self) -> tuple:
        """The first block that holds rows (loaded), to check the columns and the target."""
        counts = self._counts
        for index in range(len(self)):
            if counts is None or counts[index]:
                block = self.load(index)
                if len(block[0]):
                    return block
        raise ValueError("X holds no rows: a fit needs at least one sample.")

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
        Fraction of the rows held out for validation, the same fraction of every block
        (drawn per block from ``seed``): the ``"train"`` part skips them, the ``"val"``
        part keeps only them.
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
        """This part's rows of block ``index`` (a boolean mask), or None for all of them.

        Block ``index`` holds out ``round(end * holdout) - round(start * holdout)`` rows,
        where ``start:end`` are its rows in the whole data, so the data holds out
        ``round(n_rows * holdout)`` rows however small its blocks are.
        """
        if self.holdout is None or self.part == "all":
            return None
        start = sum(self.blocks.row_counts()[:index])
        n_held = round((start + n_rows) * self.holdout) - round(start * self.holdout)
        held_out = np.zeros(n_rows, dtype=bool)
        rows = np.random.default_rng([self.seed, index]).permutation(n_rows)
        held_out[rows[:n_held]] = True
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
