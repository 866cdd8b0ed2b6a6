"""The parameters that say how the columns of a table are read: which hold categories,
and which numeric ones also get level inputs (part of the estimators' shared table, see
:mod:`skflash.estimators.shared_parameters`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from skflash.estimators.parameters import Options, Parameter, Satisfies

#: Columns named as a list or array of names, positions or a boolean mask.
COLUMNS = Satisfies(
    lambda v: (
        isinstance(v, (list, tuple, set, np.ndarray, pd.Index))
        and all(isinstance(c, (str, int, np.integer, np.bool_)) for c in v)
    ),
    "a list (or array) of column names, positions or a boolean mask",
)

TABLE_PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        "categorical_features",
        "auto",
        '"auto", array-like of str, int or bool, or None',
        (
            Options(("auto", None)),
            COLUMNS,
        ),
        """
        Columns that hold categories rather than numbers. ``"auto"``: a DataFrame's
        columns of dtype category, bool or string, and object columns unless they hold
        only numbers. Or name them: column names (strings), positions (integers, for
        arrays too) or a boolean mask over the columns, as a list or an array. Each category gets a
        code learned at ``fit``; missing values and categories unseen in training
        share a reserved code, so prediction never fails on them. Columns with up to
        8 categories are one-hot encoded, the others embedded (a learned vector of 4 to
        16 values per category) by the network's first layer. None: every column must
        be numeric.
        """,
    ),
    Parameter(
        "discrete_features",
        "auto",
        '"auto", array-like of str, int or bool, or None',
        (
            Options(("auto", None)),
            COLUMNS,
        ),
        """
        Numeric columns with few distinct values (codes, counts, years) that also get one
        0/1 input per boundary between their training values, so the network can give
        each value its own effect, as a tree's splits do. ``"auto"``: on tables of more
        than 10,000 rows held in memory, every numeric column with 3 to 20 distinct
        values (on sampleSelection's nlswork, 28,534 rows, R² rose from 0.511 to 0.544;
        on ames, 2,930 rows, the inputs cost 0.02 R², so smaller tables go without).
        Or name them, for any table: column names, positions or a boolean mask, as for
        ``categorical_features`` (at most 256 distinct values each; a streamed fit takes
        the values of its first block). None: no level inputs. The comparisons run in
        the precision the model is fed: under ``"bf16-true"`` or ``"16-true"``, values
        such as years round together, so their levels say less.
        """,
    ),
)
