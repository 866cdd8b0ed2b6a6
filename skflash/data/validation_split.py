"""The validation split, written once: how many rows are held out, and which.

The estimators' early stopping, their streamed fits and ``DataModule(val_split=...)`` all
hold out ``round(n * fraction)`` rows and refuse a split that leaves one side empty.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def validation_size(n: int, fraction: float, setting: str, remedy: str) -> int:
    """The rows held out of ``n`` for validation; at least one on each side.

    ``setting`` names the parameter in the error (``"validation_fraction=0.1"``) and
    ``remedy`` says what to do instead.
    """
    n_val = round(n * fraction)
    if n_val < 1 or n_val >= n:
        raise ValueError(
            f"{setting} holds out {n_val} of {n} samples for validation, which leaves no "
            f"sample on one side. {remedy}"
        )
    return n_val


def split_rows(
    arrays: tuple, fraction: float, seed: int | None, setting: str, remedy: str
) -> tuple[tuple, tuple]:
    """``(train, val)``: each of the aligned ``arrays`` (numpy, pandas, lists) cut into the
    same shuffled rows, the second part holding ``fraction`` of them; the same ``seed``
    gives the same split."""
    # scikit-learn (and pandas, which it loads) only when a split is made: a Task and a
    # DataModule without one do not need it, and it doubles what `import skflash` costs
    from sklearn.model_selection import train_test_split

    n_val = validation_size(len(arrays[0]), fraction, setting, remedy)
    parts = train_test_split(*arrays, test_size=n_val, random_state=seed)
    return tuple(parts[0::2]), tuple(parts[1::2])


def split_positions(
    n: int, fraction: float, seed: int | None, setting: str, remedy: str
) -> tuple[np.ndarray, np.ndarray]:
    """The sorted positions of the training and the validation rows of ``n`` rows."""
    (train,), (val,) = split_rows((np.arange(n),), fraction, seed, setting, remedy)
    return np.sort(train), np.sort(val)


def is_parallel_arrays(data: Any) -> bool:
    """Whether ``data`` is a tuple of 2 or 3 aligned arrays, ``(x, y[, sample_weight])``,
    which can be split row by row before anything is learned from it."""
    if not isinstance(data, tuple) or len(data) not in (2, 3):
        return False
    parts = [part for part in data if part is not None]
    if not all(hasattr(part, "shape") and len(part.shape) >= 1 for part in parts):
        return False
    return len({len(part) for part in parts}) == 1
