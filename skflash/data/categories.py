"""Categorical columns as integer codes, learned on the training rows and kept as plain state.

Code 0 is reserved: missing values and categories never seen in training map to it, so
prediction data never crashes on them. Known categories get codes 1..K in a fixed order
(a pandas Categorical's own order, else sorted). The state is lists of Python scalars,
so it is saved in checkpoints that load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

#: The code of a missing or unseen value.
UNKNOWN = 0


def is_number(value: Any) -> bool:
    """Whether an object is a real number to train on as one: any ``numbers.Real``
    (Python's and numpy's numbers, ``Fraction``) or a ``Decimal`` (what SQL readers give
    for NUMERIC columns), but not a boolean, which is a category."""
    return isinstance(value, (numbers.Real, Decimal)) and not isinstance(value, (bool, np.bool_))


def is_categorical_column(values: Any) -> bool:
    """Whether a DataFrame column holds categories: dtype category, bool or string, or
    objects that are not all numbers (strings such as zip codes and True/False/None are
    categories; numbers stored as objects, see :func:`is_number`, stay numeric)."""
    if isinstance(values.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(values):
        return True
    if pd.api.types.is_string_dtype(values) and not pd.api.types.is_object_dtype(values):
        return True
    if pd.api.types.is_object_dtype(values):
        present = values.dropna()
        return present.empty or not all(is_number(v) for v in present)
    return False


def _plain(value: Any) -> Any:
    """A Python scalar for a numpy one (checkpoints keep plain values only)."""
    return value.item() if isinstance(value, np.generic) else value


class _BoolKey:
    """A boolean as a dictionary key that is not equal to 1 or 0 (Python's ``True == 1``
    would give ``True`` and ``1`` in one object column the same code)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = bool(value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _BoolKey) and other.value == self.value

    def __hash__(self) -> int:
        return hash((_BoolKey, self.value))


def keyed_values(values: pd.Series) -> pd.Series:
    """An object column's values with booleans as :class:`_BoolKey` (others as they are)."""
    if not pd.api.types.is_object_dtype(values):
        return values
    return values.map(lambda v: _BoolKey(v) if isinstance(v, (bool, np.bool_)) else v)


def plain_key(value: Any) -> Any:
    return value.value if isinstance(value, _BoolKey) else _plain(value)


def refuse_equal_numbers(values: Any, column: Any) -> None:
    """Refuse a categorical column holding equal numbers of two kinds (``1`` and ``1.0``).

    Python and pandas treat them as one value, so they would silently share a category;
    which one the user meant cannot be told (booleans are kept apart, see :class:`_BoolKey`).
    """
    ints, floats = set(), set()
    for value in values:
        if isinstance(value, (bool, np.bool_, _BoolKey)):
            continue
        if isinstance(value, (int, np.integer)):
            ints.add(value)
        elif isinstance(value, (float, np.floating)):
            floats.add(value)
    both = sorted(_plain(v) for v in ints if v in floats)
    if both:
        raise ValueError(
            f"Categorical column {column!r} holds {both[0]!r} both as an integer and as a "
            f"float ({both[0]!r} and {float(both[0])!r}), which would share one category. "
            "Give the column one type first: df[col].astype(str) keeps them apart, "
            "df[col].map(lambda v: int(v) if isinstance(v, float) and v.is_integer() else v) "
            "merges them."
        )


def _sort_key(value: Any) -> tuple[str, Any]:
    return (type(value).__name__, value if isinstance(value, (int, float, str)) else str(value))


class CategoryCodes:
    """Per categorical column, the categories learned in training, and the columns' places.

    Parameters
    ----------
    columns : sequence of int
        Positions of the categorical columns in the input.
    categories : sequence of lists, optional
        The known categories of each, in code order (code ``i + 1`` for ``categories[i]``).
    """

    def __init__(
        self, columns: Sequence[int] = (), categories: Sequence[Sequence[Any]] = ()
    ) -> None:
        self.columns = [int(c) for c in columns]
        self.categories = [list(c) for c in categories]

    def learn(self, frame: pd.DataFrame) -> CategoryCodes:
        """Learn each column's categories from the training rows of ``frame``."""
        self.categories = []
        for position in self.columns:
            values = frame.iloc[:, position]
            if isinstance(values.dtype, pd.CategoricalDtype):
                known = list(values.cat.categories)
            else:
                refuse_equal_numbers(values.dropna(), frame.columns[position])
                present = keyed_values(values.dropna()).unique().tolist()
                known = sorted((plain_key(v) for v in present), key=_sort_key)
            self.categories.append([_plain(v) for v in known])
        return self

    @property
    def cardinalities(self) -> list[int]:
        """Codes per column, the reserved one included."""
        return [len(c) + 1 for c in self.categories]

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """``(n_samples, n_columns)`` int64 codes; 0 for missing and unseen values."""
        codes = np.zeros((len(frame), len(self.columns)), dtype=np.int64)
        for j, (position, known) in enumerate(zip(self.columns, self.categories, strict=True)):
            values = frame.iloc[:, position]
            known = pd.Series(known, dtype=object)
            if isinstance(values.dtype, pd.CategoricalDtype):
                values = values.astype(object)
            elif pd.api.types.is_object_dtype(values):  # may mix booleans with numbers
                values, known = keyed_values(values), keyed_values(known)
            index = pd.Index(known, dtype=object)
            codes[:, j] = index.get_indexer(pd.Index(values.to_numpy(dtype=object))) + UNKNOWN + 1
        return codes

    def code_tables(self) -> list[tuple[int, list, list[int]]]:
        """The mapping :meth:`encode` applies, for encoders outside Python.

        Any value not listed gets the code ``UNKNOWN``; the ONNX graph encodes with it.

        Returns
        -------
        list of tuple
            Per categorical column: its position, its known values and their codes.
        """
        return [
            (position, list(known), list(range(UNKNOWN + 1, UNKNOWN + 1 + len(known))))
            for position, known in zip(self.columns, self.categories, strict=True)
        ]

    def numeric_positions(self, n_columns: int) -> list[int]:
        """Positions of the other (numeric) columns of a table of ``n_columns``."""
        codes = set(self.columns)
        return [i for i in range(n_columns) if i not in codes]

    def numeric_columns(self, frame: pd.DataFrame) -> Any:
        """The numeric columns of ``frame`` (an empty array for a table of categories)."""
        positions = self.numeric_positions(frame.shape[1])
        return frame.iloc[:, positions] if positions else np.zeros((len(frame), 0))

    def model_input(self, frame: pd.DataFrame, numeric: np.ndarray) -> np.ndarray:
        """The model's input: numeric columns, then one code per categorical column.

        Every path to the model (fit, streamed blocks, predict, ``Task.predict``) encodes
        through this.

        Parameters
        ----------
        frame : pandas.DataFrame
            The table, categorical columns included.
        numeric : numpy.ndarray
            The values of ``frame``'s numeric columns.

        Returns
        -------
        numpy.ndarray
            The numeric values then the codes, in ``numeric``'s dtype.
        """
        return np.hstack([numeric, self.encode(frame).astype(numeric.dtype)])

    @classmethod
    def from_surveyed(
        cls, columns: Sequence[int], values: list[tuple[bool, list]], n_columns: int
    ) -> CategoryCodes:
        """The codes of ``columns``, learned from the values seen in every streamed block.

        A value first seen in a late block gets a code of its own.

        Parameters
        ----------
        columns : sequence of int
            The positions of the categorical columns.
        values : list of tuple
            Per column, as ``RowBlocks.survey`` gathers them: whether it is a pandas
            Categorical, and its categories or distinct values.
        n_columns : int
            The number of columns of the table.

        Returns
        -------
        CategoryCodes
            The learned codes.
        """
        length = max(1, *(len(v) for _, v in values))
        frame = pd.DataFrame({i: [None] * length for i in range(n_columns)}, dtype=object)
        for position, (categorical, known) in zip(columns, values, strict=True):
            if categorical:
                frame[position] = pd.Categorical([None] * length, categories=known)
            else:
                frame[position] = pd.Series(known + [None] * (length - len(known)), dtype=object)
        return cls(columns).learn(frame)

    def state_dict(self) -> dict[str, Any]:
        return {"columns": list(self.columns), "categories": [list(c) for c in self.categories]}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> CategoryCodes:
        return cls(state["columns"], state["categories"])
