"""A user's table as the model's input: scikit-learn's checks, then category codes.

:class:`TableEncoder` is fitted once per fit (which columns hold categories, and their
codes) and then encodes every table the model sees: the training rows, each streamed
block, and the rows to predict, so all of them are encoded by one rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.utils.validation import check_array, check_X_y, validate_data

from skflash.data.categories import CategoryCodes, is_categorical_column
from skflash.data.levels import AUTO_MAX_VALUES, NAMED_MAX_VALUES, learn_levels
from skflash.data.missing_values import ALLOW_NAN, missing_columns, with_nan
from skflash.data.targets import numeric_strings_as_floats

FLOAT_DTYPES = (np.float64, np.float32)


def in_memory(value: Any) -> Any:
    """A Dask collection computed into its pandas or numpy counterpart (column names
    kept); a tensor as a numpy array; anything else as it is."""
    if type(value).__module__.startswith("dask") and hasattr(value, "compute"):
        return value.compute()
    if torch.is_tensor(value):
        return value.detach().cpu().numpy()
    return value


def _column_positions(
    columns: list, X: Any, n_columns: int, setting: str = "categorical_features"
) -> list[int]:
    """Positions from column names (strings), positions (integers) or a boolean mask."""
    if columns and all(isinstance(c, (bool, np.bool_)) for c in columns):
        if len(columns) != n_columns:
            raise ValueError(
                f"{setting} is a boolean mask of {len(columns)} values, but X has "
                f"{n_columns} columns."
            )
        return [i for i, flag in enumerate(columns) if flag]
    names = list(X.columns) if isinstance(X, pd.DataFrame) else []
    positions = []
    for column in columns:
        if isinstance(column, str):
            if column not in names:
                raise ValueError(
                    f"{setting} names column {column!r}, but X has no such column"
                    + (
                        f" (its columns: {names})."
                        if names
                        else "; X has no column names (pass a DataFrame, or give positions)."
                    )
                )
            positions.append(names.index(column))
        elif isinstance(column, (bool, np.bool_)) or not -n_columns <= int(column) < n_columns:
            raise ValueError(
                f"{setting} holds {column!r}, but X has {n_columns} columns: give "
                "column names, positions (integers), or a boolean mask of every column."
            )
        else:
            positions.append(int(column) % n_columns)
    return positions


def categorical_columns(X: Any, setting: Any) -> CategoryCodes | None:
    """The categorical columns of ``X`` with their codes learned, or None when there are none.

    ``setting`` is ``"auto"`` (a DataFrame's category, bool, string and object columns),
    names, positions or a boolean mask over the columns, or None (numbers only). The codes
    are learned from ``X`` itself (a streamed fit learns them from every block instead, with
    :meth:`CategoryCodes.from_surveyed`).
    """
    if setting is None or (isinstance(setting, str) and not isinstance(X, pd.DataFrame)):
        return None
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=object))
    n_columns = frame.shape[1]
    if isinstance(setting, str):  # "auto"
        positions = [i for i in range(n_columns) if is_categorical_column(frame.iloc[:, i])]
    else:
        positions = _column_positions(list(setting), X, n_columns)
    if not positions:
        return None
    return CategoryCodes(sorted(set(positions))).learn(frame)


class TableEncoder:
    """Validates a table as scikit-learn does and encodes its categorical columns.

    The encoded rows hold the numeric columns (float64 or float32, as given; a missing
    number as NaN), then one code per categorical column. ``validate_data`` runs against
    the estimator, so it learns ``n_features_in_`` and ``feature_names_in_`` at fit and
    checks them later. The numeric columns that had missing values in training get an
    indicator input each (see :mod:`skflash.data.missing_values`).

    Parameters
    ----------
    categories : CategoryCodes or None
        The categorical columns and their codes (None: numbers only).
    setting : object, default="auto"
        The ``categorical_features`` the columns were found by (named in errors).
    owner : str, default="the estimator"
        The estimator's name, for errors.
    missing : sequence of int, default=()
        The numeric columns (positions among them) that had missing values in training.
    levels : pair of sequences, default=((), ())
        The level boundaries of the discrete numeric columns: the column of each (a
        position among the numeric ones) and its threshold (see :mod:`skflash.data.levels`).
    """

    def __init__(
        self,
        categories: CategoryCodes | None,
        setting: Any = "auto",
        owner: str = "the estimator",
        missing: Any = (),
        levels: Any = ((), ()),
    ) -> None:
        self.categories = categories
        self.setting = setting
        self.owner = owner
        self.missing = [int(i) for i in missing]
        self.levels = ([int(c) for c in levels[0]], [float(t) for t in levels[1]])

    @classmethod
    def learn(cls, X: Any, setting: Any, owner: str) -> TableEncoder:
        """Find the categorical columns of the training table ``X`` and learn their codes."""
        return cls(categorical_columns(X, setting), setting, owner)

    @property
    def num_codes(self) -> int:
        """Trailing input columns that hold category codes."""
        return 0 if self.categories is None else len(self.categories.columns)

    def learn_missing(self, encoded: np.ndarray) -> None:
        """Learn which numeric columns of the encoded training rows hold missing values."""
        self.missing = missing_columns(encoded[:, : encoded.shape[1] - self.num_codes])

    def learn_levels(self, X: Any, encoded: np.ndarray, setting: Any, auto: bool) -> None:
        """Learn the level boundaries of the discrete numeric columns of the training rows
        (``X`` as given, for the column names; ``encoded`` as the model takes it).

        ``setting`` is ``discrete_features``: ``"auto"`` (when ``auto``, every numeric
        column with 3 to :data:`~skflash.data.levels.AUTO_MAX_VALUES` distinct values),
        names, positions or a boolean mask of columns (any table), or None.
        """
        if setting is None or (isinstance(setting, str) and not auto):
            return
        n_columns = encoded.shape[1] - self.num_codes
        numeric = (
            list(range(n_columns))
            if self.categories is None
            else self.categories.numeric_positions(n_columns + self.num_codes)
        )
        if isinstance(setting, str):
            candidates, limit, named = list(range(n_columns)), AUTO_MAX_VALUES, False
        else:
            width = n_columns + self.num_codes
            chosen = _column_positions(list(setting), X, width, "discrete_features")
            refused = [p for p in chosen if p not in numeric]
            if refused:
                raise ValueError(
                    f"discrete_features names column(s) at {refused}, which hold categories: "
                    "name numeric columns only (categorical ones are encoded already)."
                )
            candidates = sorted({numeric.index(p) for p in chosen})
            limit, named = NAMED_MAX_VALUES, True
        self.levels = learn_levels(encoded[:, :n_columns], candidates, limit, named)

    def model_width(self, n_columns: int) -> int:
        """The network's input width for ``n_columns`` encoded columns (indicators and
        level inputs added)."""
        return n_columns + len(self.missing) + len(self.levels[1])

    def check_columns(self, X: Any, fitting: bool) -> Any:
        """Tensors as arrays; clear errors for a Series, for category columns left out of
        ``categorical_features`` and for dates, before scikit-learn's own checks."""
        X = in_memory(X)
        if isinstance(X, pd.Series):
            raise ValueError(
                "X is a pandas Series; pass a DataFrame. For one row, use df.iloc[[i]] (a "
                "one-row DataFrame) rather than df.iloc[i]."
            )
        if isinstance(X, np.ndarray) and X.dtype.kind == "f" and not X.dtype.isnative:
            # scikit-learn's checks would make a big-endian float32 array float64
            return X.astype(X.dtype.newbyteorder("="))
        if not isinstance(X, pd.DataFrame):
            return X
        skip = set() if self.categories is None else set(self.categories.columns)
        kept = [(i, c) for i, c in enumerate(X.columns) if i not in skip]
        found = [(i, c) for i, c in kept if fitting and is_categorical_column(X.iloc[:, i])]
        if found:
            named = all(isinstance(c, str) for _, c in found)
            listed = [c for _, c in found] if named else [i for i, _ in found]
            raise ValueError(
                f"Column(s) {[c for _, c in found]} hold categories, but "
                f"categorical_features={self.setting!r} leaves them out. Pass "
                "categorical_features='auto' (category, bool, string and object columns), "
                f"or list them, e.g. categorical_features={listed!r}"
                + ("." if named else " (integers are positions).")
            )
        times = [
            str(c)
            for i, c in kept
            if pd.api.types.is_datetime64_any_dtype(X.iloc[:, i])
            or pd.api.types.is_timedelta64_dtype(X.iloc[:, i])
        ]
        if times:
            raise ValueError(
                f"{self.owner} needs numeric features, but column(s) {times} hold "
                "dates or durations. Turn them into numbers first, e.g. "
                "df[col].dt.dayofyear, or (df[col] - start).dt.total_seconds()."
            )
        return X

    def as_given(self, estimator: Any, X: Any) -> bool:
        """Whether ``X`` is a float array of the fitted width, without categories or column
        names to compare: scikit-learn's checks return it unchanged if its values are
        finite (a few attribute tests, where the full checks take half of a one-row
        predict's time)."""
        fitted = vars(estimator)
        return (
            type(X) is np.ndarray
            and X.ndim == 2
            and X.dtype.char in "fd"  # float32, float64
            and X.dtype.isnative
            and X.shape[0] > 0
            and self.categories is None
            and X.shape[1] == fitted.get("n_features_in_")
            and "feature_names_in_" not in fitted
        )

    def predict_rows(self, estimator: Any, X: Any) -> Any:
        """``X`` checked and encoded for predict, as :meth:`encode` with ``reset=False``.

        An array :meth:`as_given` with finite values is taken as it is; anything else, or
        anything that fails a test, takes the full checks and their errors.
        """
        if self.as_given(estimator, X) and np.isfinite(X).all():
            return X
        return self.encode(estimator, self.check_columns(X, fitting=False), reset=False)

    def encode(self, estimator: Any, X: Any, y: Any = None, **kwargs: Any) -> Any:
        """scikit-learn's ``validate_data`` on ``X`` (and ``y``), with errors that say what
        to do; categorical columns become codes after the numeric ones.

        ``kwargs`` go to ``validate_data`` (``reset``, ``multi_output``, ``y_numeric``).
        """
        if y is not None and kwargs.get("y_numeric"):
            y = numeric_strings_as_floats(y)
        try:
            # scikit-learn first sums the values to test them for infinities: +inf and -inf
            # in one table sum to NaN with a NumPy warning, before its own clear error
            with np.errstate(invalid="ignore", over="ignore"):
                if self.categories is None:
                    arrays = (with_nan(X),) if y is None else (with_nan(X), y)
                    return validate_data(
                        estimator,
                        *arrays,
                        dtype=FLOAT_DTYPES,
                        ensure_all_finite=ALLOW_NAN,
                        **kwargs,
                    )
                return self._encode_mixed(estimator, X, y, **kwargs)
        except (ValueError, TypeError) as error:
            text = str(error)
            if "could not convert" in text or "argument must be" in text:
                raise type(error)(
                    f"{self.owner} needs numbers: {text}. Name string or categorical "
                    "columns in categorical_features (a DataFrame's are found by dtype), or "
                    "encode them first."
                ) from error
            raise

    def _encode_mixed(
        self, estimator: Any, X: Any, y: Any = None, reset: bool = True, **kwargs: Any
    ) -> Any:
        # The whole table's column count and names are checked; the numeric columns as
        # numbers, and the categorical ones become codes after them.
        validate_data(estimator, X, skip_check_array=True, reset=reset)
        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=object))
        numeric = with_nan(self.categories.numeric_columns(frame))
        if isinstance(X, np.ndarray) and X.dtype.kind in "fiub":
            numeric = X[:, self.categories.numeric_positions(X.shape[1])]  # keeps float32
        kwargs = {
            **kwargs,
            "dtype": FLOAT_DTYPES,
            "ensure_min_features": 0,
            "ensure_all_finite": ALLOW_NAN,
        }
        if y is None:
            values = check_array(numeric, estimator=estimator, **kwargs)
        else:
            values, y = check_X_y(numeric, y, estimator=estimator, **kwargs)
        X = self.categories.model_input(frame, values)
        return X if y is None else (X, y)
