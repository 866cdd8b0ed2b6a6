"""Discrete numeric columns as levels: one 0/1 input per boundary between their values.

A numeric column with few distinct values (an industry or occupation code, a year, a
count of calls) often acts as a set of categories: its effect jumps from one value to
the next. A tree splits between any two values; a network given only the number must
bend its smooth activations at each one. So each such column also gets an input
``x > t`` for every midpoint ``t`` between consecutive training values (k values: k - 1
inputs, which span the same functions as a one-hot code of the k values). A missing value
has every level input 0; a value unseen in training falls between the learned
boundaries, as a tree's split would put it.

The levels are kept as two flat lists, the numeric column of each boundary and its
threshold (plain values, saved in checkpoints); the inputs are computed per batch from the
unscaled numbers, so no copy of the data is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from skflash.data.missing_values import filled
from skflash.data.scaling import smooth_clip

#: Most distinct values of a column that ``"auto"`` takes as levels.
AUTO_MAX_VALUES = 20
#: Most distinct values of a column named in ``discrete_features``.
NAMED_MAX_VALUES = 256
#: Rows looked at first: a column with more distinct values there is skipped at once.
_FIRST_ROWS = 2_000


def distinct_values(column: np.ndarray, limit: int) -> np.ndarray | None:
    """The sorted distinct non-missing values of ``column``, or None when there are more
    than ``limit`` (found on the first rows when possible, without sorting the column)."""
    if len(np.unique(column[:_FIRST_ROWS])) > limit + 1:  # +1: a NaN among them
        return None
    values = np.unique(column).astype(np.float64)
    values = values[~np.isnan(values)]
    return values if len(values) <= limit else None


def learn_levels(
    numeric: np.ndarray, candidates: Sequence[int], limit: int, named: bool = False
) -> tuple[list[int], list[float]]:
    """The level boundaries of the ``candidates`` columns of ``numeric`` (the training
    rows' numeric columns): the column of each boundary, and its threshold.

    A candidate with fewer than 3 distinct values gets none (one boundary would repeat
    the column). Unless ``named``, a candidate with more than ``limit`` values gets none;
    a named one is refused.
    """
    columns: list[int] = []
    thresholds: list[float] = []
    for position in candidates:
        # the column as stored: a float64 copy of every column would cost more than the
        # check, which mostly stops at the first rows
        values = distinct_values(numeric[:, position], limit)
        if values is None:
            if named:
                raise ValueError(
                    f"discrete_features names the numeric column at position {position}, "
                    f"which has more than {limit} distinct values in training: levels are "
                    "for columns with few values (codes, counts, years). Leave it out, or "
                    "pass it as a categorical feature."
                )
            continue
        if len(values) < 3:
            continue
        middles = (values[1:] + values[:-1]) / 2
        columns += [int(position)] * len(middles)
        thresholds += [float(t) for t in middles]
    return columns, thresholds


def level_inputs(x: torch.Tensor, columns: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """The 0/1 level inputs of the unscaled rows ``x``: ``x[:, column] > threshold`` for
    each boundary (NaN compares false, so a missing value has none)."""
    return (x.index_select(1, columns) > thresholds).to(x.dtype)


def with_levels(x: torch.Tensor, levels: torch.Tensor, before: int) -> torch.Tensor:
    """``x`` with the ``levels`` columns inserted before column ``before`` (the codes)."""
    return torch.cat([x[:, :before], levels, x[:, before:]], dim=1)


def as_tensors(columns: Any, thresholds: Any, like: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The boundaries as tensors on ``like``'s device, thresholds in its dtype."""
    return (
        torch.as_tensor(columns, dtype=torch.long, device=like.device),
        torch.as_tensor(thresholds, dtype=like.dtype, device=like.device),
    )


def network_inputs(
    raw: torch.Tensor,
    scaled: torch.Tensor,
    numeric: int,
    robust: bool,
    indicators: Any,
    levels: tuple[torch.Tensor, torch.Tensor] | None,
    index: torch.Tensor | None = None,
) -> torch.Tensor:
    """The network's input from a batch of encoded rows: ``scaled`` (``raw`` after the
    learned scaling) smoothly clipped when ``robust``, missing numbers filled and flagged
    (``indicators``; ``index``, the same as a tensor), and the ``levels`` inputs of ``raw``
    (columns and thresholds, or None) before the category codes. One rule for training,
    predict and the ONNX graph."""
    x = smooth_clip(scaled, numeric) if robust else scaled
    x = filled(x, numeric, indicators, index)
    if levels is None:
        return x
    return with_levels(x, level_inputs(raw, *levels), numeric + len(indicators))
