"""The data side's encoders: a table as the model's input, a target as codes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import BaseEstimator

from skflash.data.categories import UNKNOWN, CategoryCodes
from skflash.data.tables import TableEncoder, categorical_columns
from skflash.data.targets import ClassLabels, RegressionTargets


class Owner(BaseEstimator):
    """What validate_data records the feature count and names on."""


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"a": [1.0, 2.0, 3.0], "colour": ["red", "blue", "red"], "b": np.float32([4, 5, 6])}
    )


def test_categorical_columns_by_dtype_names_positions_and_mask():
    frame = _frame()
    assert categorical_columns(frame, "auto").columns == [1]
    assert categorical_columns(frame, ["colour", "a"]).columns == [0, 1]
    assert categorical_columns(frame, [2]).columns == [2]
    assert categorical_columns(frame, [False, True, False]).columns == [1]
    assert categorical_columns(frame, None) is None
    assert categorical_columns(frame.to_numpy(), "auto") is None  # arrays: only when named
    with pytest.raises(ValueError, match="no such column"):
        categorical_columns(frame, ["size"])


def test_encoding_puts_codes_after_the_numeric_columns_at_fit_and_predict():
    frame, owner = _frame(), Owner()
    table = TableEncoder.learn(frame, "auto", "Owner")
    encoded = table.encode(owner, table.check_columns(frame, fitting=True), reset=True)
    np.testing.assert_array_equal(encoded, [[1, 4, 2], [2, 5, 1], [3, 6, 2]])
    assert list(owner.feature_names_in_) == ["a", "colour", "b"]
    unseen = frame.assign(colour=["green", None, "blue"])
    later = table.encode(owner, unseen, reset=False)
    np.testing.assert_array_equal(later[:, 2], [UNKNOWN, UNKNOWN, 1])
    # the one rule, also used by NumpyPreprocess.encode and the ONNX graph
    codes = table.categories
    np.testing.assert_array_equal(codes.model_input(unseen, later[:, :2]), later)
    assert codes.code_tables() == [(1, ["blue", "red"], [1, 2])]


def test_table_errors_say_what_to_do():
    frame = _frame()
    numbers_only = TableEncoder(None, None, "Owner")
    with pytest.raises(ValueError, match=r"categorical_features=None leaves them out"):
        numbers_only.check_columns(frame, fitting=True)
    with pytest.raises(ValueError, match="pass a DataFrame"):
        numbers_only.check_columns(frame["a"], fitting=True)
    dated = pd.DataFrame({"when": pd.to_datetime(["2020-01-01", "2021-01-01"])})
    with pytest.raises(ValueError, match="dates or durations"):
        numbers_only.check_columns(dated, fitting=True)
    with pytest.raises(ValueError, match="needs numbers"):
        numbers_only.encode(Owner(), np.array([["x", 1.0]], dtype=object), reset=True)
    assert isinstance(numbers_only.check_columns(torch.zeros(2, 2), False), np.ndarray)


def test_float32_arrays_with_category_positions_stay_float32():
    x = np.array([[0.5, 1.0], [1.5, 2.0]], dtype=np.float32)
    table = TableEncoder(CategoryCodes([1]).learn(pd.DataFrame(x)), [1])
    assert table.encode(Owner(), x, reset=True).dtype == np.float32


def test_regression_targets():
    target = RegressionTargets.learn(np.zeros((4, 2)))
    assert (target.one_dimensional, target.n_outputs) == (False, 2)
    with pytest.raises(ValueError, match="fitted with 2"):
        target.encode(np.zeros(4))
    with pytest.raises(ValueError, match="use FlashClassifier"):
        RegressionTargets.check_kind(np.array(["a", "b"]), "FlashRegressor")
    assert target.weights(np.zeros(4), "balanced") is None


def test_class_labels_codes_weights_and_dtypes():
    y = np.array(["b", "a", "c", "a"])
    labels = ClassLabels.learn(y)
    assert labels.classes.tolist() == ["a", "b", "c"] and labels.n_model_outputs == 3
    codes = labels.encode(y)
    assert codes.tolist() == [1, 0, 2, 0] and labels.tensor_dtype(torch.float32) == torch.long
    np.testing.assert_allclose(labels.weights(codes, "balanced"), [4 / 3, 2 / 3, 4 / 3, 2 / 3])
    np.testing.assert_allclose(labels.weights(codes, {"c": 3.0}), [1, 1, 3, 1])
    with pytest.raises(ValueError, match="not in classes"):
        labels.encode(np.array(["d"]))
    binary = ClassLabels.learn(np.array([True, False, True]))
    assert binary.onnx_kind == "binary" and binary.encode(np.array([True])).dtype == np.float64
    multi = ClassLabels.learn(np.array([[0, 1], [1, 1]]))
    assert multi.multi_label and multi.onnx_kind == "multilabel"
    with pytest.raises(ValueError, match="missing labels"):
        ClassLabels.learn(np.array(["a", None], dtype=object))
    with pytest.raises(ValueError, match="only one class"):
        ClassLabels.learn(np.array(["a", "a"]))
