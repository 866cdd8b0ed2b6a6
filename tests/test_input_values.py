"""Input values that are valid but unusual, which must train as their plain counterparts do.

Features and targets of a very small spread (scaled, not mistaken for constants, while
truly constant columns and ones constant up to rounding noise are left alone); pandas
columns of ``Decimal`` or ``Fraction`` numbers (numeric, not categories); and a regression
target given as an array of number strings (converted as scikit-learn's regressors do,
with a clear error for strings that are not numbers).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator
from sklearn.datasets import load_diabetes

from skflash import FlashRegressor
from skflash.data.categories import is_categorical_column
from skflash.data.scaling import StreamedMeanScale, robust_center_scale, weighted_mean_scale
from skflash.data.tables import TableEncoder

FAST = {"max_epochs": 30, "random_state": 0}


@pytest.fixture(scope="module")
def diabetes() -> tuple[np.ndarray, np.ndarray]:
    return load_diabetes(return_X_y=True)


def _all_scalers(x: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The centre and scale of ``x`` from every way the scaling is learned."""
    streamed = StreamedMeanScale()
    for block in np.array_split(x, 3):
        streamed.add(block)
    return [weighted_mean_scale(x), streamed.mean_scale(x.shape[1:]), robust_center_scale(x)]


# Small spreads ---------------------------------------------------------------------------


@pytest.mark.parametrize("factor", [1e-11, 1e-15, 1e-30])
def test_a_tiny_but_varying_column_is_scaled_by_its_spread(diabetes, factor):
    X, _ = diabetes
    for (_, plain), (_, tiny) in zip(_all_scalers(X), _all_scalers(X * factor), strict=True):
        np.testing.assert_allclose(tiny, plain * factor, rtol=1e-9)


def test_constant_columns_and_rounding_noise_get_scale_one():
    rng = np.random.default_rng(0)
    n = 500
    noisy = 0.1 + rng.normal(size=n) * 1e-17  # within a few float64 steps of 0.1
    shifted = 1e6 + rng.choice([0.0, 1.2e-10], n)  # one float64 step at 1e6
    x = np.column_stack([np.full(n, 3.0), np.zeros(n), noisy, shifted, np.full(n, 1e-300)])
    for _, scale in _all_scalers(x):
        np.testing.assert_array_equal(scale, np.ones(5))


def test_a_spread_too_small_for_float32_is_taken_as_constant():
    # the model may be fed float32, where dividing by it would overflow
    x = np.array([[0.0], [1e-39], [2e-39]])
    for _, scale in _all_scalers(x):
        assert scale[0] == 1.0
    assert np.isfinite(np.float32(1.0) / np.float32(weighted_mean_scale(x * 1e6)[1][0]))


def test_a_tiny_target_trains_as_the_unscaled_one(diabetes):
    X, y = diabetes
    plain = FlashRegressor(**FAST).fit(X, y).score(X, y)
    tiny = FlashRegressor(**FAST).fit(X, y * 1e-15)
    assert plain > 0.3
    assert tiny.score(X, y * 1e-15) == pytest.approx(plain, abs=0.05)
    np.testing.assert_allclose(tiny.task_.preprocess.y_scale, y.std() * 1e-15, rtol=1e-9)


def test_tiny_features_train_as_the_unscaled_ones(diabetes):
    X, y = diabetes
    plain = FlashRegressor(**FAST).fit(X, y).score(X, y)
    tiny = FlashRegressor(**FAST).fit(X * 1e-11, y)
    assert tiny.score(X * 1e-11, y) == pytest.approx(plain, abs=0.05)


@pytest.mark.parametrize("settings", [{"precision": "32-true"}, {"standardize_inputs": "robust"}])
def test_tiny_values_train_in_float32_and_with_robust_scaling(diabetes, settings):
    X, y = diabetes
    plain = FlashRegressor(**FAST, **settings).fit(X, y).score(X, y)
    tiny = FlashRegressor(**FAST, **settings).fit(X * 1e-11, y * 1e-15)
    assert tiny.score(X * 1e-11, y * 1e-15) == pytest.approx(plain, abs=0.05)


def test_constant_and_noisy_constant_columns_still_train(diabetes):
    X, y = diabetes
    rng = np.random.default_rng(0)
    noisy = 0.1 + rng.normal(size=len(X)) * 1e-17
    wide = np.column_stack([X, np.full(len(X), 3.0), noisy])
    plain = FlashRegressor(**FAST).fit(X, y).score(X, y)
    reg = FlashRegressor(**FAST).fit(wide, y)
    np.testing.assert_array_equal(reg.task_.preprocess.x_scale[-2:], [1.0, 1.0])
    assert np.isfinite(reg.predict(wide)).all()
    assert reg.score(wide, y) == pytest.approx(plain, abs=0.05)


# Decimal and other number objects -------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "categorical"),
    [
        ([Decimal("1.5"), Decimal("2"), None], False),
        ([Fraction(1, 3), 2, 0.5], False),
        ([np.float32(1.5), np.int64(2), Decimal("NaN")], False),
        ([True, False, None], True),
        ([Decimal("1.5"), "2"], True),
        ([1 + 2j, 3j], True),
    ],
)
def test_number_objects_are_numeric_and_booleans_categories(values, categorical):
    assert is_categorical_column(pd.Series(values, dtype=object)) is categorical


def _as_decimals(values: np.ndarray) -> list[Decimal]:
    return [Decimal(str(round(v, 4))) for v in values]


def test_a_decimal_column_trains_and_predicts_as_floats(diabetes):
    X, y = diabetes
    decimals = pd.DataFrame({"a": _as_decimals(X[:, 2])})
    floats = decimals.astype(float)
    reg = FlashRegressor(**FAST).fit(decimals, y)
    assert reg.n_features_in_ == 1 and reg.task_.preprocess.categories is None
    new = pd.DataFrame({"a": [Decimal("0.05"), Decimal("0.10")]})
    predicted = reg.predict(new)
    assert predicted[1] - predicted[0] > 1  # the larger BMI, the larger the prediction
    same = FlashRegressor(**FAST).fit(floats, y).predict(new.astype(float))
    np.testing.assert_allclose(predicted, same, rtol=1e-6)


def test_decimals_beside_categories_and_missing_values(diabetes):
    X, y = diabetes
    decimals = pd.DataFrame(
        {"a": _as_decimals(X[:, 2]), "sex": np.where(X[:, 1] > 0, "f", "m")}, dtype=object
    )
    decimals.loc[::7, "a"] = None
    reg = FlashRegressor(max_epochs=3, random_state=0).fit(decimals, y)
    assert reg.task_.preprocess.categories.columns == [1]
    assert reg.task_.preprocess.indicators == [0]
    floats = decimals.assign(a=decimals["a"].astype(float))
    np.testing.assert_allclose(reg.predict(decimals.head(20)), reg.predict(floats.head(20)))


def test_a_streamed_decimal_column_is_numeric(diabetes):
    dask = pytest.importorskip("dask")
    dd = pytest.importorskip("dask.dataframe")
    X, y = diabetes
    frame = pd.DataFrame({"a": _as_decimals(X[:, 2]), "b": X[:, 3]})
    target = pd.Series(y)
    with dask.config.set({"dataframe.convert-string": False}):  # keep the Decimal objects
        blocks = dd.from_pandas(frame, npartitions=3), dd.from_pandas(target, npartitions=3)
        floats = dd.from_pandas(frame.astype(float), npartitions=3), blocks[1]
        reg = FlashRegressor(max_epochs=3, random_state=0).fit(*blocks)
        same = FlashRegressor(max_epochs=3, random_state=0).fit(*floats)
    assert reg.task_.preprocess.categories is None
    np.testing.assert_allclose(reg.predict(frame.head(5)), same.predict(frame.head(5)))


# A target of strings ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", [str, bytes])
def test_a_target_of_number_strings_trains_as_floats(diabetes, kind):
    X, y = diabetes
    texts = y.astype(kind)
    assert texts.dtype.kind in "US"
    reg = FlashRegressor(max_epochs=3, random_state=0).fit(X, texts)
    same = FlashRegressor(max_epochs=3, random_state=0).fit(X, y)
    np.testing.assert_array_equal(reg.predict(X), same.predict(X))


def test_a_two_column_target_of_strings_trains_as_floats(diabetes):
    X, y = diabetes
    both = np.column_stack([y, -y])
    reg = FlashRegressor(max_epochs=3, random_state=0).fit(X, both.astype(str))
    same = FlashRegressor(max_epochs=3, random_state=0).fit(X, both)
    np.testing.assert_array_equal(reg.predict(X), same.predict(X))


def test_a_target_of_other_strings_gets_a_clear_error(diabetes):
    X, _ = diabetes
    words = np.array(["1.5", "2"] * 10 + ["high"])
    with pytest.raises(ValueError, match=r"numeric target, but y holds .*'high'"):
        FlashRegressor(max_epochs=1).fit(X[: len(words)], words)


def test_a_nan_string_in_the_target_gets_scikit_learns_error(diabetes):
    X, y = diabetes
    texts = y.astype(str)
    texts[3] = "nan"
    with pytest.raises(ValueError, match="Input y contains NaN"):
        FlashRegressor(max_epochs=1).fit(X, texts)


def test_the_table_converts_a_string_target_only_for_regression():
    class Owner(BaseEstimator):
        """What validate_data records the feature count on."""

    table = TableEncoder(None, None, "Owner")
    X = np.zeros((3, 1))
    _, y = table.encode(Owner(), X, np.array(["1", "2.5", "-3"]), y_numeric=True)
    np.testing.assert_array_equal(y, [1.0, 2.5, -3.0])
    with pytest.raises(ValueError, match=r"y must be numeric for a regressor.*'x'"):
        table.encode(Owner(), X, np.array(["1", "x", "y"]), y_numeric=True)
    _, labels = table.encode(Owner(), X, np.array(["a", "b", "a"]), y_numeric=False)
    assert labels.dtype.kind == "U"
