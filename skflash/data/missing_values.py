"""Missing numbers (NaN, None, ``pd.NA``) in numeric columns, taken as they come.

The rule, one for fit, predict, streamed blocks and the ONNX graph: a missing number is
filled with 0 after the input scaling (the training mean, or median with robust scaling;
0 itself without scaling), and each numeric column that had missing values in training
gets a 0/1 indicator input, placed after the numeric columns and before the category
codes. A column that had none in training is filled the same way at predict, without an
indicator. Infinities are never missing values: validation refuses them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

#: scikit-learn's ``ensure_all_finite`` setting: NaN allowed, infinities refused.
ALLOW_NAN = "allow-nan"


def with_nan(X: Any) -> Any:
    """``X`` with the missing values that numpy cannot hold in a number (None, ``pd.NA``)
    as NaN, in a copy; ``X`` itself when it has none (the user's data is never changed).

    Only object columns are touched: pandas' nullable dtypes (``Float64``, ``Int64``)
    become floats with NaN in scikit-learn's own validation.
    """
    if isinstance(X, pd.DataFrame):
        objects = [i for i, dtype in enumerate(X.dtypes) if pd.api.types.is_object_dtype(dtype)]
        if not objects or not any(X.iloc[:, i].isna().any() for i in objects):
            return X
        X = X.copy()
        for i in objects:
            column = X.iloc[:, i]
            X.isetitem(i, column.where(column.notna(), np.nan))
        return X
    if isinstance(X, np.ndarray) and X.dtype == object:
        missing = pd.isna(X)
        return np.where(missing, np.nan, X) if missing.any() else X
    return X


def missing_columns(numeric: np.ndarray) -> list[int]:
    """The columns of ``numeric`` (2-D floats) that hold NaN; one sum when there are none.

    A sum that overflows (or adds +inf to -inf) is not finite either: the columns are
    then looked at one value at a time, without NumPy's warning about the sum.
    """
    if not numeric.size:
        return []
    with np.errstate(invalid="ignore", over="ignore"):
        if np.isfinite(np.add.reduce(numeric, axis=None)):
            return []
    return np.flatnonzero(np.isnan(numeric).any(axis=0)).tolist()


def may_hold_missing(X: Any) -> bool:
    """Whether a table (a Dask one: its dtype, nothing computed) can hold missing numbers:
    any DataFrame, an array of floats or objects; never an array of integers or bools."""
    dtype = getattr(X, "dtype", None)
    return dtype is None or np.dtype(dtype).kind in "fcO"


def block_missing_columns(x: Any, positions: Sequence[int]) -> list[int]:
    """Which of the columns at ``positions`` of a raw block ``x`` hold a missing value (as
    indices into ``positions``), for a streamed fit's survey of every block."""
    if not len(positions):
        return []
    if isinstance(x, pd.DataFrame):
        values = x.iloc[:, list(positions)]
        return np.flatnonzero(values.isna().to_numpy().any(axis=0)).tolist()
    values = np.asarray(x)[:, list(positions)]
    if values.dtype.kind not in "fcO":
        return []
    return np.flatnonzero(pd.isna(values).any(axis=0)).tolist()


def filled(
    x: torch.Tensor,
    numeric: int,
    indicators: Sequence[int] | torch.Tensor,
    index: torch.Tensor | None = None,
) -> torch.Tensor:
    """Scaled model input ``x`` with NaN as 0 and, when ``indicators`` names numeric
    columns, their 0/1 missing flags inserted after the ``numeric`` leading columns.

    ``indicators`` may be a long tensor of the positions (what the ONNX export traces).
    ``index``: ``indicators`` as a long tensor on ``x``'s device, made once by the caller
    (a trace of the predict path records no tensor made from Python values).
    """
    if not len(indicators):
        return torch.nan_to_num(x, nan=0.0, posinf=torch.inf, neginf=-torch.inf)
    missing = torch.isnan(x)
    if index is None:
        index = torch.as_tensor(indicators, dtype=torch.long, device=x.device)
    flags = missing[:, :numeric].index_select(1, index).to(x.dtype)
    x = x.masked_fill(missing, 0.0)
    return torch.cat([x[:, :numeric], flags, x[:, numeric:]], dim=1)
