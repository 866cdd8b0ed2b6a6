"""One validation split for the estimators, their streams and DataModule(val_split=...)."""

from __future__ import annotations

import numpy as np
import pytest

from skflash.data.numpy_data import NumpyDataModule, NumpyPreprocess
from skflash.data.validation_split import (
    is_parallel_arrays,
    split_positions,
    split_rows,
    validation_size,
)


def test_size_is_rounded_and_leaves_a_row_on_each_side():
    assert validation_size(10, 0.25, "f=0.25", "") == 2  # round half to even, as Python's
    assert validation_size(11, 0.1, "f=0.1", "") == 1
    with pytest.raises(ValueError, match=r"f=0.1 holds out 0 of 4 samples.*Use more"):
        validation_size(4, 0.1, "f=0.1", "Use more.")
    with pytest.raises(ValueError, match="holds out 2 of 2"):
        validation_size(2, 0.9, "f=0.9", "")


def test_rows_and_positions_split_alike_and_reproducibly():
    x, y = np.arange(20).reshape(10, 2), np.arange(10)
    (x_train, y_train), (x_val, y_val) = split_rows((x, y), 0.3, 0, "f", "")
    assert len(x_val) == 3 and np.array_equal(x_train[:, 0] // 2, y_train)
    train, val = split_positions(10, 0.3, 0, "f", "")
    assert sorted(val) == sorted(y_val) and sorted(train) == sorted(y_train)
    assert np.array_equal(split_positions(10, 0.3, 0, "f", "")[1], val)


def test_parallel_arrays_are_recognised():
    x = np.zeros((5, 2))
    assert is_parallel_arrays((x, np.zeros(5)))
    assert is_parallel_arrays((x, np.zeros(5), None))
    assert not is_parallel_arrays((x, np.zeros(4)))
    assert not is_parallel_arrays([x, np.zeros(5)])  # a list holds samples
    assert not is_parallel_arrays(list(range(5)))


def test_datamodule_val_split_learns_the_scaling_from_training_rows_only():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(100, 3)), rng.normal(size=100)
    x[:, 0] += np.arange(100)  # validation rows shift the mean if they are included
    preprocess = NumpyPreprocess(standardize_inputs=True)
    dm = NumpyDataModule.from_arrays(
        (x, y), preprocess=preprocess, val_split=0.2, seed=1, batch_size=10
    )
    assert len(dm.train_dataset) == 80 and len(dm.val_dataset) == 20
    (x_train, _), _ = split_rows((x, y), 0.2, 1, "f", "")
    np.testing.assert_allclose(preprocess.x_mean, x_train.mean(axis=0))
