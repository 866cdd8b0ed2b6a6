"""What a fit on streamed row blocks learns from all the rows before it trains."""

from __future__ import annotations

import pandas as pd

from skflash.data.categories import CategoryCodes


def categories_of_all_rows(
    found: CategoryCodes, values: list[tuple[bool, list]], n_columns: int
) -> CategoryCodes:
    """The codes of the categorical columns ``found`` (in a first block), learned from the
    ``values`` of every block (see :meth:`~skflash.data.row_blocks.RowBlocks.survey`), so
    values that first appear in later blocks get codes of their own."""
    length = max(1, *(len(v) for _, v in values))
    frame = pd.DataFrame({i: [None] * length for i in range(n_columns)}, dtype=object)
    for position, (categorical, known) in zip(found.columns, values, strict=True):
        if categorical:
            frame[position] = pd.Categorical([None] * length, categories=known)
        else:
            frame[position] = pd.Series(known + [None] * (length - len(known)), dtype=object)
    return CategoryCodes(found.columns).learn(frame)
