"""What a fit on streamed row blocks learns from all the rows before it trains."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from skflash.data.categories import CategoryCodes
from skflash.data.row_blocks import RowBlocks


def streamed_categories(
    blocks: RowBlocks,
    first: Any,
    setting: Any,
    find: Callable[[Any, Any], CategoryCodes | None],
) -> CategoryCodes | None:
    """The categorical columns of streamed data and the categories of all its rows.

    ``find`` picks the columns from the first block (``first``), as for in-memory data;
    the categories are then gathered from every block by Dask, so values that first
    appear in later blocks get codes of their own.
    """
    found = find(first, setting)
    if found is None:
        return None
    values = blocks.column_values(found.columns)
    length = max(1, *(len(v) for _, v in values))
    frame = pd.DataFrame({i: [None] * length for i in range(first.shape[1])}, dtype=object)
    for position, (categorical, known) in zip(found.columns, values, strict=True):
        padded = known + [None] * (length - len(known))
        frame[position] = (
            pd.Categorical([None] * length, categories=known) if categorical else padded
        )
    return CategoryCodes(found.columns).learn(frame)
